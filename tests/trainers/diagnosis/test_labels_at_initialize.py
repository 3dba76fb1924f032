"""What a diagnosis trainer checks of its labels at ``initialize()``, on a stand-in with nnU-Net's attributes: a fold
whose training cases hold one class stops with the case ids and the fix (the whole dataset holds two); a one-class
validation set is logged; a preprocessed copy that differs from the raw file is replaced, and the log says so."""

from pathlib import Path

import pytest

from nnunet_ext.diagnosis.labels import LABELS_FILE_NAME, DiagnosisLabels, DiagnosisLabelsError
from nnunet_ext.trainers.diagnosis.labels_loading import DiagnosisLabelsLoading

CLASSES = ["benign", "malignant"]


class StandIn(DiagnosisLabelsLoading):
    def __init__(self, labels, training, validation, folder, source=None, fold=0):
        self.diagnosis_labels = DiagnosisLabels(CLASSES, False, labels, Path(source or folder / "raw.json"))
        self.split = (training, validation)
        self.fold, self.local_rank, self.preprocessed_dataset_folder_base = fold, 0, str(folder)
        self.log = []

    def do_split(self):
        return self.split

    def print_to_log_file(self, *args, **kwargs):
        self.log.append(" ".join(map(str, args)))


LABELS = {f"case_{i}": int(i >= 6) for i in range(8)}  # six benign, two malignant


def test_a_fold_that_trains_on_one_class_is_stopped_with_the_cases_and_the_fix(tmp_path):
    stand_in = StandIn(LABELS, [f"case_{i}" for i in range(6)], ["case_6", "case_7"], tmp_path)
    with pytest.raises(DiagnosisLabelsError, match="Fold 0's training cases are all 'benign'.*'malignant' are all "
                                                   "in its validation set \\(case_6, case_7\\).*splits_final.json"):
        stand_in._check_fold_classes()


def test_a_fold_with_both_classes_passes_and_a_one_class_validation_is_logged(tmp_path):
    stand_in = StandIn(LABELS, [f"case_{i}" for i in (0, 1, 2, 3, 6, 7)], ["case_4", "case_5"], tmp_path)
    stand_in._check_fold_classes()
    assert any("validation cases are all 'benign'" in line and "undefined" in line for line in stand_in.log)


def test_a_preprocessed_copy_that_differs_from_the_raw_file_is_replaced_and_logged(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / LABELS_FILE_NAME).write_text('{"edited": true}')
    (tmp_path / LABELS_FILE_NAME).write_text('{"edited": false}')
    stand_in = StandIn(LABELS, [], [], tmp_path, source=raw / LABELS_FILE_NAME)
    stand_in._update_preprocessed_copy()
    assert (tmp_path / LABELS_FILE_NAME).read_text() == '{"edited": true}'
    assert any("differed from" in line and "replaced" in line for line in stand_in.log)
    stand_in.log.clear()
    stand_in._update_preprocessed_copy()
    assert stand_in.log == []  # identical now: nothing to say
