"""Mixin: the plans' patch size made divisible by the token size before nnU-Net's trainer reads the plans.

A ViT on 16-voxel patches needs a patch divisible by 16 on every axis; nnU-Net plans patches divisible by the
U-Net's total stride only (the BraTS 3D plans of our benchmarks: 56 x 64 x 56). The trainer rounds each axis up to
the next multiple (:func:`~nnunet_ext.architectures.building_blocks.token_grid.patch_divisible_by`; 64 x 64 x 64
there), says so in the training log, and trains, saves (``plans.json`` of the model folder) and predicts with that
patch. Rounding up keeps at least the context nnU-Net planned, at the memory cost of the larger patch. Plans whose
patch is already divisible are used unchanged."""

import copy

import torch

from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_ext.architectures.building_blocks.token_grid import patch_divisible_by


def plans_with_token_patch(plans: dict, configuration: str, token_size: int):
    """``(plans, message)``: ``plans`` unchanged and None if the configuration's patch is divisible by
    ``token_size``; else a copy whose configuration has the rounded patch, and what changed."""
    patch = list(PlansManager(plans).get_configuration(configuration).patch_size)
    rounded = list(patch_divisible_by(patch, [token_size] * len(patch)))
    if rounded == patch:
        return plans, None
    adjusted = copy.deepcopy(plans)
    adjusted["configurations"][configuration]["patch_size"] = rounded
    message = (f"The plans' patch size {'x'.join(map(str, patch))} of configuration {configuration!r} is not "
               f"divisible by the transformer's token size {token_size}: training and prediction use the patch "
               f"{'x'.join(map(str, rounded))} (each axis rounded up; recorded in the model folder's plans.json).")
    return adjusted, message


class TokenPatch:
    transformer_token_size = 16

    @classmethod
    def plans_for_training(cls, plans: dict, configuration: str) -> dict:
        """The plans this trainer trains with (what the reliability checks build on too)."""
        return plans_with_token_patch(plans, configuration, cls.transformer_token_size)[0]

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        plans, message = plans_with_token_patch(plans, configuration, self.transformer_token_size)
        super().__init__(plans, configuration, fold, dataset_json, device)
        if message is not None:
            self.print_to_log_file(message, also_print_to_console=True)
