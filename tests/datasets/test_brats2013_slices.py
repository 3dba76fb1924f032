"""Tests for nnunet_ext.datasets.brats2013_slices: the 2D slice dataset of the real BraTS 2013 sample.

The data stay in ../shared/data/brats2013_sample beside the repository (``brats_source`` in tests/conftest.py skips
where they are absent). One full conversion with the defaults (about 4 s) is shared by the module.
"""

import json
import pathlib

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_ext.cli.brats2013_slices import main
from nnunet_ext.datasets.brats2013 import CHANNEL_FILES, LABEL_FILE
from nnunet_ext.datasets.brats2013_slices import DIAGNOSIS_CLASSES, convert_brats2013_slices, patient_id_of_folder
from nnunet_ext.datasets.patient_splits import SPLITS_FILE_NAME, patient_of_case
from nnunet_ext.diagnosis.labels import load_diagnosis_labels

NAME = "Dataset503_BraTS2013Slices"
SPACING_MM = 3.0
SLICE_STEP = 3


@pytest.fixture(scope="module")
def patient_folders(brats_source) -> dict:
    """``{patient id: source case folder}`` of the real sample."""
    return {patient_id_of_folder(p.name): p for p in sorted(brats_source.iterdir()) if p.is_dir()}


@pytest.fixture(scope="module")
def converted(brats_source, tmp_path_factory):
    root = tmp_path_factory.mktemp("slices")
    return convert_brats2013_slices(brats_source, root / "raw", preprocessed_root=root / "preprocessed")


@pytest.fixture(scope="module")
def case_ids(converted) -> list:
    return sorted(p.name[: -len(".nii.gz")] for p in (converted.dataset_folder / "labelsTr").glob("*.nii.gz"))


@pytest.fixture(scope="module")
def source_labels(patient_folders) -> dict:
    """``{patient: source labels (Z, Y, X)}``."""
    return {patient: sitk.GetArrayFromImage(sitk.ReadImage(str(folder / LABEL_FILE)))
            for patient, folder in patient_folders.items()}


def slice_index(case_id: str) -> int:
    return int(case_id.rsplit("_z", 1)[1])


def read(path: pathlib.Path) -> sitk.Image:
    return sitk.ReadImage(str(path))


def test_patient_id_is_the_pat_number_of_the_folder():
    assert patient_id_of_folder("brats_2013_pat0003_1") == "pat0003"
    assert patient_id_of_folder("case_a") == "case_a"


def test_every_case_is_a_slice_of_one_patient_with_two_channels(converted, case_ids, patient_folders):
    folder = converted.dataset_folder
    assert folder.name == NAME
    assert {patient_of_case(c) for c in case_ids} == set(patient_folders) == {"pat0003", "pat0004", "pat0005",
                                                                              "pat0006"}
    assert all(slice_index(c) % SLICE_STEP == 0 for c in case_ids)
    images = sorted(p.name for p in (folder / "imagesTr").iterdir())
    assert images == sorted(f"{c}_{k:04d}.nii.gz" for c in case_ids for k in (0, 1))
    assert not (folder / "imagesTs").exists()
    assert 100 <= len(case_ids) <= 250


def test_dataset_json_is_whole_tumour_2d(converted, case_ids):
    dataset_json = json.loads((converted.dataset_folder / "dataset.json").read_text())
    assert dataset_json["labels"] == {"background": 0, "whole_tumour": 1}
    assert dataset_json["channel_names"] == {"0": "FLAIR", "1": "T1c"}
    assert dataset_json["numTraining"] == len(case_ids)
    assert dataset_json["file_ending"] == ".nii.gz"
    assert "regions_class_order" not in dataset_json
    assert "CC BY-NC-SA 3.0" in dataset_json["licence"]


def test_diagnosis_labels_load_with_both_classes(converted, case_ids):
    labels = load_diagnosis_labels(converted.dataset_folder / "diagnosis_labels.json", training_case_ids=case_ids)
    assert labels.classes == DIAGNOSIS_CLASSES == ["no enhancing tumour", "enhancing tumour"]
    assert labels.ordinal is False
    assert sorted(labels.labels) == case_ids
    assert set(labels.labels.values()) == {0, 1}


def test_diagnosis_label_is_enhancing_tumour_in_the_source_slice(converted, case_ids, source_labels):
    labels = json.loads((converted.dataset_folder / "diagnosis_labels.json").read_text())["labels"]
    for case_id in case_ids:
        source_slice = source_labels[patient_of_case(case_id)][slice_index(case_id)]
        assert labels[case_id] == int((source_slice == 4).any()), case_id
    # A slice with tumour but no enhancing part is class 0: the label is not "any tumour".
    tumour_without_enhancing = [c for c in case_ids if labels[c] == 0
                                and (source_labels[patient_of_case(c)][slice_index(c)] > 0).any()]
    assert tumour_without_enhancing


def test_summary_counts_match_the_files(converted, case_ids):
    labels = json.loads((converted.dataset_folder / "diagnosis_labels.json").read_text())["labels"]
    assert converted.slices_per_patient == {p: sum(patient_of_case(c) == p for c in case_ids)
                                            for p in converted.slices_per_patient}
    assert converted.slices_per_class == {"no enhancing tumour": sum(v == 0 for v in labels.values()),
                                          "enhancing tumour": sum(v == 1 for v in labels.values())}
    for patient, counts in converted.slices_per_patient_and_class.items():
        assert counts["enhancing tumour"] == sum(labels[c] for c in case_ids if patient_of_case(c) == patient)
    text = str(converted)
    assert str(converted.dataset_folder) in text and f"total: {len(case_ids)} slices" in text


def test_slices_are_single_slice_images_in_nnunet_2d_convention(converted, case_ids, patient_folders):
    folder = converted.dataset_folder
    for case_id in case_ids[::7]:
        labels = read(folder / "labelsTr" / f"{case_id}.nii.gz")
        assert labels.GetSize() == (80, 80, 1) and labels.GetPixelID() == sitk.sitkUInt8
        spacing = labels.GetSpacing()
        assert spacing[:2] == pytest.approx((SPACING_MM, SPACING_MM)) and spacing[2] > 100 * SPACING_MM
        source = sitk.ImageFileReader()
        source.SetFileName(str(patient_folders[patient_of_case(case_id)] / LABEL_FILE))
        source.ReadImageInformation()
        # The slice's voxel centres are where the source slice is; in plane the 3 mm grid keeps the outer corners.
        source_index = np.array([1, 1, slice_index(case_id)]) * np.array(source.GetSpacing())
        expected_origin = np.array(source.GetOrigin()) + np.reshape(source.GetDirection(), (3, 3)) @ source_index
        assert labels.GetOrigin() == pytest.approx(expected_origin)
        for channel in (0, 1):
            image = read(folder / "imagesTr" / f"{case_id}_{channel:04d}.nii.gz")
            assert image.GetPixelID() == sitk.sitkFloat32
            assert image.GetSize() == labels.GetSize()
            assert image.GetSpacing() == pytest.approx(spacing)
            assert image.GetOrigin() == pytest.approx(labels.GetOrigin())


def test_nnunet_reads_the_slice_axis_first(converted, case_ids):
    """nnU-Net moves the largest spacing first; it must be the slice axis, or 2D training slices the wrong way."""
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    folder = converted.dataset_folder
    images, properties = SimpleITKIO().read_images(
        [str(folder / "imagesTr" / f"{case_ids[0]}_{k:04d}.nii.gz") for k in (0, 1)])
    assert images.shape == (2, 1, 80, 80)
    assert int(np.argmax(properties["spacing"])) == 0


def test_whole_tumour_mask_matches_the_source_slice(converted, case_ids, source_labels):
    """Label 1 is source label > 0: its area is the source area / 9 (3x3 mm pixels) on slices with tumour."""
    checked = 0
    for case_id in case_ids:
        converted_slice = sitk.GetArrayFromImage(read(converted.dataset_folder / "labelsTr" / f"{case_id}.nii.gz"))
        assert set(np.unique(converted_slice)) <= {0, 1}
        source_area = (source_labels[patient_of_case(case_id)][slice_index(case_id)] > 0).sum()
        if source_area >= 500:
            assert converted_slice.sum() == pytest.approx(source_area / SPACING_MM ** 2, rel=0.2), case_id
            checked += 1
        elif source_area == 0:
            assert converted_slice.sum() == 0, case_id
    assert checked >= 20


def test_kept_slices_are_inside_the_brain_and_cover_the_tumour(converted, case_ids, patient_folders,
                                                                source_labels):
    for patient, folder in patient_folders.items():
        flair = sitk.GetArrayFromImage(read(folder / CHANNEL_FILES[0]))
        kept = [slice_index(c) for c in case_ids if patient_of_case(c) == patient]
        brain_area = (np.abs(flair - flair[0, 0, 0]) > 1e-4).sum(axis=(1, 2))
        tumour_slices = set(np.flatnonzero((source_labels[patient] > 0).any(axis=(1, 2))))
        assert set(z for z in tumour_slices if z % SLICE_STEP == 0) <= set(kept), patient
        tumour_free = [z for z in kept if z not in tumour_slices]
        assert len(tumour_free) >= 10, patient  # tumour-free slices too, but only where there is brain
        assert all(brain_area[z] >= 0.1 * brain_area.max() for z in tumour_free), patient


def test_splits_are_leave_one_patient_out(converted, case_ids):
    assert converted.splits_file.name == SPLITS_FILE_NAME
    assert converted.splits_file.parent.name == NAME
    assert converted.splits_file.parent.parent.name == "preprocessed"
    splits = json.loads(converted.splits_file.read_text())
    assert len(splits) == 4
    assert sorted(c for split in splits for c in split["val"]) == case_ids
    for split in splits:
        val_patients = {patient_of_case(c) for c in split["val"]}
        assert len(val_patients) == 1
        assert not val_patients & {patient_of_case(c) for c in split["train"]}
        assert sorted(split["train"] + split["val"]) == case_ids


def test_different_existing_splits_block_the_conversion(brats_source, tmp_path):
    splits = tmp_path / "preprocessed" / "Dataset077_BraTS2013Slices" / SPLITS_FILE_NAME
    splits.parent.mkdir(parents=True)
    splits.write_text('[{"train": ["x_z000"], "val": ["y_z000"]}]')
    with pytest.raises(FileExistsError, match="overwrite=True") as error:
        convert_brats2013_slices(brats_source, tmp_path / "raw", dataset_id=77, slice_step=40,
                                 in_plane_spacing_mm=8.0, patients=["pat0003", "pat0004"],
                                 preprocessed_root=tmp_path / "preprocessed")
    assert str(splits) in str(error.value)
    assert splits.read_text() == '[{"train": ["x_z000"], "val": ["y_z000"]}]'
    assert list((tmp_path / "raw").iterdir()) == []  # nothing published, no staging folder left


def test_restricted_patients_and_argument_errors(brats_source, tmp_path):
    summary = convert_brats2013_slices(brats_source, tmp_path, dataset_id=78, patients=["pat0005"], slice_step=30,
                                       in_plane_spacing_mm=6.0)
    assert list(summary.slices_per_patient) == ["pat0005"] and summary.splits_file is None
    image = read(next((summary.dataset_folder / "imagesTr").glob("*_0000.nii.gz")))
    assert image.GetSize() == (40, 40, 1)
    with pytest.raises(ValueError, match="pat0099.*available"):
        convert_brats2013_slices(brats_source, tmp_path, dataset_id=79, patients=["pat0099"])
    with pytest.raises(ValueError, match="slice_step"):
        convert_brats2013_slices(brats_source, tmp_path, dataset_id=79, slice_step=0)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        convert_brats2013_slices(brats_source, tmp_path, dataset_id=78, patients=["pat0005"])


def test_command_line_defaults_to_nnunet_folders_and_prints_the_summary(brats_source, tmp_path, monkeypatch,
                                                                       capsys):
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "preprocessed"))
    stale = tmp_path / "raw" / "Dataset088_BraTS2013Slices" / "stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    main(["--source", str(brats_source), "--id", "88", "--slice-step", "30", "--spacing", "6", "--overwrite"])
    output = capsys.readouterr().out
    assert output.splitlines()[0] == str(stale.parent)
    assert "pat0003:" in output and "total:" in output
    assert not stale.exists()
    assert (tmp_path / "preprocessed" / "Dataset088_BraTS2013Slices" / SPLITS_FILE_NAME).is_file()


def test_command_line_without_raw_folder_exits_with_a_message(monkeypatch, capsys):
    monkeypatch.delenv("nnUNet_raw", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "nnUNet_raw" in capsys.readouterr().err

