"""nnU-Net's planned U-Net cut at the stage of a given total stride: the plans' encoder and decoder for the first
stages only (TransUNet and TransFuse stop their CNN at total stride 16)."""

import copy
from typing import List, Sequence

import numpy as np

from nnunet_ext.trainers.network_builders.planned_unet import build_planned_unet

PER_STAGE_KEYS = ("features_per_stage", "kernel_sizes", "strides", "n_conv_per_stage", "n_blocks_per_stage",
                  "bottleneck_channels")
PER_DECODER_STAGE_KEYS = ("n_conv_per_stage_decoder",)


def stage_at_total_stride(strides: Sequence[Sequence[int]], total_stride: int) -> int:
    """Index of the first stage whose total stride reaches ``total_stride`` on its most downsampled axis (stage 4 of
    nnU-Net's usual 2D plans for 16); the deepest stage if none does."""
    cumulative = np.cumprod(np.vstack([np.atleast_1d(s) for s in strides]), axis=0).max(axis=1)
    reached = np.nonzero(cumulative >= total_stride)[0]
    return int(reached[0]) if len(reached) else len(strides) - 1


def cut_arch_kwargs(arch_kwargs: dict, kept_stages: int) -> dict:
    """The plans' ``arch_kwargs`` for the first ``kept_stages`` stages (per-stage lists cut, ``n_stages`` set)."""
    cut = copy.deepcopy(dict(arch_kwargs))
    cut["n_stages"] = kept_stages
    for key in PER_STAGE_KEYS:
        if isinstance(cut.get(key), (list, tuple)):
            cut[key] = list(cut[key])[:kept_stages]
    for key in PER_DECODER_STAGE_KEYS:
        if isinstance(cut.get(key), (list, tuple)):
            cut[key] = list(cut[key])[:kept_stages - 1]
    return cut


class _CutConfiguration:
    """The configuration manager as :func:`build_planned_unet` reads it, with the cut ``arch_kwargs``."""

    def __init__(self, configuration_manager, kept_stages: int):
        self._configuration_manager = configuration_manager
        self.network_arch_init_kwargs = cut_arch_kwargs(configuration_manager.network_arch_init_kwargs, kept_stages)

    def __getattr__(self, name):
        return getattr(self._configuration_manager, name)


def build_cut_planned_unet(configuration_manager, num_input_channels: int, num_output_channels: int,
                           deep_supervision: bool, kept_stages: int):
    """The planned network (``PlainConvUNet``, ``ResidualEncoderUNet``) of the first ``kept_stages`` stages, built
    and initialised by nnU-Net's ``get_network_from_plans``."""
    return build_planned_unet(_CutConfiguration(configuration_manager, kept_stages), num_input_channels,
                              num_output_channels, deep_supervision)


def cut_deep_supervision_scales(pool_op_kernel_sizes: Sequence[Sequence[int]], kept_stages: int) -> List[list]:
    """nnU-Net's deep-supervision target scales (``nnUNetTrainer._get_deep_supervision_scales``) for the first
    ``kept_stages`` stages: one per output of the cut decoder, highest resolution first."""
    return [list(i) for i in 1 / np.cumprod(np.vstack(pool_op_kernel_sizes[:kept_stages]), axis=0)][:-1]
