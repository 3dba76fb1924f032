"""What ``nnunet_ext_attention`` computes and refuses before any work: the maps asked for against the model's, query
points per case, files of someone else's in the output folder; and the attention-distance criterion."""

import json

import numpy as np
import pytest

from nnunet_ext.attention_maps.attention_distance import distance_summary, first_global_block
from nnunet_ext.attention_maps.export import check_outputs, queries_per_case, select_families
from nnunet_ext.core.errors import OutputFileConflictError, UserInputError

UNETR_MAPS = ["attention", "rollout", "relevance", "distance"]


def test_by_default_every_map_of_the_model_and_the_query_maps_only_with_a_query():
    assert select_families(UNETR_MAPS, None, False, "m") == ["distance"]
    assert select_families(UNETR_MAPS, None, True, "m") == UNETR_MAPS
    assert select_families(["div_attention"], None, True, "m") == ["div_attention"]
    assert select_families(UNETR_MAPS, ["distance", "rollout"], True, "m") == ["rollout", "distance"]


def test_a_map_the_model_lacks_lists_the_models_maps():
    with pytest.raises(UserInputError, match=r"has no rollout map\(s\); its maps are: div_attention") as error:
        select_families(["div_attention"], ["rollout"], True, "DivAttentionTrainer")
    assert "--maps with some of: div_attention" in str(error.value)
    with pytest.raises(UserInputError, match="has no attention maps"):
        select_families([], None, False, "nnUNetTrainer")
    with pytest.raises(UserInputError, match="are of a query point"):
        select_families(UNETR_MAPS, ["rollout"], False, "m")


def test_queries_for_every_case_or_from_a_file(tmp_path):
    assert queries_per_case(["a", "b"], [1, 2, 3], None) == {"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0]}
    assert queries_per_case(["a"], None, None) == {"a": None}
    file = tmp_path / "queries.json"
    file.write_text(json.dumps({"a": [1, 2, 3]}))
    assert queries_per_case(["a"], None, file) == {"a": [1.0, 2.0, 3.0]}
    with pytest.raises(UserInputError, match="no point for case"):
        queries_per_case(["a", "b"], None, file)
    file.write_text("{not json")
    with pytest.raises(UserInputError, match="cannot be read"):
        queries_per_case(["a"], None, file)


def test_someone_elses_map_file_stops_the_run_before_any_work(tmp_path):
    (tmp_path / "case_1").mkdir()
    (tmp_path / "case_1" / "attention_rollout.nii.gz").write_bytes(b"a user's file")
    (tmp_path / "case_1" / "notes.txt").write_text("not ours, not in the way")
    with pytest.raises(OutputFileConflictError, match="attention_rollout.nii.gz"):
        check_outputs(tmp_path, ["case_1"], with_distance=False, overwrite=False)
    check_outputs(tmp_path, ["case_1"], with_distance=False, overwrite=True)
    (tmp_path / "attention_distance.json").write_text("{}")
    with pytest.raises(OutputFileConflictError, match="attention_distance.json"):
        check_outputs(tmp_path, [], with_distance=True, overwrite=False)


def test_the_first_global_block_is_where_the_head_mean_reaches_the_fraction_of_uniform():
    assert first_global_block([10.0, 20.0, 31.0, 40.0], 40.0, 0.75) == 3
    assert first_global_block([10.0, 20.0], 40.0, 0.75) is None
    summary = distance_summary({"a": np.array([[10.0, 30.0], [40.0, 40.0]]),
                                "b": np.array([[10.0, 10.0], [20.0, 40.0]])}, 40.0, 0.75)
    assert summary["per_block_head_mean"] == [15.0, 35.0] and summary["first_global_block"] == 2
    assert summary["blocks"] == 2 and summary["heads"] == 2
