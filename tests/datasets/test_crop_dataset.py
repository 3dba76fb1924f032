"""``nnunet_ext_crops``' dataset: a raw nnU-Net dataset of fixed-size cubes around the targets of another, at one
nominal spacing so that nnU-Net's planner keeps their size, with the true geometry of every crop in ``crops.json``."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_ext.cli import crops as crops_command
from nnunet_ext.datasets.crop_dataset import CROP_SETTINGS_KEY, CROPS_FILE_NAME, read_crops, write_crop_dataset
from nnunet_ext.datasets.synthetic import generate_synthetic_dataset


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    raw = tmp_path_factory.mktemp("raw")
    return generate_synthetic_dataset(raw, dataset_id=520, num_training=5, num_test=2, shape=(20, 32, 32))


def test_training_and_test_crops_at_the_nominal_spacing_with_their_true_geometry(source, tmp_path):
    stage1 = source / "labelsTs"  # the references stand in for a Stage-1 segmentation
    folder = write_crop_dataset(source, tmp_path, 620, "Crops", stage1_predictions=stage1, size=16, margin=0.25)
    dataset = json.loads((folder / "dataset.json").read_text())
    record = json.loads((folder / CROPS_FILE_NAME).read_text())
    training = [c for c, e in record["crops"].items() if e["split"] == "training"]
    test = [c for c, e in record["crops"].items() if e["split"] == "test"]
    assert dataset["numTraining"] == len(training) >= 5  # every case has its organ
    assert dataset["labels"] == json.loads((source / "dataset.json").read_text())["labels"]
    assert dataset[CROP_SETTINGS_KEY]["size"] == 16 and dataset[CROP_SETTINGS_KEY]["margin"] == 0.25
    assert sorted(p.name for p in (folder / "labelsTr").iterdir()) == sorted(f"{c}.nii.gz" for c in training)
    assert sorted(p.name for p in (folder / "imagesTs").iterdir()) == sorted(f"{c}_0000.nii.gz" for c in test)
    for crop in training + test:
        split = "Tr" if crop in training else "Ts"
        image = sitk.ReadImage(str(folder / f"images{split}" / f"{crop}_0000.nii.gz"))
        assert image.GetSize() == (16, 16, 16) and image.GetSpacing() == (1.0, 1.0, 1.0)
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / f"labels{split}" / f"{crop}.nii.gz")))
        assert labels.max() >= 1  # the target is in its crop
        entry = record["crops"][crop]
        assert entry["size"] == 16 and entry["spacing_mm"] == pytest.approx(entry["side_mm"] / 16)
        assert entry["side_mm"] == pytest.approx(1.5 * entry["longest_axis_mm"], abs=1e-3)
    cube = read_crops(folder / CROPS_FILE_NAME)[training[0]]
    case_image = sitk.ReadImage(str(source / "imagesTr" / f"{record['crops'][training[0]]['case']}_0000.nii.gz"))
    centre_index = np.asarray(case_image.TransformPhysicalPointToContinuousIndex(cube.centre_mm))
    assert np.all(centre_index >= 0) and np.all(centre_index < np.asarray(case_image.GetSize()))


def test_an_existing_crop_dataset_is_not_replaced(source, tmp_path):
    write_crop_dataset(source, tmp_path, 621, "Crops", size=16)
    with pytest.raises(FileExistsError):
        write_crop_dataset(source, tmp_path, 621, "Crops", size=16)
    with pytest.raises(SystemExit) as exit_info:
        crops_command.main(["--raw", str(tmp_path), "-s", str(source), "-d", "621", "-n", "Crops", "--size", "16"])
    assert exit_info.value.code == 2
