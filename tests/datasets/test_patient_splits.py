"""Tests for nnunet_ext.datasets.patient_splits: slice case ids, folds by patient, nnU-Net's splits_final.json."""

import json

import pytest

from nnunet_ext.datasets.patient_splits import (SPLITS_FILE_NAME, patient_folds, patient_of_case, slice_case_id,
                                                write_patient_splits)

# Unequal patients, one with underscores and digits in its name (a whole BraTS folder name).
SLICES_PER_PATIENT = {"pat0003": 7, "pat0004": 3, "pat0005": 5, "brats_2013_pat0006_1": 2, "pat0007": 4}


def make_case_ids(slices_per_patient: dict = SLICES_PER_PATIENT) -> list:
    return [slice_case_id(patient, 10 * z) for patient, n in slices_per_patient.items() for z in range(n)]


def check_folds_separate_patients(splits: list, case_ids: list) -> None:
    validated = [case_id for split in splits for case_id in split["val"]]
    assert sorted(validated) == sorted(case_ids)  # every case in exactly one validation fold
    for split in splits:
        assert sorted(split["train"] + split["val"]) == sorted(case_ids)
        train_patients = {patient_of_case(c) for c in split["train"]}
        val_patients = {patient_of_case(c) for c in split["val"]}
        assert val_patients and train_patients and not train_patients & val_patients


def test_case_id_round_trip_keeps_the_patient():
    assert slice_case_id("pat0003", 70) == "pat0003_z070"
    assert slice_case_id("pat0003", 7) == "pat0003_z007"
    for patient in SLICES_PER_PATIENT:
        assert patient_of_case(slice_case_id(patient, 123)) == patient
    assert patient_of_case("a_z1_z2") == "a_z1"


@pytest.mark.parametrize("case_id", ["pat0003", "pat0003_z", "pat0003_zab", "_z070", "pat0003_070"])
def test_case_id_without_slice_is_rejected(case_id):
    with pytest.raises(ValueError, match="_z<slice index>"):
        patient_of_case(case_id)


def test_leave_one_patient_out_validates_each_patient_once_in_sorted_order():
    case_ids = make_case_ids()
    splits = patient_folds(case_ids)
    assert len(splits) == len(SLICES_PER_PATIENT)
    check_folds_separate_patients(splits, case_ids)
    assert [{patient_of_case(c) for c in split["val"]} for split in splits] == [{p} for p in
                                                                               sorted(SLICES_PER_PATIENT)]
    assert all(split["train"] == sorted(split["train"]) and split["val"] == sorted(split["val"]) for split in splits)


def test_fewer_folds_group_patients_with_balanced_case_counts():
    case_ids = make_case_ids()
    splits = patient_folds(list(reversed(case_ids)), num_folds=2)
    assert len(splits) == 2
    check_folds_separate_patients(splits, case_ids)
    # 21 cases, largest patients first into the emptier fold: 7 + 3 = 10 and 5 + 4 + 2 = 11.
    assert sorted(len(split["val"]) for split in splits) == [10, 11]
    assert splits == patient_folds(case_ids, num_folds=2)  # deterministic, independent of input order


@pytest.mark.parametrize("num_folds", [1, 6])
def test_num_folds_outside_two_to_patients_is_rejected(num_folds):
    with pytest.raises(ValueError, match="num_folds"):
        patient_folds(make_case_ids(), num_folds=num_folds)


def test_one_patient_or_duplicate_ids_are_rejected():
    with pytest.raises(ValueError, match="at least two patients"):
        patient_folds(make_case_ids({"pat0003": 4}))
    with pytest.raises(ValueError, match="more than once"):
        patient_folds(make_case_ids() + ["pat0004_z000"])


def test_written_file_is_nnunet_split_list_in_a_new_folder(tmp_path):
    folder = tmp_path / "nnUNet_preprocessed" / "Dataset503_BraTS2013Slices"
    case_ids = make_case_ids()
    path = write_patient_splits(folder, case_ids)
    assert path == folder / SPLITS_FILE_NAME == folder / "splits_final.json"
    written = json.loads(path.read_text())
    assert written == patient_folds(case_ids)
    assert all(set(split) == {"train", "val"} for split in written)
    assert [p.name for p in folder.iterdir()] == ["splits_final.json"]  # no temporary file left


def test_same_split_is_left_untouched(tmp_path):
    path = write_patient_splits(tmp_path, make_case_ids())
    before = path.stat().st_mtime_ns
    assert write_patient_splits(tmp_path, list(reversed(make_case_ids()))) == path
    assert path.stat().st_mtime_ns == before


@pytest.mark.parametrize("existing", ['[{"train": ["pat0003_z000"], "val": ["pat0004_z000"]}]', "not json"])
def test_different_existing_split_is_kept_without_overwrite(tmp_path, existing):
    path = tmp_path / SPLITS_FILE_NAME
    path.write_text(existing)
    with pytest.raises(FileExistsError) as error:
        write_patient_splits(tmp_path, make_case_ids())
    assert str(path) in str(error.value) and "overwrite=True" in str(error.value)
    assert path.read_text() == existing
    write_patient_splits(tmp_path, make_case_ids(), overwrite=True)
    assert json.loads(path.read_text()) == patient_folds(make_case_ids())
