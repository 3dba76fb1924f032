"""The tile pooling rules on hand-computed numbers, the foreground weight of a tile, the tap that records it, and the
rule's place in the plans (default "mean" for plans written before it existed)."""

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nnunet_ext.architectures.diagnosis.diagnosis_tap import DiagnosisRecorder, DiagnosisTap, foreground_mass
from nnunet_ext.diagnosis.aggregation import aggregation_rule, case_probabilities
from nnunet_ext.diagnosis.labels import DiagnosisLabels
from nnunet_ext.diagnosis.plans_entry import DIAGNOSIS_PLANS_KEY, add_diagnosis_settings, diagnosis_settings


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def binary_logits(*positive_probabilities):
    """One ``[1, 1]`` logit tensor per pass with the given P(positive)."""
    return [torch.tensor([[logit(p)]], dtype=torch.float64) for p in positive_probabilities]


def weights(*values):
    return [torch.tensor([float(v)]) for v in values]


def test_mean_counts_every_tile_equally():
    assert case_probabilities(binary_logits(0.2, 0.4, 0.9), tile_pooling="mean")[1] == pytest.approx(0.5)


def test_foreground_weighted_on_hand_computed_numbers():
    result = case_probabilities(binary_logits(0.2, 0.4, 0.9), weights(1, 0, 3), tile_pooling="foreground_weighted")
    assert result == pytest.approx([1 - (0.2 * 1 + 0.9 * 3) / 4, (0.2 * 1 + 0.9 * 3) / 4])


def test_the_lesion_tile_decides_when_the_other_tiles_hold_no_foreground():
    result = case_probabilities(binary_logits(0.1, 0.95, 0.1, 0.1), weights(0, 12.5, 0, 0),
                                tile_pooling="foreground_weighted")
    assert result[1] == pytest.approx(0.95)  # the mean would say 0.3125


def test_no_foreground_anywhere_falls_back_to_the_mean_and_says_so():
    with pytest.warns(UserWarning, match="case 'c7'.*no foreground in any tile.*mean over the tiles is used"):
        result = case_probabilities(binary_logits(0.2, 0.6), weights(0, 0), tile_pooling="foreground_weighted",
                                    case="case 'c7'")
    assert result[1] == pytest.approx(0.4)


def test_foreground_weighted_without_weights_is_a_clear_error():
    with pytest.raises(ValueError, match="case 'x'.*needs each pass's foreground weight.*or use tile_pooling 'mean'"):
        case_probabilities(binary_logits(0.2, 0.6), None, tile_pooling="foreground_weighted", case="case 'x'")


def test_binary_max_is_the_largest_positive_probability():
    assert case_probabilities(binary_logits(0.2, 0.7, 0.4), tile_pooling="max") == pytest.approx([0.3, 0.7])


def test_multiclass_max_is_the_whole_row_of_the_most_abnormal_tile():
    rows = np.array([[0.7, 0.2, 0.1], [0.3, 0.1, 0.6], [0.4, 0.55, 0.05]])  # lowest P(class 0): the second tile
    result = case_probabilities([torch.log(torch.tensor(rows))], tile_pooling="max")
    assert result == pytest.approx(rows[1]) and result.sum() == pytest.approx(1.0)


def test_each_fold_is_pooled_alone_then_the_folds_are_averaged():
    logits = binary_logits(0.2, 0.8, 0.5, 0.5)  # fold 0: tiles 0.2, 0.8; fold 1: tiles 0.5, 0.5
    assert case_probabilities(logits, tile_pooling="max", model_starts=[0, 2])[1] == pytest.approx((0.8 + 0.5) / 2)
    weighted = case_probabilities(logits, weights(1, 3, 1, 100), tile_pooling="foreground_weighted",
                                  model_starts=[0, 2])
    assert weighted[1] == pytest.approx(((0.2 + 3 * 0.8) / 4 + 0.5) / 2)  # fold 1's large mass does not outvote
    assert case_probabilities(logits, model_starts=[0, 2])[1] == pytest.approx(0.5)


def test_an_unknown_rule_names_the_allowed_values():
    with pytest.raises(ValueError, match=r"'median' is not a tile pooling rule; use one of "
                                         r"\['foreground_weighted', 'max', 'mean'\]"):
        case_probabilities(binary_logits(0.5), tile_pooling="median")


def test_the_rule_in_words_names_the_rule_and_the_passes():
    assert "tile_pooling 'max'" in aggregation_rule("max") and "unmirrored" in aggregation_rule("max")
    assert "mirror" in aggregation_rule("mean", from_mirrors=True)
    assert "unmirrored" not in aggregation_rule("mean", from_mirrors=True)


def test_foreground_mass_of_label_maps_and_regions():
    # 2 voxels; label map (background, lesion): P(background) = 0.75 and 0.5
    label_logits = torch.tensor([[[0.0, 0.0], [-math.log(3.0), 0.0]]])  # [B=1, K=2, S=2]
    assert foreground_mass(label_logits, softmax=True).tolist() == pytest.approx([0.25 + 0.5])
    # regions: per voxel the largest sigmoid: max(0.5, 0.25) + max(0.75, 0.1)
    region_logits = torch.tensor([[[0.0, logit(0.75)], [logit(0.25), logit(0.1)]]])
    assert foreground_mass(region_logits, softmax=False).tolist() == pytest.approx([0.5 + 0.75])
    half = foreground_mass(torch.zeros(1, 2, 64, 64, 64, dtype=torch.half), softmax=True)
    assert half.dtype == torch.float32 and half.item() == pytest.approx(0.5 * 64 ** 3)  # no fp16 overflow


class TinyDiagnosisNetwork(nn.Module):
    """Segmentation logits ``[B, 2, S]`` = the input's two channels; diagnosis logit = the input's sum."""

    softmax = True

    def __init__(self):
        super().__init__()
        self.diagnosis_output = True

    def forward(self, x):
        return [x, x.sum(dim=(1, 2))[:, None]] if self.diagnosis_output else x


def test_the_recorder_records_each_pass_with_its_tiles_foreground_weight():
    tap = DiagnosisTap()
    recorder = DiagnosisRecorder(TinyDiagnosisNetwork(), tap)
    x = torch.tensor([[[0.0, 0.0], [-math.log(3.0), 0.0]]])
    assert torch.equal(recorder(x), x)
    assert tap.weights[0].tolist() == pytest.approx([0.75])  # 1 - P(background): 0.25 + 0.5
    assert tap.logits[0].shape == (1, 1) and tap.logits[0].item() == pytest.approx(-math.log(3.0))


def test_the_tap_drops_the_passes_of_a_model_that_runs_again():
    tap = DiagnosisTap()
    tap.start_model()
    tap.record(torch.zeros(1, 1), torch.ones(1))
    tap.start_model()
    tap.record(torch.ones(1, 1), torch.ones(1))
    tap.restart_model()
    assert len(tap.logits) == len(tap.weights) == 1 and tap.model_starts == [0, 1]
    tap.clear()
    assert tap.logits == [] and tap.weights == [] and tap.model_starts == [] and tap.targets is None


LABELS = DiagnosisLabels(classes=["healthy", "ill"], ordinal=False, labels={}, source=Path("diagnosis_labels.json"))


def test_the_rule_travels_in_the_plans_and_old_plans_read_as_mean():
    plans = add_diagnosis_settings({"plans_name": "p"}, LABELS, segmentation_softmax=True, tile_pooling="max")
    assert plans[DIAGNOSIS_PLANS_KEY]["tile_pooling"] == "max" and diagnosis_settings(plans)["tile_pooling"] == "max"
    del plans[DIAGNOSIS_PLANS_KEY]["tile_pooling"]  # plans.json of a model trained before the key existed
    assert diagnosis_settings(plans)["tile_pooling"] == "mean"
    assert "tile_pooling" not in plans[DIAGNOSIS_PLANS_KEY]  # read, not rewritten


def test_an_unknown_rule_in_the_plans_is_refused_with_the_allowed_values():
    with pytest.raises(ValueError, match="plans 'p'.*'average' is not a tile pooling rule; use one of"):
        add_diagnosis_settings({"plans_name": "p"}, LABELS, segmentation_softmax=True, tile_pooling="average")
    plans = add_diagnosis_settings({"plans_name": "p", "dataset_name": "D"}, LABELS, segmentation_softmax=True)
    plans[DIAGNOSIS_PLANS_KEY]["tile_pooling"] = "average"
    with pytest.raises(ValueError, match="plans.json \\('p' of dataset 'D'\\).*use one of"):
        diagnosis_settings(plans)


def test_weights_are_ignored_by_the_rules_that_do_not_use_them():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert case_probabilities(binary_logits(0.2, 0.6), weights(0, 0))[1] == pytest.approx(0.4)
