"""The click cue at prediction, on nnU-Net's preprocessed grid: a user's click (world mm) lights the cue at the voxel
nnU-Net's preprocessing moved it to; simulated clicks come from the reference labels moved exactly as nnU-Net's own
preprocessing moves a case's labels."""

import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_ext.clicks.prediction_cue import CLICK_PLANS_KEY, ClickCuePrediction, ConfigurationWithClickCue
from nnunet_ext.core.errors import InputFilesError
from nnunet_ext.geometry.world_points import index_to_world

SHAPE_ZYX = (14, 36, 30)


class ClickPredictor(ClickCuePrediction, nnUNetPredictor):
    pass


@pytest.fixture
def case(tmp_path, planned_synthetic):
    """A CT-like case with a zero border, anisotropic spacing and a rotated direction, its labels (an organ with a
    lesion), and a click-guided predictor on the synthetic plans (3d_fullres)."""
    rng = np.random.default_rng(0)
    image = (40.0 + 5.0 * rng.standard_normal(SHAPE_ZYX)).astype(np.float32)
    image[:, :, :2] = 0.0
    labels = np.zeros(SHAPE_ZYX, dtype=np.uint8)
    labels[3:11, 8:26, 6:20] = 1
    labels[5:8, 12:16, 9:13] = 2
    files = {}
    for name, array in (("case_0000.nii.gz", image), ("case.nii.gz", labels)):
        written = sitk.GetImageFromArray(array)
        written.SetSpacing((0.9, 0.7, 2.7))
        written.SetOrigin((3.0, -8.0, 40.0))
        written.SetDirection((0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
        sitk.WriteImage(written, str(tmp_path / name))
        files[name] = tmp_path / name
    plans_file, dataset_json = planned_synthetic["nnUNetPlans"]
    plans = json.loads(plans_file.read_text())
    plans[CLICK_PLANS_KEY] = {"radius_mm": 20.0, "encoding": "test"}
    plans_manager = PlansManager(plans)
    predictor = ClickPredictor(device=torch.device("cpu"))
    predictor.manual_initialization(torch.nn.Identity(), plans_manager, plans_manager.get_configuration("3d_fullres"),
                                    None, dataset_json, "ClickGuidedTrainer", (0, 1, 2))
    preprocessor = predictor.configuration_manager.preprocessor_class(verbose=False)
    data, seg, properties = preprocessor.run_case([str(files["case_0000.nii.gz"])], str(files["case.nii.gz"]),
                                                  plans_manager, predictor.configuration_manager, dataset_json)
    return {"predictor": predictor, "data": data, "seg": seg, "properties": properties, "labels": labels,
            "folder": tmp_path}


def test_a_users_click_lights_the_cue_where_preprocessing_moved_its_voxel(case):
    predictor, properties = case["predictor"], case["properties"]
    world = index_to_world((12, 20, 6), properties["sitk_stuff"])  # x, y, z of a voxel inside the organ
    predictor.clicks = {"case": [list(world)]}
    cue = predictor.cue_of_case("case", case["data"].shape, properties)
    assert cue.shape == case["data"].shape[1:] and float(cue.max()) == pytest.approx(1.0, abs=0.05)
    peak = np.unravel_index(int(cue.argmax()), cue.shape)
    preprocessed_labels = case["seg"][0]
    assert preprocessed_labels[peak] == case["labels"][6, 20, 12] == 1
    predictor.clicks = {"other": [list(world)]}
    with pytest.raises(InputFilesError, match="No click was given for case 'case'"):
        predictor.cue_of_case("case", case["data"].shape, properties)


def test_simulated_clicks_use_the_reference_moved_as_nnunets_preprocessing_moves_labels(case):
    predictor = case["predictor"]
    predictor.simulated_reference = str(case["folder"])
    moved = predictor.reference_on_preprocessed_grid(case["folder"] / "case.nii.gz", case["properties"],
                                                     case["data"].shape[1:], "case")
    nnunet = case["seg"][0]
    assert moved.shape == nnunet.shape
    assert np.array_equal(moved[nnunet >= 0], nnunet[nnunet >= 0])  # nnU-Net marks the cropped-away border -1
    cue = predictor.cue_of_case("case", case["data"].shape, case["properties"])
    peaks = np.argwhere(cue.numpy() == 1.0)
    assert {int(nnunet[tuple(p)]) for p in peaks} == {1, 2}  # one click in the organ, one in the lesion


def test_the_sequential_path_preprocesses_with_the_cue_as_last_channel(case):
    predictor = case["predictor"]
    predictor.simulated_reference = str(case["folder"])
    configuration = ConfigurationWithClickCue(predictor.configuration_manager, predictor)
    assert configuration.patch_size == predictor.configuration_manager.patch_size  # the rest is nnU-Net's
    preprocessor = configuration.preprocessor_class(verbose=False)
    data, _, _ = preprocessor.run_case([str(case["folder"] / "case_0000.nii.gz")], None, predictor.plans_manager,
                                       predictor.configuration_manager, predictor.dataset_json)
    assert data.shape[0] == case["data"].shape[0] + 1
    assert np.array_equal(data[:-1], case["data"]) and data[-1].max() == 1.0
