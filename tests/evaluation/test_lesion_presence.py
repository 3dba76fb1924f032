"""Image-wise lesion presence: classes and names from nnU-Net's label manager, presence per case and per axial slice
(labels, regions, ignore label), hand-computed scores, the JSON summary beside the predictions, and the trainer
mixin that writes it after validation."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_ext.evaluation.lesion_presence import (foreground_classes, image_wise_scores, label_manager_for, presence,
                                                   summarize_lesion_presence)
from nnunet_ext.trainers.lesion_presence_validation import LesionPresenceValidation

LABELS_JSON = {"labels": {"background": 0, "edema": 1, "tumor": 2}, "file_ending": ".nii.gz"}
REGIONS_JSON = {"labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": 3},
                "regions_class_order": [1, 2, 3], "file_ending": ".nii.gz"}
IGNORE_JSON = {"labels": {"background": 0, "edema": 1, "tumor": 2, "ignore": 3}, "file_ending": ".nii.gz"}


def label_map(shape=(4, 5, 6), **voxels_by_label):
    """(z, y, x) uint8 zeros with one voxel of each label in each z slice listed for it (x = the label, so labels
    never overwrite each other), e.g. ``label_map(l1=[0, 2], l2=[2])``."""
    segmentation = np.zeros(shape, dtype=np.uint8)
    for name, slices in voxels_by_label.items():
        label = int(name[1:])
        segmentation[slices, 1, label] = label
    return segmentation


def write_case(folder: Path, case: str, segmentation: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(segmentation), str(folder / f"{case}.nii.gz"))


def test_label_classes_carry_their_dataset_json_names():
    assert foreground_classes(label_manager_for(LABELS_JSON)) == [("edema", 1), ("tumor", 2)]


def test_region_classes_follow_nnunets_foreground_regions():
    classes = foreground_classes(label_manager_for(REGIONS_JSON))
    assert classes == [("whole tumor", (1, 2, 3)), ("tumor core", (2, 3)), ("enhancing tumor", 3)]


def test_presence_per_case_of_labels():
    classes = foreground_classes(label_manager_for(LABELS_JSON))
    assert presence(label_map(l2=[1]), classes).tolist() == [False, True]
    assert presence(label_map(), classes).tolist() == [False, False]


def test_a_region_is_present_when_any_of_its_labels_is():
    classes = foreground_classes(label_manager_for(REGIONS_JSON))
    assert presence(label_map(l1=[0]), classes).tolist() == [True, False, False]
    assert presence(label_map(l2=[0]), classes).tolist() == [True, True, False]
    assert presence(label_map(l3=[0]), classes).tolist() == [True, True, True]


def test_presence_per_axial_slice_has_one_row_per_z():
    classes = foreground_classes(label_manager_for(LABELS_JSON))
    rows = presence(label_map(l1=[1, 3], l2=[3]), classes, axis=0)
    assert rows.shape == (4, 2)
    assert rows.tolist() == [[False, False], [True, False], [False, False], [True, True]]


def test_presence_per_axial_slice_of_regions():
    classes = foreground_classes(label_manager_for(REGIONS_JSON))
    rows = presence(label_map(l1=[0], l3=[2]), classes, axis=0)
    assert rows.tolist() == [[True, False, False], [False, False, False], [True, True, True], [False, False, False]]


def test_ignore_label_voxels_never_count():
    class_holding_the_ignore_value = [("x", (1, 3))]
    only_ignore = label_map(l3=[0, 1])
    assert presence(only_ignore, class_holding_the_ignore_value).tolist() == [True]
    assert presence(only_ignore, class_holding_the_ignore_value, ignore_label=3).tolist() == [False]
    assert not presence(only_ignore, class_holding_the_ignore_value, axis=0, ignore_label=3).any()
    manager = label_manager_for(IGNORE_JSON)
    assert manager.ignore_label == 3
    assert not presence(only_ignore, foreground_classes(manager), ignore_label=manager.ignore_label).any()


def test_scores_match_a_hand_computed_example():
    # columns: a (TP 1, FP 2, FN 1, TN 1), never (no positives at all), false_alarm (FP 1, TN 4)
    predicted = np.array([[1, 0, 1], [1, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0]], dtype=bool)
    reference = np.array([[1, 0, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0], [0, 0, 0]], dtype=bool)
    scores = image_wise_scores(predicted, reference, ["a", "never", "false_alarm"])
    a = scores["classes"]["a"]
    assert (a["TP"], a["FP"], a["FN"], a["TN"], a["n_reference_positive"]) == (1, 2, 1, 1, 2)
    assert a["precision"] == pytest.approx(1 / 3) and a["recall"] == pytest.approx(1 / 2)
    assert a["F1"] == pytest.approx(2 / 5)
    never = scores["classes"]["never"]
    assert never["TN"] == 5 and all(math.isnan(never[s]) for s in ("precision", "recall", "F1"))
    false_alarm = scores["classes"]["false_alarm"]
    assert false_alarm["precision"] == 0 and math.isnan(false_alarm["recall"]) and false_alarm["F1"] == 0
    assert scores["mean"]["precision"] == pytest.approx((1 / 3 + 0) / 2)
    assert scores["mean"]["recall"] == pytest.approx(1 / 2)
    assert scores["mean"]["F1"] == pytest.approx((2 / 5 + 0) / 2)


def test_scores_refuse_mismatched_arrays():
    with pytest.raises(ValueError):
        image_wise_scores(np.zeros((3, 2), bool), np.zeros((4, 2), bool), ["a", "b"])


@pytest.fixture
def labelled_folders(tmp_path):
    """Three predicted cases; the reference folder also holds a case that was not predicted."""
    prediction, reference = tmp_path / "validation", tmp_path / "gt_segmentations"
    write_case(prediction, "case_0", label_map(l1=[0]))          # edema hit
    write_case(reference, "case_0", label_map(l1=[1]))
    write_case(prediction, "case_1", label_map(l1=[2]))          # edema false alarm
    write_case(reference, "case_1", label_map())
    write_case(prediction, "case_2", label_map())                # edema missed
    write_case(reference, "case_2", label_map(l1=[3]))
    write_case(reference, "case_not_predicted", label_map(l1=[0], l2=[0]))
    return prediction, reference


def test_summary_json_is_written_beside_the_predictions(labelled_folders):
    prediction, reference = labelled_folders
    summary = summarize_lesion_presence(prediction, reference, LABELS_JSON)
    written = json.loads((prediction / "lesion_presence_summary.json").read_text())
    assert written["unit"] == "case" and written["n_images"] == 3 and "threshold" in written
    edema = written["classes"]["edema"]
    assert (edema["TP"], edema["FP"], edema["FN"], edema["TN"]) == (1, 1, 1, 0)
    assert edema["F1"] == pytest.approx(0.5)
    assert written["classes"]["tumor"]["precision"] is None and written["classes"]["tumor"]["F1"] is None
    assert written["mean"]["F1"] == pytest.approx(0.5)
    assert written["per_case"] == {"case_0": {"edema": [True, True], "tumor": [False, False]},
                                   "case_1": {"edema": [True, False], "tumor": [False, False]},
                                   "case_2": {"edema": [False, True], "tumor": [False, False]}}
    assert math.isnan(summary["classes"]["tumor"]["precision"])


def test_per_axial_slice_summary_counts_slices(labelled_folders):
    prediction, reference = labelled_folders
    summarize_lesion_presence(prediction, reference, LABELS_JSON, per_axial_slice=True)
    written = json.loads((prediction / "lesion_presence_per_slice_summary.json").read_text())
    assert written["unit"] == "axial slice" and written["n_images"] == 12 and "per_case" not in written
    edema = written["classes"]["edema"]
    # case_0: predicted z0, reference z1; case_1: predicted z2; case_2: reference z3
    assert (edema["TP"], edema["FP"], edema["FN"], edema["TN"]) == (0, 2, 2, 8)


def test_summary_of_region_dataset(tmp_path):
    prediction, reference = tmp_path / "pred", tmp_path / "ref"
    write_case(prediction, "c", label_map(l1=[0]))
    write_case(reference, "c", label_map(l3=[0]))
    summary = summarize_lesion_presence(prediction, reference, REGIONS_JSON, output_file=tmp_path / "out.json")
    assert summary["per_case"]["c"] == {"whole tumor": [True, True], "tumor core": [False, True],
                                        "enhancing tumor": [False, True]}
    assert (tmp_path / "out.json").is_file() and not (prediction / "lesion_presence_summary.json").exists()


def test_ignore_label_in_the_reference_is_not_a_lesion(tmp_path):
    prediction, reference = tmp_path / "pred", tmp_path / "ref"
    write_case(prediction, "c", label_map())
    write_case(reference, "c", label_map(l3=[0, 1, 2]))
    summary = summarize_lesion_presence(prediction, reference, IGNORE_JSON)
    assert summary["per_case"]["c"] == {"edema": [False, False], "tumor": [False, False]}


def test_a_prediction_without_reference_is_named(labelled_folders):
    prediction, reference = labelled_folders
    (reference / "case_1.nii.gz").unlink()
    with pytest.raises(FileNotFoundError) as error:
        summarize_lesion_presence(prediction, reference, LABELS_JSON)
    assert "case_1.nii.gz" in str(error.value) and str(reference) in str(error.value)


class FakeNnUNetValidation:
    """Stands in for nnUNetTrainer: its validation exports one fold's segmentations and records log lines."""

    def __init__(self, root: Path, local_rank: int = 0):
        self.output_folder = str(root / "fold_0")
        self.preprocessed_dataset_folder_base = str(root / "preprocessed")
        self.dataset_json = LABELS_JSON
        self.plans_manager = type("Plans", (), {"plans": {"plans_name": "nnUNetPlans"}})()
        self.local_rank = local_rank
        self.log = []

    def perform_actual_validation(self, save_probabilities: bool = False):
        write_case(Path(self.output_folder) / "validation", "case_0", label_map(l1=[0]))
        write_case(Path(self.preprocessed_dataset_folder_base) / "gt_segmentations", "case_0", label_map(l1=[2]))

    def print_to_log_file(self, *args, also_print_to_console=True, add_timestamp=True):
        self.log.append(" ".join(str(a) for a in args))


class LesionTrainer(LesionPresenceValidation, FakeNnUNetValidation):
    pass


def test_trainer_writes_the_summary_after_validation_and_logs_it(tmp_path):
    trainer = LesionTrainer(tmp_path)
    trainer.perform_actual_validation()
    written = json.loads((tmp_path / "fold_0" / "validation" / "lesion_presence_summary.json").read_text())
    assert written["classes"]["edema"]["TP"] == 1
    assert len(trainer.log) == 1 and "mean F1 1.0000" in trainer.log[0] and "precision" in trainer.log[0]


def test_only_rank_zero_writes_the_summary(tmp_path):
    trainer = LesionTrainer(tmp_path, local_rank=1)
    trainer.perform_actual_validation()
    assert not (tmp_path / "fold_0" / "validation" / "lesion_presence_summary.json").exists() and not trainer.log
