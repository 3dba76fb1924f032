"""nnU-Net's planned U-Net with Div-attention inside its decoder, at the feature level (the paper's "feature maps of
two adjacent paths"; see building_blocks/div_attention_decoder.py for the equations and the reading of the masks).

The encoder is the plans' (``PlainConvUNet``'s or ``ResidualEncoderUNet``'s, under ``encoder.*``); the decoder is
:class:`DivAttentionUNetDecoder`, nnU-Net's ``UNetDecoder`` with the same state-dict names (``decoder.stages``,
``decoder.transpconvs``, ``decoder.seg_layers``, ``decoder.encoder``) plus the junctions under
``decoder.div_attention.*``. ``forward(x)`` returns what nnU-Net's U-Net returns: one ``(B, K, *patch)`` tensor, or
with ``decoder.deep_supervision`` every stage's logits, full resolution first. The state dict does not depend on
the flag.
"""

from typing import List, Sequence, Union

import numpy as np
import torch
from torch import nn

from nnunet_ext.architectures.building_blocks.div_attention_decoder import DivAttentionUNetDecoder
from nnunet_ext.architectures.building_blocks.encoder_settings import stage_sizes
from nnunet_ext.core.weights_check import check_weights_fit

ADDED_MODULE = {"prefix": "decoder.div_attention.", "name": "feature-level Div-attention"}


class DivAttentionFeaturesUNet(nn.Module):
    """:param encoder: a planned dynamic-network-architectures encoder (``return_skips=True``).
    :param decoder: a :class:`DivAttentionUNetDecoder` on that encoder."""

    def __init__(self, encoder: nn.Module, decoder: DivAttentionUNetDecoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, List[torch.Tensor]]:
        return self.decoder(self.encoder(x), x)

    def forward_with_attention(self, x: torch.Tensor):
        """What ``forward`` returns, and every junction's map, lowest junction first."""
        return self.decoder(self.encoder(x), x, return_attention=True)

    def compute_conv_feature_map_size(self, input_size: Sequence[int]) -> np.int64:
        """Feature-map elements, as nnU-Net's planners estimate memory: the plain U-Net's count plus, per junction,
        the aligned map, the attention, the masks (2), the sum, the enhanced map and its two conv blocks."""
        total = self.encoder.compute_conv_feature_map_size(input_size)
        total += self.decoder.compute_conv_feature_map_size(input_size)
        sizes = stage_sizes(input_size, self.encoder.strides)
        for s, junction in enumerate(self.decoder.div_attention, start=1):
            size = sizes[-(s + 2)]
            total += 6 * np.prod([self.encoder.output_channels[-(s + 2)], *size], dtype=np.int64)
            total += junction.input_features.compute_conv_feature_map_size(size)
            total += junction.fusion.compute_conv_feature_map_size(size)
        return total

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict`` with an error that says which model the weights belong to."""
        if strict:
            check_weights_fit(self.state_dict(), state_dict, "a feature-level Div-attention U-Net",
                              added_module=ADDED_MODULE)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
