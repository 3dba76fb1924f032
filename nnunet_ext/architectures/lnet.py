"""L-Net (Wei et al., *Learn to Segment Retinal Lesions and Beyond*, sec. 3.1, Fig. 3-4) on nnU-Net's planned encoders.

The contracting path is the encoder nnU-Net's plans describe (``PlainConvEncoder`` or ``ResidualEncoder``, built by
nnU-Net's own ``get_network_from_plans``). The expansive path keeps U-Net's copy-and-merge of skips, but

* upsamples by a 1x1 convolution (to the skip's channel count) followed by parameter-free (bi/tri)linear
  interpolation instead of a transposed convolution, and
* stops early: **L-Net-Ns** stops at the stage whose total stride is ``N`` (on its most-downsampled axis), and its
  logits are interpolated up by that stride to the input's size. ``N`` must be the total stride of one of the
  plans' stages (:func:`supported_output_strides`); the bottleneck's stride gives a network with no expansive path
  at all (a 1x1 layer on the bottleneck, as the paper's L-Net-32s on Inception-v3).

Deep supervision, full resolution first as nnU-Net expects::

    [up_N(logits at 1/N), logits at 1/N, logits of each lower kept stage ..., lowest]

:func:`lnet_deep_supervision_scales` gives the matching target scales. The first entry is the second interpolated,
so L-Net's trainers give the second weight 0 (:func:`lnet_deep_supervision_weights`; the paper supervises only the
full-resolution map), and nnU-Net weights the lowest entry by 0, as for its own U-Nets; the lower kept stages keep
nnU-Net's weights. The second output stays in the list (its 1x1 layer is trained through the first, so DDP sees
no unused parameter), which keeps one target scale per decoder resolution. Without deep supervision (prediction)
the network returns the full-resolution logits alone. Tensor shapes: input ``(B, C_in, *S)``; outputs ``(B, K, *)``.
"""

from typing import List, Sequence, Union

import numpy as np
import torch
from torch import nn

from nnunet_ext.architectures.building_blocks.encoder_settings import stage_sizes
from nnunet_ext.architectures.building_blocks.lnet_decoder import LNetDecoder


class LNet(nn.Module):
    """nnU-Net's planned encoder with :class:`LNetDecoder`; ``forward(x)`` as described in the module docstring."""

    def __init__(self, encoder: nn.Module, decoder: LNetDecoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, List[torch.Tensor]]:
        return self.decoder(self.encoder(x), x.shape[2:])

    def compute_conv_feature_map_size(self, input_size: Sequence[int]) -> np.int64:
        skip_sizes = stage_sizes(input_size, self.encoder.strides)
        total = self.encoder.compute_conv_feature_map_size(input_size)
        total += self.decoder.compute_conv_feature_map_size(skip_sizes, self.encoder.output_channels)
        return total + np.prod([self.decoder.seg_layers[0].out_channels, *input_size], dtype=np.int64)
