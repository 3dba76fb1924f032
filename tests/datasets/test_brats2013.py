"""Tests for nnunet_ext.datasets.brats2013: conversion of the real BraTS 2013 sample to a region-based dataset.

The data stay in ../shared/data/brats2013_sample beside the repository (or $NNUNET_EXT_SHARED_DATA/brats2013_sample);
tests that need them skip when it is absent. Error handling is tested with fake sources and needs no data.
"""

import json
import pathlib

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_ext.cli.brats2013_dataset import main
from nnunet_ext.datasets.brats2013 import CHANNEL_FILES, LABEL_FILE, convert_brats2013_sample, default_brats_sample_dir

TARGET_SPACING_MM = 3.0
SOURCE_SPACING_MM = 1.0
VOXEL_VOLUME_RATIO = (TARGET_SPACING_MM / SOURCE_SPACING_MM) ** 3
COUNT_TOLERANCE = 0.2


@pytest.fixture(scope="module")
def source_dir(brats_source) -> pathlib.Path:
    """The real sample (``brats_source`` in tests/conftest.py skips with the reason where it is absent)."""
    return brats_source


@pytest.fixture(scope="module")
def case_names(source_dir) -> list:
    return sorted(p.name for p in source_dir.iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def dataset_folder(source_dir, tmp_path_factory) -> pathlib.Path:
    return convert_brats2013_sample(source_dir, tmp_path_factory.mktemp("raw"), target_spacing_mm=TARGET_SPACING_MM)


def read_array(path: pathlib.Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def converted_cases(dataset_folder: pathlib.Path) -> list:
    """(subset, case_id) of every converted case."""
    return [(subset, p.name[: -len(".nii.gz")]) for subset in ("Tr", "Ts")
            for p in sorted((dataset_folder / f"labels{subset}").glob("*.nii.gz"))]


def make_fake_source(source_dir: pathlib.Path, fake_dir: pathlib.Path, case_names: list) -> pathlib.Path:
    """Symlink the case files of ``source_dir`` into ``fake_dir`` (one folder per case)."""
    for case_name in case_names:
        (fake_dir / case_name).mkdir(parents=True)
        for file_name in (*CHANNEL_FILES, LABEL_FILE):
            (fake_dir / case_name / file_name).symlink_to((source_dir / case_name / file_name).resolve())
    return fake_dir


def make_empty_source(fake_dir: pathlib.Path, case_names: list) -> pathlib.Path:
    """A source with empty placeholder files: enough for checks that run before any image is read."""
    for case_name in case_names:
        (fake_dir / case_name).mkdir(parents=True)
        for file_name in (*CHANNEL_FILES, LABEL_FILE):
            (fake_dir / case_name / file_name).touch()
    return fake_dir


def test_last_case_is_held_out_and_each_case_has_two_channels(dataset_folder, case_names):
    assert dataset_folder.name == "Dataset502_BraTS2013Sample"
    training = [case_id for subset, case_id in converted_cases(dataset_folder) if subset == "Tr"]
    test = [case_id for subset, case_id in converted_cases(dataset_folder) if subset == "Ts"]
    assert training == case_names[:-1] and len(training) == 3
    assert test == case_names[-1:]
    for subset, cases in (("Tr", training), ("Ts", test)):
        images = sorted(p.name for p in (dataset_folder / f"images{subset}").iterdir())
        assert images == sorted(f"{case_id}_{channel:04d}.nii.gz" for case_id in cases for channel in (0, 1))


def test_dataset_json_is_region_based(dataset_folder):
    dataset_json = json.loads((dataset_folder / "dataset.json").read_text())
    assert dataset_json["labels"] == {"background": 0, "whole_tumor": [1, 2, 3], "tumor_core": [2, 3],
                                      "enhancing_tumor": 3}
    assert dataset_json["regions_class_order"] == [1, 2, 3]
    assert dataset_json["channel_names"] == {"0": "FLAIR", "1": "T1c"}
    assert dataset_json["numTraining"] == 3
    assert dataset_json["file_ending"] == ".nii.gz"
    assert "CC BY-NC-SA 3.0" in dataset_json["licence"]
    assert dataset_json["reference"]


def test_spacing_is_target_and_channels_share_the_label_grid(dataset_folder):
    for subset, case_id in converted_cases(dataset_folder):
        labels = sitk.ReadImage(str(dataset_folder / f"labels{subset}" / f"{case_id}.nii.gz"))
        assert labels.GetSpacing() == pytest.approx((TARGET_SPACING_MM,) * 3)
        assert labels.GetPixelID() == sitk.sitkUInt8
        assert all(35 <= n <= 80 for n in labels.GetSize()), labels.GetSize()
        for channel in (0, 1):
            image = sitk.ReadImage(str(dataset_folder / f"images{subset}" / f"{case_id}_{channel:04d}.nii.gz"))
            assert image.GetPixelID() == sitk.sitkFloat32
            assert image.GetSize() == labels.GetSize()
            assert image.GetSpacing() == pytest.approx(labels.GetSpacing())
            assert image.GetOrigin() == pytest.approx(labels.GetOrigin())
            assert image.GetDirection() == pytest.approx(labels.GetDirection())
            assert sitk.GetArrayViewFromImage(image).std() > 0.5


def test_label_values_and_remapped_volumes_match_the_source(dataset_folder, source_dir):
    """Region label 3 is source label 4; labels {1,2,3} are source > 0; {2,3} are source {1,3,4}; 1 is source 2."""
    for subset, case_id in converted_cases(dataset_folder):
        converted = read_array(dataset_folder / f"labels{subset}" / f"{case_id}.nii.gz")
        source = read_array(source_dir / case_id / LABEL_FILE).astype(np.uint8)
        assert set(np.unique(converted)) <= {0, 1, 2, 3}
        pairs = [((converted == 3), (source == 4)), ((converted > 0), (source > 0)),
                 (np.isin(converted, (2, 3)), np.isin(source, (1, 3, 4))), ((converted == 1), (source == 2))]
        for converted_mask, source_mask in pairs:
            expected = source_mask.sum() / VOXEL_VOLUME_RATIO
            assert abs(converted_mask.sum() - expected) <= COUNT_TOLERANCE * expected, (case_id, expected)


def test_tumour_stays_at_the_same_physical_position(dataset_folder, source_dir):
    """The whole-tumour centroid in mm is unchanged by crop and resampling: origin/spacing metadata are right."""
    for subset, case_id in converted_cases(dataset_folder):
        converted = sitk.ReadImage(str(dataset_folder / f"labels{subset}" / f"{case_id}.nii.gz"))
        source = sitk.ReadImage(str(source_dir / case_id / LABEL_FILE))
        centroids = []
        for image in (converted, source):
            centroid_zyx = np.argwhere(sitk.GetArrayViewFromImage(image) > 0).mean(axis=0)
            centroids.append(image.TransformContinuousIndexToPhysicalPoint(centroid_zyx[::-1].tolist()))
        assert np.linalg.norm(np.subtract(*centroids)) < 1.0, (case_id, centroids)


def test_crop_is_the_brain_bounding_box_plus_margin(dataset_folder, source_dir):
    """Each axis spans the FLAIR brain bounding box + 10 mm per side (clipped to the volume), to one 3 mm voxel,
    and the converted border is background only."""
    margin_mm = 10
    for subset, case_id in converted_cases(dataset_folder):
        flair = sitk.ReadImage(str(dataset_folder / f"images{subset}" / f"{case_id}_0000.nii.gz"))
        source_flair = read_array(source_dir / case_id / CHANNEL_FILES[0])
        background = source_flair[0, 0, 0]
        brain = np.argwhere(np.abs(source_flair - background) > 1e-4)
        first = np.maximum(brain.min(axis=0) - margin_mm, 0)
        last = np.minimum(brain.max(axis=0) + margin_mm, np.array(source_flair.shape) - 1)
        expected_extent_mm = (last - first + 1) * SOURCE_SPACING_MM
        converted_extent_mm = np.array(flair.GetSize()[::-1]) * TARGET_SPACING_MM
        assert np.all(np.abs(converted_extent_mm - expected_extent_mm) <= TARGET_SPACING_MM), case_id
        array = sitk.GetArrayViewFromImage(flair)
        for axis in range(3):
            if first[axis] > 0 and last[axis] < source_flair.shape[axis] - 1:
                border = np.take(array, [0, -1], axis=axis)
                assert np.allclose(border, background, atol=1e-3), (case_id, axis)


def test_missing_file_names_the_case_and_the_file(source_dir, case_names, tmp_path):
    fake_source = make_fake_source(source_dir, tmp_path / "source", case_names)
    (fake_source / case_names[1] / CHANNEL_FILES[1]).unlink()
    with pytest.raises(FileNotFoundError) as error:
        convert_brats2013_sample(fake_source, tmp_path / "raw")
    assert case_names[1] in str(error.value) and CHANNEL_FILES[1] in str(error.value)
    assert not (tmp_path / "raw").exists()


def test_missing_label_file_without_real_data(tmp_path):
    fake_source = make_empty_source(tmp_path / "source", ["case_a", "case_b"])
    (fake_source / "case_b" / LABEL_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=f"case_b.*{LABEL_FILE}"):
        convert_brats2013_sample(fake_source, tmp_path / "raw")


def test_missing_source_folder_says_where_it_is_expected(tmp_path):
    missing = tmp_path / "nowhere" / "brats2013_sample"
    with pytest.raises(FileNotFoundError) as error:
        convert_brats2013_sample(missing, tmp_path / "raw")
    message = str(error.value)
    assert str(missing) in message and "NNUNET_EXT_SHARED_DATA" in message and "../shared/data" in message


def test_existing_output_folder_is_kept_without_overwrite(tmp_path):
    fake_source = make_empty_source(tmp_path / "source", ["case_a", "case_b"])
    existing = tmp_path / "raw" / "Dataset502_BraTS2013Sample"
    existing.mkdir(parents=True)
    user_file = existing / "dataset.json"
    user_file.write_text("{}")
    mtime_before = user_file.stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="overwrite=True") as error:
        convert_brats2013_sample(fake_source, tmp_path / "raw")
    assert str(existing) in str(error.value)
    assert user_file.read_text() == "{}" and user_file.stat().st_mtime_ns == mtime_before
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == [existing.name]


@pytest.mark.parametrize("test_cases", [-1, 2])
def test_test_cases_must_leave_training_cases(tmp_path, test_cases):
    fake_source = make_empty_source(tmp_path / "source", ["case_a", "case_b"])
    with pytest.raises(ValueError, match="test_cases"):
        convert_brats2013_sample(fake_source, tmp_path / "raw", test_cases=test_cases)


def test_default_sample_dir_uses_env_var_then_working_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("NNUNET_EXT_SHARED_DATA", str(tmp_path / "shared_data"))
    assert default_brats_sample_dir() == (tmp_path / "shared_data" / "brats2013_sample").resolve()
    monkeypatch.delenv("NNUNET_EXT_SHARED_DATA")
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    assert default_brats_sample_dir() == (tmp_path / "shared" / "data" / "brats2013_sample").resolve()


def test_command_line_overwrites_an_existing_dataset_and_prints_it(source_dir, tmp_path, capsys):
    folder = tmp_path / "Dataset088_BraTS2013Sample"
    folder.mkdir()
    (folder / "stale.txt").write_text("old")
    main(["--raw", str(tmp_path), "--source", str(source_dir), "--id", "88", "--spacing", "6", "--overwrite"])
    assert capsys.readouterr().out.strip() == str(folder)
    assert not (folder / "stale.txt").exists()
    assert len(list((folder / "imagesTr").glob("*.nii.gz"))) == 6
    labels = sitk.ReadImage(str(next((folder / "labelsTr").glob("*.nii.gz"))))
    assert labels.GetSpacing() == pytest.approx((6.0, 6.0, 6.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]


def test_nnunet_accepts_the_dataset(dataset_folder):
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    verify_dataset_integrity(str(dataset_folder), num_processes=1)


def test_command_line_reports_a_missing_source_without_traceback(tmp_path, capsys):
    missing = tmp_path / "no_such_sample"
    with pytest.raises(SystemExit) as exit_info:
        main(["--raw", str(tmp_path / "raw"), "--source", str(missing)])
    assert exit_info.value.code == 2
    error_output = capsys.readouterr().err
    assert str(missing) in error_output and "NNUNET_EXT_SHARED_DATA" in error_output
