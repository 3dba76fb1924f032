"""Div-attention's one-click cue: its encoding (1 at the click, falling linearly to 0 at the radius in mm, all zeros
without a click), clicks drawn inside target components, simulated clicks one per component with a fixed seed, and
the clicks file a user gives."""

import json

import numpy as np
import pytest
import torch

from nnunet_ext.clicks.clicks_file import check_clicks_for, read_clicks
from nnunet_ext.clicks.cue import click_cue
from nnunet_ext.clicks.drawing import draw_training_click, simulated_clicks, target_components
from nnunet_ext.core.errors import InputFilesError


def test_the_cue_is_one_at_the_click_and_falls_linearly_to_zero_at_the_radius_in_mm():
    cue = click_cue((5, 20, 30), [(2, 10, 3)], spacing=(3.0, 1.0, 0.5), radius_mm=10.0)
    assert cue.shape == (5, 20, 30) and cue.dtype == torch.float32
    assert cue[2, 10, 3] == 1.0 and cue.max() == 1.0 and cue.min() == 0.0
    assert torch.isclose(cue[2, 14, 3], torch.tensor(0.6))  # 4 voxels of 1 mm
    assert torch.isclose(cue[2, 10, 11], torch.tensor(0.6))  # 8 voxels of 0.5 mm
    assert torch.isclose(cue[3, 10, 3], torch.tensor(0.7))  # 1 voxel of 3 mm
    assert cue[2, 10, 29] == 0.0  # 13 mm away: beyond the radius


def test_several_clicks_take_the_nearest_and_no_click_is_the_empty_cue():
    both = click_cue((1, 40), [(0, 5), (0, 30)], spacing=(1.0, 1.0), radius_mm=10.0)
    assert both[0, 5] == 1.0 and both[0, 30] == 1.0 and both[0, 18] == 0.0
    assert torch.allclose(both, torch.maximum(click_cue((1, 40), [(0, 5)], (1.0, 1.0), 10.0),
                                              click_cue((1, 40), [(0, 30)], (1.0, 1.0), 10.0)))
    assert torch.count_nonzero(click_cue((3, 4, 5), [], (1.0, 1.0, 1.0))) == 0


def labels_with_two_lesions_in_an_organ():
    labels = np.zeros((6, 20, 20), dtype=np.int16)
    labels[1:5, 2:18, 2:18] = 1
    labels[2:4, 4:7, 4:7] = 2
    labels[2:4, 12:16, 12:15] = 2
    return labels


def test_components_are_per_label_so_a_lesion_and_its_organ_are_two_targets():
    components = target_components(labels_with_two_lesions_in_an_organ())
    assert [len(c) for c in components] == [4 * 16 * 16 - 18 - 24, 18, 24]
    regions = np.stack([labels_with_two_lesions_in_an_organ() > 0, labels_with_two_lesions_in_an_organ() == 2])
    assert [len(c) for c in target_components(regions, regions=True)] == [4 * 16 * 16, 18, 24]
    with_ignore = labels_with_two_lesions_in_an_organ()
    with_ignore[0] = 3
    assert len(target_components(with_ignore, ignore_label=3)) == 3


def test_a_training_click_lies_in_a_uniformly_chosen_component_and_a_patch_without_target_gets_none():
    labels = labels_with_two_lesions_in_an_organ()
    rng = np.random.default_rng(0)
    chosen = [labels[draw_training_click(labels, rng)] for _ in range(300)]
    counts = np.bincount(chosen, minlength=3)
    assert counts[0] == 0  # never in the background
    assert 60 < counts[1] < 140 and 160 < counts[2] < 240  # one component of 3 is the organ, two are lesions
    assert draw_training_click(np.zeros((4, 4, 4), dtype=np.int16), rng) is None


def test_simulated_clicks_one_per_component_the_same_every_time():
    labels = labels_with_two_lesions_in_an_organ()
    clicks = simulated_clicks(labels, "case_7", seed=0)
    assert [labels[c] for c in clicks] == [1, 2, 2]
    assert clicks == simulated_clicks(labels, "case_7", seed=0)
    assert clicks != simulated_clicks(labels, "case_7", seed=1)
    assert clicks != simulated_clicks(labels, "case_8", seed=0)


def test_the_clicks_file_is_read_and_every_case_needs_a_click(tmp_path):
    path = tmp_path / "clicks.json"
    path.write_text(json.dumps({"a": [1, 2, 3], "b": [[1, 2, 3], [4.5, 5, 6]]}))
    assert read_clicks(path) == {"a": [[1.0, 2.0, 3.0]], "b": [[1.0, 2.0, 3.0], [4.5, 5.0, 6.0]]}
    with pytest.raises(InputFilesError, match="no click for case.*c") as error:
        check_clicks_for(["a", "b", "c"], read_clicks(path), path)
    assert "Case: c" in str(error.value)
    path.write_text(json.dumps({"a": ["x", 2, 3]}))
    with pytest.raises(InputFilesError, match="not a list of points"):
        read_clicks(path)
    path.write_text("[1, 2")
    with pytest.raises(InputFilesError, match="cannot be read"):
        read_clicks(path)
