"""Fixtures shared by the test suite: real nnU-Net plans of a generated dataset, a segmentation model folder as
nnUNetv2_train writes it, and the BraTS sample's location."""

import json
import os
from pathlib import Path

import pytest
import torch

from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_ext.cli.nnunet_commands import nnunet_environment, plan_and_preprocess
from nnunet_ext.datasets.brats2013 import SHARED_DATA_ENV_VAR
from nnunet_ext.datasets.synthetic import generate_synthetic_dataset
from nnunet_ext.trainers.network_builders.planned_unet import build_planned_unet

REPO_ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC_ID = 501
SYNTHETIC_NAME = "Dataset501_SyntheticLesions"
PLANNERS = {"nnUNetPlans": "ExperimentPlanner", "nnUNetResEncUNetMPlans": "nnUNetPlannerResEncM"}


def pytest_configure(config):
    """Point the package's own lookup of the BraTS sample (``NNUNET_EXT_SHARED_DATA``, used by the end-to-end
    pipelines that start before any fixture) where :func:`brats_sample_dir` looks, unless it is set already."""
    os.environ.setdefault(SHARED_DATA_ENV_VAR, str((REPO_ROOT / ".." / "shared" / "data").resolve()))


def brats_sample_dir() -> Path:
    """``$NNUNET_EXT_SHARED_DATA/brats2013_sample`` if set, else ``<repo>/../shared/data/brats2013_sample``."""
    shared_data = os.environ.get("NNUNET_EXT_SHARED_DATA")
    base = Path(shared_data) if shared_data else REPO_ROOT / ".." / "shared" / "data"
    return (base / "brats2013_sample").resolve()


@pytest.fixture(scope="session")
def brats_source() -> Path:
    source = brats_sample_dir()
    if not source.is_dir():
        pytest.skip(f"the real BraTS sample is absent: no folder {source} (it lives in ../shared/data beside the "
                    f"repository; set NNUNET_EXT_SHARED_DATA to the folder holding brats2013_sample)")
    return source


@pytest.fixture(scope="session")
def planned_synthetic(tmp_path_factory) -> dict:
    """A small synthetic dataset planned by nnU-Net's default and ResEnc-M planners (2d and 3d_fullres), without
    preprocessing. Returns ``{plans name: (plans.json path, dataset.json dict)}``."""
    work_dir = tmp_path_factory.mktemp("planned_synthetic")
    environment = nnunet_environment(work_dir)
    generate_synthetic_dataset(environment["nnUNet_raw"], dataset_id=SYNTHETIC_ID, num_training=5, num_test=0,
                               shape=(32, 48, 48))
    planned = {}
    for plans_name, planner in PLANNERS.items():
        plan_and_preprocess(SYNTHETIC_ID, ["2d", "3d_fullres"], environment, work_dir / f"{planner}.log",
                            planner=planner, preprocess=False)
        folder = Path(environment["nnUNet_preprocessed"]) / SYNTHETIC_NAME
        planned[plans_name] = (folder / f"{plans_name}.json", json.loads((folder / "dataset.json").read_text()))
    return planned


@pytest.fixture
def segmentation_model(planned_synthetic, tmp_path) -> dict:
    """A 2d segmentation model folder as nnUNetv2_train writes it (plans.json, dataset.json, a fold_0 checkpoint of
    nnU-Net's planned network with 3 outputs, trainer nnUNetTrainer). Returns its folder, plans, dataset.json and
    network."""
    plans_file, dataset_json = planned_synthetic["nnUNetPlans"]
    plans = json.loads(plans_file.read_text())
    torch.manual_seed(1)
    network = build_planned_unet(PlansManager(plans).get_configuration("2d"), 1, 3, deep_supervision=True)
    folder = tmp_path / "nnUNetTrainer__nnUNetPlans__2d"
    (folder / "fold_0").mkdir(parents=True)
    (folder / "plans.json").write_text(json.dumps(plans))
    (folder / "dataset.json").write_text(json.dumps(dataset_json))
    torch.save({"network_weights": network.state_dict(), "trainer_name": "nnUNetTrainer"},
               folder / "fold_0" / "checkpoint_final.pth")
    return {"folder": folder, "plans": plans, "plans_file": plans_file, "dataset_json": dataset_json,
            "network": network}
