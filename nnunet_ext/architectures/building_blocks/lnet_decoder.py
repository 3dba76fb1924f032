"""L-Net's shortened expansive path (Wei et al., *Learn to Segment Retinal Lesions and Beyond*, sec. 3.1, Fig. 4)
over a planned dynamic-network-architectures encoder, and the stride arithmetic of its cut ``N``.

The expansive path keeps U-Net's copy-and-merge of skips, but upsamples by a 1x1 convolution (to the skip's channel
count) followed by parameter-free (bi/tri)linear interpolation instead of a transposed convolution, and stops at
the stage whose total stride is ``N`` (see :mod:`nnunet_ext.architectures.lnet` for the whole network and its
outputs).
"""

from typing import List, Sequence, Union

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dynamic_network_architectures.building_blocks.simple_conv_blocks import StackedConvBlocks

from nnunet_ext.architectures.building_blocks.encoder_settings import encoder_block_kwargs
from nnunet_ext.core.errors import UnsupportedConfigurationError

LINEAR_MODE_BY_TENSOR_RANK = {3: "linear", 4: "bilinear", 5: "trilinear"}


def resize_linearly(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Parameter-free (bi/tri)linear interpolation of ``(B, C, *S)`` to ``(B, C, *size)``."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode=LINEAR_MODE_BY_TENSOR_RANK[x.ndim], align_corners=False)


def total_strides(strides: Sequence[Sequence[int]]) -> List[List[int]]:
    """Total stride of each encoder stage, per axis: the cumulative product of the plans' strides."""
    return np.cumprod(np.array(strides, dtype=np.int64), axis=0).tolist()


def supported_output_strides(strides: Sequence[Sequence[int]]) -> List[int]:
    """The cuts ``N`` these plans support: each stage's total stride on its most-downsampled axis."""
    return sorted({max(stride) for stride in total_strides(strides)})


def cut_stage(strides: Sequence[Sequence[int]], output_stride: int) -> int:
    """Index of the encoder stage at which L-Net-``output_stride``s stops (the highest-resolution one with that
    stride); raises :class:`UnsupportedConfigurationError` for a cut the plans cannot give."""
    supported = supported_output_strides(strides)
    if output_stride not in supported:
        reason = (f"the plans' total stride is only {supported[-1]}" if output_stride > supported[-1] else
                  "no stage of these plans has that total stride")
        raise UnsupportedConfigurationError(
            f"L-Net-{output_stride}s cannot be built from these plans: {reason}. The cuts these plans support are "
            f"{supported} (set the trainer's output_stride, or use one of the LNetTrainer_<N>s variants).")
    return min(i for i, stride in enumerate(total_strides(strides)) if max(stride) == output_stride)


def lnet_deep_supervision_scales(strides: Sequence[Sequence[int]], output_stride: int) -> List[List[float]]:
    """nnU-Net-style target scales (fractions of the patch, per axis) of L-Net's deep-supervision outputs."""
    cut = cut_stage(strides, output_stride)
    strides_per_stage = total_strides(strides)
    kept = range(cut, max(cut + 1, len(strides) - 1))  # the cut stage and every lower decoder stage
    return [[1.0] * len(strides[0])] + [[1.0 / s for s in strides_per_stage[i]] for i in kept]


def lnet_deep_supervision_weights(nnunet_weights: Sequence[float]) -> List[float]:
    """nnU-Net's per-output weights (from ``nnUNetTrainer._build_loss``) for L-Net's outputs, with the second output,
    the logits at ``1/N``, set to 0 and the rest renormalised to sum 1: the first output is those same logits
    interpolated, so they would be supervised twice (the paper supervises only the full-resolution map). Their 1x1
    layer still gets its gradient through the first output, so DDP finds no unused parameter."""
    weights = np.array(nnunet_weights, dtype=np.float64)
    weights[1] = 0.0
    return (weights / weights.sum()).tolist()


class LNetDecoder(nn.Module):
    """L-Net's shortened expansive path over a dynamic-network-architectures encoder.

    :param encoder: ``PlainConvEncoder`` or ``ResidualEncoder`` (its ``output_channels``, ``strides``,
        ``kernel_sizes``, ``conv_op`` and norm/non-linearity settings are used).
    :param num_classes: ``K`` segmentation outputs.
    :param n_conv_per_stage: convolutions per expansive stage (the plans' ``n_conv_per_stage_decoder``), indexed as
        nnU-Net's ``UNetDecoder`` does: entry ``s`` for expansive stage ``s``, the lowest (just above the bottleneck)
        first; a cut path uses the first entries.
    :param output_stride: ``N`` of L-Net-Ns.
    """

    def __init__(self, encoder: nn.Module, num_classes: int, n_conv_per_stage: Union[int, Sequence[int]],
                 output_stride: int, deep_supervision: bool = True):
        super().__init__()
        self.deep_supervision = deep_supervision
        self.output_stride = output_stride
        self.cut = cut_stage(encoder.strides, output_stride)
        num_encoder_stages = len(encoder.output_channels)
        if isinstance(n_conv_per_stage, int):
            n_conv_per_stage = [n_conv_per_stage] * (num_encoder_stages - 1)
        conv_op = encoder.conv_op
        block_kwargs = encoder_block_kwargs(encoder)
        projections, stages = [], []
        # expansive stages from the bottleneck up to the cut; stage s merges into encoder stage `skip` and, as in
        # dynamic-network-architectures' UNetDecoder, has n_conv_per_stage[s] convolutions (lowest stage first)
        for s, skip in enumerate(range(num_encoder_stages - 2, self.cut - 1, -1)):
            below, channels = encoder.output_channels[skip + 1], encoder.output_channels[skip]
            projections.append(conv_op(below, channels, 1, 1, 0, bias=True))
            stages.append(StackedConvBlocks(n_conv_per_stage[s], conv_op, 2 * channels, channels,
                                            encoder.kernel_sizes[skip], 1, **block_kwargs))
        self.upsample_projections = nn.ModuleList(projections)
        self.stages = nn.ModuleList(stages)
        supervised_channels = [encoder.output_channels[skip]
                               for skip in range(num_encoder_stages - 2, self.cut - 1, -1)] or \
                              [encoder.output_channels[-1]]  # cut at the bottleneck: one layer on it
        self.seg_layers = nn.ModuleList([conv_op(c, num_classes, 1, 1, 0, bias=True) for c in supervised_channels])

    def forward(self, skips: List[torch.Tensor], output_size: Sequence[int]) -> Union[torch.Tensor, List[torch.Tensor]]:
        """:param skips: the encoder's outputs, bottleneck last. :param output_size: the input's spatial size."""
        x = skips[-1]
        stage_logits = []
        for s, (projection, stage) in enumerate(zip(self.upsample_projections, self.stages)):
            skip = skips[-(s + 2)]
            x = stage(torch.cat((resize_linearly(projection(x), skip.shape[2:]), skip), dim=1))
            if self.deep_supervision or s == len(self.stages) - 1:
                stage_logits.append(self.seg_layers[s](x))
        if not self.stages:
            stage_logits.append(self.seg_layers[0](x))
        full_resolution = resize_linearly(stage_logits[-1], output_size)
        if not self.deep_supervision:
            return full_resolution
        return [full_resolution] + stage_logits[::-1]

    def compute_conv_feature_map_size(self, skip_sizes: Sequence[Sequence[int]], channels: Sequence[int]) -> np.int64:
        """Feature-map elements of the expansive path; ``skip_sizes[i]`` is the spatial size of encoder stage ``i``."""
        total = np.int64(0)
        for s, stage in enumerate(self.stages):
            skip = len(skip_sizes) - 2 - s
            total += stage.compute_conv_feature_map_size(skip_sizes[skip])
            total += 2 * np.prod([channels[skip], *skip_sizes[skip]], dtype=np.int64)  # projection + resize
        return total
