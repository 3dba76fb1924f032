"""Tiny versions of real nnU-Net plans for the reliability checks: the planner's architecture (stages, strides,
kernels, norms) unchanged, the widths divided and the patch halved along every axis where the half is still divisible
by the network's total stride, so that a forward and backward pass takes milliseconds. A diagnosis trainer's plans also get the diagnosis classes it would store (binary, "no" / "yes")."""

import copy
import math
from pathlib import Path

from nnunet_ext.diagnosis.labels import DiagnosisLabels
from nnunet_ext.diagnosis.plans_entry import add_diagnosis_settings

DIAGNOSIS_CLASSES = ("no", "yes")


def halved_patch(patch_size, strides) -> list:
    """``patch_size`` halved along each axis whose half stays divisible by the product of that axis' strides."""
    total = [math.prod(int(stage[axis]) for stage in strides) for axis in range(len(patch_size))]
    return [p // 2 if p % 2 == 0 and (p // 2) % t == 0 else p for p, t in zip(patch_size, total)]


def tiny_plans(plans: dict, width_divisor: int = 8, minimum_width: int = 4) -> dict:
    """A copy of ``plans`` whose every configuration's ``features_per_stage`` is divided by ``width_divisor`` (at
    least ``minimum_width``) and patch halved (:func:`halved_patch`), with binary diagnosis classes added for the
    diagnosis trainers."""
    plans = copy.deepcopy(plans)
    for configuration in plans["configurations"].values():
        arch_kwargs = configuration.get("architecture", {}).get("arch_kwargs", {})
        if "features_per_stage" in arch_kwargs:
            arch_kwargs["features_per_stage"] = [max(minimum_width, int(f) // width_divisor)
                                                 for f in arch_kwargs["features_per_stage"]]
        if "patch_size" in configuration and "strides" in arch_kwargs:
            configuration["patch_size"] = halved_patch(configuration["patch_size"], arch_kwargs["strides"])
    labels = DiagnosisLabels(classes=list(DIAGNOSIS_CLASSES), ordinal=False, labels={}, source=Path("<tiny plans>"))
    return add_diagnosis_settings(plans, labels, segmentation_softmax=True)
