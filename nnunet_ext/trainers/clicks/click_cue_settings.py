"""Mixin: the click cue a click-guided trainer trains with, written into its plans (``plans.json`` of the model
folder, key ``nnunet_ext_click_cue``), so that prediction builds the same cue and knows the model needs clicks.

``click_cue_radius_mm`` (40 mm): the cue's radius (:mod:`nnunet_ext.clicks.cue`)."""

import copy

import torch

from nnunet_ext.clicks.cue import DEFAULT_RADIUS_MM
from nnunet_ext.clicks.prediction_cue import CLICK_PLANS_KEY

ENCODING = "max(0, 1 - d / radius_mm), d the distance in mm to the nearest click on the preprocessed grid; 0: no click"


def plans_with_click_cue(plans: dict, radius_mm: float) -> dict:
    """A copy of ``plans`` with the click cue's settings."""
    adjusted = copy.deepcopy(plans)
    adjusted[CLICK_PLANS_KEY] = {"radius_mm": float(radius_mm), "encoding": ENCODING}
    return adjusted


class ClickCueSettings:
    click_cue_radius_mm = DEFAULT_RADIUS_MM

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans_with_click_cue(plans, self.click_cue_radius_mm), configuration, fold, dataset_json,
                         device)
