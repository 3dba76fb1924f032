"""The diagnosis labels file: every bad input gets an error naming the file, the case and the fix."""

import json

import pytest

from nnunet_ext.diagnosis.labels import (LABELS_FILE_NAME, DiagnosisLabelsError, copy_diagnosis_labels,
                                         find_diagnosis_labels, load_diagnosis_labels)

TRAINING = ["case_000", "case_001", "case_002"]
CLASSES = ["no enhancing tumour", "enhancing tumour"]


def write(tmp_path, content):
    path = tmp_path / LABELS_FILE_NAME
    path.write_text(json.dumps(content) if not isinstance(content, str) else content)
    return path


def test_indices_and_names_both_give_class_indices(tmp_path):
    path = write(tmp_path, {"classes": CLASSES, "labels": {"case_000": 0, "case_001": "enhancing tumour",
                                                           "case_002": 1, "test_000": 0}})
    labels = load_diagnosis_labels(path, TRAINING, other_case_ids=["test_000"])
    assert labels.classes == CLASSES and labels.ordinal is False
    assert labels.class_indices(["case_001", "case_000", "test_000"]) == [1, 0, 0]


def test_ordinal_grades_are_kept(tmp_path):
    grades = ["none", "mild", "moderate", "severe"]
    path = write(tmp_path, {"classes": grades, "ordinal": True,
                            "labels": {"case_000": 0, "case_001": 3, "case_002": "mild"}})
    labels = load_diagnosis_labels(path, TRAINING)
    assert labels.ordinal and labels.class_indices(TRAINING) == [0, 3, 1]


@pytest.mark.parametrize("content, message", [
    (None, "No diagnosis labels file at .*diagnosis_labels.json"),
    ("{not json", "is not valid JSON"),
    ({"classes": ["only one"], "labels": {"case_000": 0}}, "at least two distinct"),
    ({"classes": CLASSES, "labels": {}}, "'labels' must map case ids"),
    ({"classes": CLASSES, "labels": {"case_000": 0, "case_001": 1, "case_002": 0, "case_999": 1}},
     r"not cases of the dataset: 'case_999'"),
    ({"classes": CLASSES, "labels": {"case_000": 0, "case_001": 1}}, r"have no diagnosis label: 'case_002'"),
    ({"classes": CLASSES, "labels": {"case_000": 0, "case_001": 2, "case_002": 1}},
     r"case 'case_001' has label 2, which is not one of the declared classes"),
    ({"classes": CLASSES, "labels": {"case_000": "benign", "case_001": 1, "case_002": 1}},
     r"case 'case_000' has label 'benign'"),
    ({"classes": CLASSES, "labels": {"case_000": 1, "case_001": 1, "case_002": 1}},
     r"every training case has class 'enhancing tumour'"),
    ({"classes": CLASSES, "ordinal": "yes", "labels": {"case_000": 0, "case_001": 1, "case_002": 1}},
     "'ordinal' must be true or false"),
])
def test_bad_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / LABELS_FILE_NAME if content is None else write(tmp_path, content)
    with pytest.raises(DiagnosisLabelsError, match=message) as error:
        load_diagnosis_labels(path, TRAINING)
    assert str(path) in str(error.value)


def test_copies_travel_and_the_users_file_wins(tmp_path):
    raw, preprocessed = tmp_path / "raw", tmp_path / "preprocessed"
    raw.mkdir()
    source = write(raw, {"classes": CLASSES, "labels": {"case_000": 0, "case_001": 1, "case_002": 1}})
    copy = copy_diagnosis_labels(source, preprocessed)
    assert copy.read_bytes() == source.read_bytes()
    assert find_diagnosis_labels(None, preprocessed) == copy  # prediction without the raw data
    assert find_diagnosis_labels(raw, preprocessed) == source  # the raw file is the source when present
    source.write_text(json.dumps({"classes": CLASSES, "labels": {"case_000": 1, "case_001": 1, "case_002": 0}}))
    copy_diagnosis_labels(source, preprocessed)
    assert copy.read_bytes() == source.read_bytes()
    before = source.read_bytes()
    assert copy_diagnosis_labels(source, raw) == source and source.read_bytes() == before  # onto itself: nothing


def test_a_removed_raw_file_is_not_silently_replaced_by_the_preprocessed_copy(tmp_path):
    """The raw dataset is there but its labels file is gone: the copy of an earlier training (maybe older than what
    the user last wrote) is named, with how to accept it, instead of being used."""
    raw, preprocessed = tmp_path / "raw", tmp_path / "preprocessed"
    raw.mkdir()
    copy = copy_diagnosis_labels(write(raw, {"classes": CLASSES, "labels": {"case_000": 0}}), preprocessed)
    (raw / "diagnosis_labels.json").unlink()
    with pytest.raises(DiagnosisLabelsError, match=f"has no diagnosis_labels.json.*cp {copy} {raw}"):
        find_diagnosis_labels(raw, preprocessed)


def test_unknown_ids_say_when_the_test_cases_could_not_be_listed(tmp_path, monkeypatch):
    from nnunet_ext.diagnosis.dataset_labels import raw_data_missing_hint

    monkeypatch.delenv("nnUNet_raw", raising=False)
    path = write(tmp_path, {"classes": CLASSES, "labels": {**{c: i % 2 for i, c in enumerate(TRAINING)},
                                                           "test_000": 1}})
    with pytest.raises(DiagnosisLabelsError, match="'test_000'.*nnUNet_raw is not set"):
        load_diagnosis_labels(path, TRAINING, unknown_case_hint=raw_data_missing_hint("Dataset501_X"))


def test_missing_everywhere_names_both_places(tmp_path):
    with pytest.raises(DiagnosisLabelsError, match="raw.* or .*preprocessed"):
        find_diagnosis_labels(tmp_path / "raw", tmp_path / "preprocessed")
