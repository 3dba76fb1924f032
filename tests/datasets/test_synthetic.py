"""Tests for nnunet_ext.datasets.synthetic: nnU-Net raw layout, geometry, label content, determinism, overwrite."""

import json
import pathlib

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from nnunet_ext.cli.synthetic_dataset import main
from nnunet_ext.datasets.synthetic import Grid, _lesion_masks, generate_synthetic_dataset
from nnunet_ext.diagnosis.labels import LABELS_FILE_NAME

# Anisotropic and different along every axis, so a swapped (z, y, x) <-> (x, y, z) order cannot pass.
SHAPE_ZYX = (24, 48, 40)
SPACING_ZYX = (2.5, 0.9, 1.1)
NUM_TRAINING = 8
NUM_TEST = 2
SMALL = {"num_training": 2, "num_test": 1, "shape": (12, 32, 28)}


@pytest.fixture(scope="module")
def dataset_folder(tmp_path_factory) -> pathlib.Path:
    return generate_synthetic_dataset(tmp_path_factory.mktemp("raw"), dataset_id=501, name="SyntheticLesions",
                                      num_training=NUM_TRAINING, num_test=NUM_TEST, shape=SHAPE_ZYX,
                                      spacing=SPACING_ZYX, seed=3)


def case_ids(folder: pathlib.Path, subset: str) -> list:
    """Case ids of the label files in labels{subset}."""
    return sorted(p.name[: -len(".nii.gz")] for p in (folder / f"labels{subset}").glob("*.nii.gz"))


def read_pair(folder: pathlib.Path, subset: str, case_id: str) -> tuple:
    """(image array (Z, Y, X), label array (Z, Y, X), image sitk, label sitk) of one case."""
    image = sitk.ReadImage(str(folder / f"images{subset}" / f"{case_id}_0000.nii.gz"))
    labels = sitk.ReadImage(str(folder / f"labels{subset}" / f"{case_id}.nii.gz"))
    return sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(labels), image, labels


def all_cases(folder: pathlib.Path) -> list:
    """(subset, case_id) for every training and test case."""
    return [(subset, case_id) for subset in ("Tr", "Ts") for case_id in case_ids(folder, subset)]


def test_folder_name_and_dataset_json(dataset_folder):
    assert dataset_folder.name == "Dataset501_SyntheticLesions"
    dataset_json = json.loads((dataset_folder / "dataset.json").read_text())
    assert dataset_json["channel_names"] == {"0": "CT"}
    assert dataset_json["labels"] == {"background": 0, "organ": 1, "lesion": 2}
    assert dataset_json["file_ending"] == ".nii.gz"
    assert dataset_json["numTraining"] == NUM_TRAINING == len(case_ids(dataset_folder, "Tr"))
    assert len(case_ids(dataset_folder, "Ts")) == NUM_TEST
    assert {"name", "description", "licence"} <= set(dataset_json)


def test_every_image_has_its_label_and_ids_are_unique(dataset_folder):
    for subset in ("Tr", "Ts"):
        images = sorted(p.name for p in (dataset_folder / f"images{subset}").iterdir())
        assert images == [f"{case_id}_0000.nii.gz" for case_id in case_ids(dataset_folder, subset)]
    training, test = case_ids(dataset_folder, "Tr"), case_ids(dataset_folder, "Ts")
    assert training == [f"synth_{i:03d}" for i in range(NUM_TRAINING)]
    assert not set(training) & set(test)


def test_shape_spacing_and_geometry_as_requested(dataset_folder):
    for subset, case_id in all_cases(dataset_folder):
        image_array, label_array, image, labels = read_pair(dataset_folder, subset, case_id)
        assert image_array.shape == label_array.shape == SHAPE_ZYX
        for volume in (image, labels):
            assert volume.GetSize() == SHAPE_ZYX[::-1]
            assert volume.GetSpacing() == pytest.approx(SPACING_ZYX[::-1])
            assert volume.GetOrigin() == pytest.approx((0.0, 0.0, 0.0))
            assert volume.GetDirection() == pytest.approx(np.eye(3).ravel())
        assert label_array.dtype == np.uint8
        assert image_array.dtype in (np.int16, np.float32)


def test_labels_are_background_organ_lesion_with_an_organ_everywhere(dataset_folder):
    for subset, case_id in all_cases(dataset_folder):
        _, label_array, _, _ = read_pair(dataset_folder, subset, case_id)
        assert set(np.unique(label_array)) <= {0, 1, 2}
        assert (label_array == 1).sum() > 100, case_id


def test_lesions_and_organ_lie_inside_the_body(dataset_folder):
    for subset, case_id in all_cases(dataset_folder):
        image_array, label_array, _, _ = read_pair(dataset_folder, subset, case_id)
        assert (image_array[label_array == 2] > -500).all(), case_id
        assert (image_array[label_array == 1] > -500).all(), case_id


def test_lesions_touch_the_organ(dataset_folder):
    """Every lesion component is embedded in organ tissue: its one-voxel shell contains organ voxels."""
    for subset, case_id in all_cases(dataset_folder):
        _, label_array, _, _ = read_pair(dataset_folder, subset, case_id)
        components, count = ndimage.label(label_array == 2)
        for component in range(1, count + 1):
            lesion = components == component
            shell = ndimage.binary_dilation(lesion) & ~lesion
            assert (label_array[shell] == 1).any(), (case_id, component)


@pytest.mark.parametrize("seed", range(5))
def test_lesion_masks_are_non_empty_and_inside_the_organ(seed):
    grid = Grid.create(SHAPE_ZYX, SPACING_ZYX)
    centre = grid.extent_mm / 2.0
    dz, dy, dx = grid.offsets(centre)
    organ = np.sqrt(dz ** 2 + dy ** 2 + dx ** 2) <= 9.0
    lesions = _lesion_masks(grid, organ, np.full(3, 9.0), 3, np.random.default_rng(seed))
    assert len(lesions) == 3
    for lesion in lesions:
        assert lesion.shape == SHAPE_ZYX
        assert lesion.any()
        assert not (lesion & ~organ).any()


def test_hounsfield_like_intensities(dataset_folder):
    for subset, case_id in all_cases(dataset_folder):
        image_array, label_array, _, _ = read_pair(dataset_folder, subset, case_id)
        air = image_array[(label_array == 0) & (image_array < -500)]
        assert abs(np.median(air) + 1000) < 30, case_id
        assert 35 < image_array[label_array == 1].mean() < 90, case_id


def test_every_fourth_case_has_no_lesion_and_the_others_do(dataset_folder):
    lesion_free = [case_id for subset, case_id in all_cases(dataset_folder)
                   if not (read_pair(dataset_folder, subset, case_id)[1] == 2).any()]
    assert lesion_free == ["synth_003", "synth_007"]


def test_diagnosis_labels_say_whether_a_lesion_is_present(dataset_folder):
    from nnunet_ext.diagnosis.labels import load_diagnosis_labels
    training = case_ids(dataset_folder, "Tr")
    labels = load_diagnosis_labels(dataset_folder / "diagnosis_labels.json", training,
                                   case_ids(dataset_folder, "Ts"))
    assert labels.classes == ["no lesion", "lesion"]
    for subset, case_id in all_cases(dataset_folder):
        assert labels.labels[case_id] == int((read_pair(dataset_folder, subset, case_id)[1] == 2).any())


def test_some_lesions_are_small(dataset_folder):
    """The smallest lesion is below the volume of a 5 mm radius sphere."""
    voxel_volume = float(np.prod(SPACING_ZYX))
    sizes_mm3 = []
    for subset, case_id in all_cases(dataset_folder):
        components, count = ndimage.label(read_pair(dataset_folder, subset, case_id)[1] == 2)
        sizes_mm3 += list(np.bincount(components.ravel())[1:] * voxel_volume)
    assert len(sizes_mm3) >= NUM_TRAINING
    assert min(sizes_mm3) < 4 / 3 * np.pi * 5 ** 3


def test_same_seed_same_arrays_other_seed_differs(tmp_path):
    first = generate_synthetic_dataset(tmp_path / "a", seed=5, **SMALL)
    again = generate_synthetic_dataset(tmp_path / "b", seed=5, **SMALL)
    other = generate_synthetic_dataset(tmp_path / "c", seed=6, **SMALL)
    for subset, case_id in all_cases(first):
        image, labels = read_pair(first, subset, case_id)[:2]
        image_again, labels_again = read_pair(again, subset, case_id)[:2]
        image_other, labels_other = read_pair(other, subset, case_id)[:2]
        np.testing.assert_array_equal(image, image_again)
        np.testing.assert_array_equal(labels, labels_again)
        assert not np.array_equal(image, image_other)
        assert not np.array_equal(labels, labels_other)


def test_existing_folder_is_kept_without_overwrite_and_replaced_with_it(tmp_path):
    folder = generate_synthetic_dataset(tmp_path, seed=0, **SMALL)
    label_file = folder / "labelsTr" / "synth_000.nii.gz"
    user_file = folder / "my_notes.txt"
    user_file.write_text("do not delete")
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}

    with pytest.raises(FileExistsError, match="overwrite=True") as error:
        generate_synthetic_dataset(tmp_path, seed=1, **SMALL)
    assert str(folder) in str(error.value)
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]

    replaced = generate_synthetic_dataset(tmp_path, seed=1, overwrite=True, **SMALL)
    assert replaced == folder
    assert not user_file.exists()
    assert label_file.read_bytes() != before[label_file][1]
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]


def test_other_dataset_with_the_same_id_is_refused(tmp_path):
    (tmp_path / "Dataset501_SomethingElse").mkdir()
    with pytest.raises(FileExistsError, match="Dataset501_SomethingElse"):
        generate_synthetic_dataset(tmp_path, overwrite=True, **SMALL)
    assert not (tmp_path / "Dataset501_SyntheticLesions").exists()


@pytest.mark.parametrize("arguments", [{"shape": (4, 64, 64)}, {"spacing": (2.0, 0.0, 1.0)},
                                       {"num_training": 0}, {"dataset_id": 1000}, {"name": "bad/name"}])
def test_invalid_arguments_are_rejected(tmp_path, arguments):
    with pytest.raises(ValueError):
        generate_synthetic_dataset(tmp_path, **arguments)
    assert list(tmp_path.iterdir()) == []


def test_command_line_prints_the_folder(tmp_path, capsys):
    main(["--raw", str(tmp_path), "--id", "77", "--num-training", "2", "--num-test", "1", "--shape", "12", "32", "28",
          "--seed", "4"])
    folder = tmp_path / "Dataset077_SyntheticLesions"
    assert capsys.readouterr().out.strip() == str(folder)
    assert len(case_ids(folder, "Tr")) == 2 and len(case_ids(folder, "Ts")) == 1
    assert sitk.ReadImage(str(folder / "imagesTr" / "synth_000_0000.nii.gz")).GetSize() == (28, 32, 12)


def test_nnunet_accepts_the_dataset(dataset_folder):
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    verify_dataset_integrity(str(dataset_folder), num_processes=1)


def test_command_line_reports_an_existing_folder_without_traceback(tmp_path, capsys):
    arguments = ["--raw", str(tmp_path), "--num-training", "1", "--num-test", "0", "--shape", "12", "32", "28"]
    main(arguments)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 2
    error_output = capsys.readouterr().err
    assert "Dataset501_SyntheticLesions" in error_output and "overwrite" in error_output
    assert "Traceback" not in error_output


def test_lesion_free_every_sets_the_share_of_cases_without_lesion(tmp_path):
    folder = generate_synthetic_dataset(tmp_path, seed=0, lesion_free_every=2, **SMALL)
    labels = json.loads((folder / LABELS_FILE_NAME).read_text())["labels"]
    lesion_free = sorted(case for case, label in labels.items() if label in (0, "no lesion"))
    assert lesion_free == sorted(f"synth_{index:03d}" for index in range(len(labels)) if index % 2 == 1)
    for subset, case_id in all_cases(folder):
        has_lesion = bool((read_pair(folder, subset, case_id)[1] == 2).any())
        assert has_lesion == (case_id not in lesion_free)
    with pytest.raises(ValueError, match="lesion_free_every"):
        generate_synthetic_dataset(tmp_path / "other", lesion_free_every=0, **SMALL)
