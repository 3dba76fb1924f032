"""What the reliability checks share: tiny versions of real nnU-Net plans (the session's synthetic dataset planned by
nnU-Net's default planner, 2d and 3d_fullres, and by the ResEnc-M planner, 3d_fullres), the distinct network builds
of the trainer registry on each, and the cases every check is parameterised with, generated from the registry: every
registered trainer but the short budgets and deprecated names, plus nnU-Net's own ``nnUNetTrainer`` as the
reference, on each default plan; one representative per family on the ResEnc plan."""

import json
from typing import Dict

import pytest

from nnunet_ext.reliability.network_builds import (PLAIN_NNUNET, NetworkBuilds, NetworkSetting, checked_trainers,
                                                   distinct_network_builds, family_representatives)
from nnunet_ext.reliability.tiny_plans import tiny_plans

SETTINGS = {"2d": ("nnUNetPlans", "2d"), "3d": ("nnUNetPlans", "3d_fullres"),
            "resenc_3d": ("nnUNetResEncUNetMPlans", "3d_fullres")}


CASES = ([(trainer, key) for key in ("2d", "3d") for trainer in checked_trainers()]
         + [(trainer, "resenc_3d") for trainer in family_representatives()])


def case_ids(cases):
    return [f"{trainer}-{key}" for trainer, key in cases]


CASE_IDS = case_ids(CASES)


@pytest.fixture(scope="session")
def reliability_settings(planned_synthetic) -> Dict[str, NetworkSetting]:
    settings = {}
    for key, (plans_name, configuration) in SETTINGS.items():
        plans_file, dataset_json = planned_synthetic[plans_name]
        settings[key] = NetworkSetting(tiny_plans(json.loads(plans_file.read_text())), configuration, dataset_json)
    return settings


@pytest.fixture(scope="session")
def network_builds(reliability_settings) -> Dict[str, NetworkBuilds]:
    # the shortest name first: nnU-Net's own trainer, then a family's base trainer before its loss variants
    trainers = {key: sorted({t for t, k in CASES if k == key}, key=lambda t: (len(t), t)) for key in SETTINGS}
    return {key: distinct_network_builds(setting, trainers[key]) for key, setting in reliability_settings.items()}


@pytest.fixture
def distinct_build(network_builds, reliability_settings):
    """``distinct_build(trainer, key)`` -> the setting, when ``trainer``'s network is a distinct build there (the
    first trainer with that network); skips the check for a trainer whose network another trainer's check covers,
    and for plans that cannot carry the network (their clear refusal is checked by the DDP checks)."""
    def get(trainer: str, key: str) -> NetworkSetting:
        builds = network_builds[key]
        if trainer in builds.refused:
            pytest.skip(f"these plans cannot carry {trainer}'s network (refused with a clear error)")
        if builds.representative[trainer] != trainer:
            pytest.skip(f"{trainer} builds the network of {builds.representative[trainer]}, checked there")
        return reliability_settings[key].for_trainer(trainer)
    return get
