"""``diagnosis_predictions.csv`` at prediction: the rows of an earlier run stay only with
``--continue_prediction``; parallel parts write their own files and, once all are there, join them under a lock;
the settings go beside it."""

import fcntl
import json
import threading
import time

import numpy as np
import pytest
import torch

from nnunet_ext.core.owned_files import record_written
from nnunet_ext.diagnosis.plans_entry import DIAGNOSIS_PLANS_KEY
from nnunet_ext.diagnosis.predictions_csv import (LOCK_FILE_NAME, read_diagnosis_csv, settings_file_name,
                                                  write_diagnosis_csv, write_prediction_diagnoses)
from nnunet_ext.diagnosis.predictor import (DIAGNOSIS_CSV_NAME, SETTINGS_FILE_NAME, DiagnosisPredictor,
                                            part_csv_name)

CLASSES = ["no", "yes"]
SETTINGS = {"tile_step_size": 0.5, "folds": [0]}


class PlansOnly:
    plans = {DIAGNOSIS_PLANS_KEY: {"classes": CLASSES, "ordinal": False, "segmentation_softmax": True}}


def predictor(probabilities: dict) -> DiagnosisPredictor:
    """A predictor after a call that predicted ``probabilities`` (case id -> P(yes))."""
    result = DiagnosisPredictor(device=torch.device("cpu"), allow_tqdm=False)
    result.plans_manager = PlansOnly()
    result.allowed_mirroring_axes = (0, 1)
    result.diagnosis_probabilities = {case: np.array([1 - p, p]) for case, p in probabilities.items()}
    return result


def rows(probabilities: dict) -> dict:
    return {case: np.array([1 - p, p]) for case, p in probabilities.items()}


def cases(path) -> dict:
    return {row["case_id"]: row["probabilities"]["yes"] for row in read_diagnosis_csv(path)}


def earlier_run(path, case_ids, probabilities, class_names=CLASSES):
    """A diagnosis CSV that an earlier prediction run of ours wrote."""
    return record_written(write_diagnosis_csv(path, case_ids, np.array(probabilities), class_names))


def test_an_earlier_run_is_replaced_unless_continuing(tmp_path):
    earlier_run(tmp_path / DIAGNOSIS_CSV_NAME, ["stale", "b"], [[0.5, 0.5], [0.9, 0.1]])
    predictor({"b": 0.7}).write_diagnosis_csv(str(tmp_path))
    assert cases(tmp_path / DIAGNOSIS_CSV_NAME) == {"b": pytest.approx(0.7)}
    earlier_run(tmp_path / DIAGNOSIS_CSV_NAME, ["a", "b"], [[0.5, 0.5], [0.9, 0.1]])
    predictor({"b": 0.7}).write_diagnosis_csv(str(tmp_path), continuing=True)
    assert cases(tmp_path / DIAGNOSIS_CSV_NAME) == {"a": pytest.approx(0.5), "b": pytest.approx(0.7)}
    settings = json.loads((tmp_path / SETTINGS_FILE_NAME).read_text())
    assert settings["use_mirroring"] is True and settings["tile_step_size"] == 0.5
    assert settings["mirroring_axes"] == [0, 1] and settings["tile_pooling"] == "mean"
    assert "tile_pooling 'mean'" in settings["aggregation"]
    assert SETTINGS_FILE_NAME == settings_file_name(DIAGNOSIS_CSV_NAME) == "diagnosis_predictions_settings.json"


def test_an_earlier_file_of_other_classes_is_replaced_with_a_warning(tmp_path):
    earlier_run(tmp_path / DIAGNOSIS_CSV_NAME, ["a"], [[0.5, 0.5]], ["benign", "malignant"])
    with pytest.warns(UserWarning, match="holds the classes \\['benign', 'malignant'\\], not the model's"):
        write_prediction_diagnoses(tmp_path, rows({"b": 0.7}), CLASSES, SETTINGS, continuing=True)
    assert cases(tmp_path / DIAGNOSIS_CSV_NAME) == {"b": pytest.approx(0.7)}


def test_parts_write_their_own_files_and_the_last_joins_them_all(tmp_path):
    earlier_run(tmp_path / DIAGNOSIS_CSV_NAME, ["stale"], [[0.5, 0.5]])  # earlier run
    predictor({"a": 0.1, "c": 0.3}).write_diagnosis_csv(str(tmp_path), num_parts=2, part_id=0)
    assert cases(tmp_path / part_csv_name(0, 2)) == {"a": pytest.approx(0.1), "c": pytest.approx(0.3)}
    assert not (tmp_path / DIAGNOSIS_CSV_NAME).exists()  # the earlier run's file went; this run's is not complete
    joined = predictor({"b": 0.2}).write_diagnosis_csv(str(tmp_path), num_parts=2, part_id=1)
    assert joined == str(tmp_path / part_csv_name(1, 2))
    assert cases(tmp_path / part_csv_name(1, 2)) == {"b": pytest.approx(0.2)}
    assert cases(tmp_path / DIAGNOSIS_CSV_NAME) == {"a": pytest.approx(0.1), "b": pytest.approx(0.2),
                                                    "c": pytest.approx(0.3)}
    part_settings = json.loads((tmp_path / "diagnosis_predictions_part1of2_settings.json").read_text())
    assert json.loads((tmp_path / SETTINGS_FILE_NAME).read_text()) == part_settings


def test_a_continued_part_keeps_its_earlier_rows_and_the_joined_file_keeps_the_rest(tmp_path):
    earlier_run(tmp_path / DIAGNOSIS_CSV_NAME, ["x"], [[0.6, 0.4]])  # an earlier run
    write_prediction_diagnoses(tmp_path, rows({"a": 0.1}), CLASSES, SETTINGS, continuing=True, num_parts=2,
                               part_id=0)
    assert cases(tmp_path / DIAGNOSIS_CSV_NAME) == {"x": pytest.approx(0.4)}  # kept while part 1 is missing
    write_prediction_diagnoses(tmp_path, rows({"b": 0.2}), CLASSES, SETTINGS, continuing=True, num_parts=2,
                               part_id=1)
    write_prediction_diagnoses(tmp_path, rows({"c": 0.3}), CLASSES, SETTINGS, continuing=True, num_parts=2,
                               part_id=0)
    assert cases(tmp_path / part_csv_name(0, 2)) == {"a": pytest.approx(0.1), "c": pytest.approx(0.3)}
    assert cases(tmp_path / DIAGNOSIS_CSV_NAME) == {"a": pytest.approx(0.1), "b": pytest.approx(0.2),
                                                    "c": pytest.approx(0.3), "x": pytest.approx(0.4)}


def test_parts_of_different_runs_are_not_joined(tmp_path):
    write_prediction_diagnoses(tmp_path, rows({"a": 0.1}), CLASSES, SETTINGS, num_parts=2, part_id=0)
    with pytest.warns(UserWarning, match="different settings.*not joined"):
        write_prediction_diagnoses(tmp_path, rows({"b": 0.2}), CLASSES, {**SETTINGS, "tile_step_size": 0.25},
                                   num_parts=2, part_id=1)
    assert not (tmp_path / DIAGNOSIS_CSV_NAME).exists()
    with pytest.warns(UserWarning, match="both hold case 'a'.*not joined"):
        write_prediction_diagnoses(tmp_path, rows({"a": 0.2}), CLASSES, SETTINGS, num_parts=2, part_id=1)
    assert not (tmp_path / DIAGNOSIS_CSV_NAME).exists()


def test_a_part_waits_for_the_lock_another_part_holds(tmp_path):
    write_prediction_diagnoses(tmp_path, rows({"a": 0.1}), CLASSES, SETTINGS, num_parts=2, part_id=0)
    finished = threading.Event()

    def part_1():
        write_prediction_diagnoses(tmp_path, rows({"b": 0.2}), CLASSES, SETTINGS, num_parts=2, part_id=1)
        finished.set()

    with open(tmp_path / LOCK_FILE_NAME, "a") as lock:  # another part, joining
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        thread = threading.Thread(target=part_1, daemon=True)
        thread.start()
        time.sleep(0.3)
        assert not finished.is_set() and not (tmp_path / part_csv_name(1, 2)).exists()
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    thread.join(10)
    assert finished.is_set() and set(cases(tmp_path / DIAGNOSIS_CSV_NAME)) == {"a", "b"}


@pytest.mark.parametrize("part_id, num_parts", [(2, 2), (-1, 2), (0, 0)])
def test_a_part_outside_the_parts_is_refused(tmp_path, part_id, num_parts):
    with pytest.raises(ValueError, match="need num_parts >= 1 and 0 <= part_id < num_parts"):
        write_prediction_diagnoses(tmp_path, rows({"a": 0.1}), CLASSES, SETTINGS, num_parts=num_parts,
                                   part_id=part_id)
