"""nnU-Net's planned U-Net with a Div-attention module at every junction of adjacent decoder paths.

The encoder and decoder are the ones nnU-Net's plans describe (``PlainConvUNet`` or ``ResidualEncoderUNet``, built by
nnU-Net's own ``get_network_from_plans``), untouched and under the same state-dict names. The decoder always
produces the logits of every path (its deep-supervision outputs); a chain of :class:`DivAttentionJunction` modules
then refines them from the lowest path upward, each junction taking the refined output of the one below::

    path logits  P_0 (lowest) ... P_{S-1} (full resolution)      nnU-Net's decoder, one 1x1 seg layer per path
    R_0 = P_0;  R_s = junction_s(P_s, R_{s-1}, image)           s = 1 .. S-1
    deep supervision on:  [R_{S-1}, ..., R_1, R_0]  (full resolution first, as DeepSupervisionWrapper expects)
    deep supervision off: R_{S-1}

nnU-Net weights the lowest deep-supervision output by 0, so "intermediate supervision on every path but the
lowest" (the paper) is exactly nnU-Net's deep supervision. The state dict is the same whatever the flag.
"""

from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from nnunet_ext.architectures.building_blocks.div_attention_junction import DivAttentionJunction, refine_paths
from nnunet_ext.architectures.building_blocks.encoder_settings import encoder_block_kwargs, stage_sizes
from nnunet_ext.core.weights_check import check_weights_fit

ADDED_MODULE = {"prefix": "div_attention.", "name": "Div-attention"}


def every_path_logits(decoder: nn.Module, skips: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """The segmentation logits of every path of a dynamic-network-architectures ``UNetDecoder``, lowest path first,
    whatever its ``deep_supervision`` flag: the decoder's own modules (``transpconvs``, ``stages``, ``seg_layers``),
    run in the order ``UNetDecoder.forward`` runs them.

    Reading the paths this way instead of switching ``decoder.deep_supervision`` on for the call keeps ``forward``
    free of state changes, which ``torch.compile`` would otherwise have to guard (nnU-Net compiles the network and
    toggles the flag itself between training and validation).

    :param skips: the encoder's stage outputs, highest resolution first (bottleneck last).
    :return: ``[P_0 (lowest), ..., P_{S-1} (full resolution)]``, each ``(B, K, *path_size)``.
    """
    features = skips[-1]
    logits = []
    for s, (upsample, stage, seg_layer) in enumerate(zip(decoder.transpconvs, decoder.stages, decoder.seg_layers)):
        features = stage(torch.cat((upsample(features), skips[-(s + 2)]), 1))
        logits.append(seg_layer(features))
    return logits


def default_fusion_channels(num_classes: int) -> int:
    """Width of a junction's fused feature map: at least 8, at least ``K``."""
    return max(8, num_classes)


class DivAttentionUNet(nn.Module):
    """A U-Net of dynamic-network-architectures with Div-attention junctions over its decoder paths.

    :param unet: a network with ``encoder`` (``output_channels``, ``strides``, ``kernel_sizes``, ``conv_op`` and the
        norm/non-linearity settings) and ``decoder`` (``deep_supervision`` flag, returns one logit map per path),
        as ``PlainConvUNet`` and ``ResidualEncoderUNet`` have.
    :param num_input_channels: channels of the network input.
    :param num_classes: ``K``, segmentation outputs (classes or regions).
    :param fusion_channels: width of each junction's fused map (default :func:`default_fusion_channels`).
    :param attention, masks, residual: the junctions' readings of eq. (2)-(5), see :class:`DivAttentionJunction`;
        the defaults are those of ``DivAttentionTrainer`` (issue 11's ablation).

    ``forward(x)``: ``x`` is ``(B, C_in, *patch)``; returns ``(B, K, *patch)`` logits, or with
    ``decoder.deep_supervision`` the list of every path's refined logits, full resolution first.
    """

    def __init__(self, unet: nn.Module, num_input_channels: int, num_classes: int,
                 fusion_channels: Optional[int] = None, attention: str = "divergence", masks: str = "sigmoid",
                 residual: bool = True):
        super().__init__()
        self.encoder = unet.encoder
        self.decoder = unet.decoder
        encoder = self.encoder
        fusion_channels = default_fusion_channels(num_classes) if fusion_channels is None else fusion_channels
        block_kwargs = encoder_block_kwargs(encoder)
        num_paths = len(self.decoder.stages)
        # Path s (0 = lowest) is reached by the decoder's transposed conv of stride strides[-(s + 1)] and has the
        # resolution of encoder stage -(s + 2), whose kernel size the junction's convolutions use.
        self.div_attention = nn.ModuleList([
            DivAttentionJunction(encoder.conv_op, num_classes, num_input_channels,
                                 upsample_stride=encoder.strides[-(s + 1)], kernel_size=encoder.kernel_sizes[-(s + 2)],
                                 fusion_channels=fusion_channels, attention=attention, masks=masks,
                                 residual=residual, **block_kwargs)
            for s in range(1, num_paths)
        ])
        if hasattr(unet, "initialize"):
            self.div_attention.apply(unet.initialize)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, List[torch.Tensor]]:
        refined, _ = refine_paths(self.div_attention, every_path_logits(self.decoder, self.encoder(x)), x)
        return refined if self.decoder.deep_supervision else refined[0]

    def forward_with_attention(self, x: torch.Tensor) -> Tuple[Union[torch.Tensor, List[torch.Tensor]],
                                                               List[torch.Tensor]]:
        """What ``forward`` returns, and every junction's map ``attn`` (eq. 4) ``(B, K, *path_size)``, lowest
        junction first (for exporting the maps; training never calls it)."""
        refined, attention = refine_paths(self.div_attention, every_path_logits(self.decoder, self.encoder(x)), x,
                                          return_attention=True)
        return (refined if self.decoder.deep_supervision else refined[0]), attention

    def path_sizes(self, input_size: Sequence[int]) -> List[List[int]]:
        """Spatial size of every decoder path for an input of ``input_size``, lowest path first."""
        return stage_sizes(input_size, self.encoder.strides)[:-1][::-1]

    def compute_conv_feature_map_size(self, input_size: Sequence[int]) -> np.int64:
        """Number of feature-map elements, as nnU-Net's planners use it to estimate memory (cf. PlainConvUNet)."""
        total = self.encoder.compute_conv_feature_map_size(input_size)
        total += self.decoder.compute_conv_feature_map_size(input_size)
        if not self.decoder.deep_supervision:  # the decoder counts its other paths' logits only with the flag on
            total += sum(np.prod([self.decoder.num_classes, *size], dtype=np.int64)
                         for size in self.path_sizes(input_size)[:-1])
        num_classes = self.decoder.num_classes
        for junction, size in zip(self.div_attention, self.path_sizes(input_size)[1:]):
            # upsampled, aligned, attention, masks (2), refined, sum, prediction: 8 maps of K channels
            total += 8 * np.prod([num_classes, *size], dtype=np.int64)
            total += junction.input_features.compute_conv_feature_map_size(size)
            total += junction.fusion.compute_conv_feature_map_size(size)
        return total

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict`` with an error that says which model the weights belong to."""
        if strict:
            check_weights_fit(self.state_dict(), state_dict, "a Div-attention U-Net", added_module=ADDED_MODULE)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
