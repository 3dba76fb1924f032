"""TransUNet (Chen et al. 2021, Fig. 1; the seminar in ``../shared/papers/004``) on nnU-Net's planned U-Net.

The CNN encoder is nnU-Net's planned encoder (PlainConv or ResEnc) cut at the stage of total stride 16 on its most
downsampled axis (or the plans' deepest stage, if they stop earlier); the builder cuts the plans, so the decoder is
nnU-Net's planned decoder for the kept stages, with their skips and deep supervision. At the cut:

* the stage's feature map ``[B, C, *G]`` becomes ``prod(G)`` tokens of 1x1 patches, linearly embedded to ``width``
  (TransUNet's "patch size 1" embedding of the CNN feature map, Eq. 1) with a learned positional embedding;
* ``depth`` ViT blocks (:class:`~nnunet_ext.architectures.building_blocks.token_transformer.TokenTransformer`,
  Eq. 2-3), the final LayerNorm;
* reshaped back to ``[B, width, *G]`` and brought to ``C`` channels by a 3x3 convolution with the plans' norm and
  nonlinearity (TransUNet's first CUP convolution), replacing the deepest skip that nnU-Net's decoder starts from.

``depth = 0`` keeps the embedding, the positional embedding and the projection back (the ablation of the blocks).
Outputs are the planned decoder's: logits ``[B, K, *S]``, or with deep supervision the list nnU-Net's loss expects for
the kept stages (highest resolution first).
"""

import math
from typing import Sequence

import torch
from dynamic_network_architectures.building_blocks.simple_conv_blocks import ConvDropoutNormReLU
from torch import nn

from nnunet_ext.architectures.building_blocks.encoder_settings import encoder_block_kwargs
from nnunet_ext.architectures.building_blocks.patch_embedding import PatchEmbedding
from nnunet_ext.architectures.building_blocks.token_transformer import (TokenTransformer, grid_to_tokens,
                                                                         tokens_to_grid)


class TransUNet(nn.Module):
    """``encoder`` (cut at stride 16) -> transformer on the deepest features -> ``decoder``.

    :param encoder: the cut planned encoder (``return_skips=True``).
    :param decoder: the planned decoder of the cut encoder.
    :param token_grid: the deepest stage's spatial size ``G`` for the plans' patch.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, token_grid: Sequence[int], width: int, depth: int,
                 heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        channels = encoder.output_channels[-1]
        self.token_grid = tuple(int(g) for g in token_grid)
        self.embedding = PatchEmbedding(encoder.conv_op, channels, width, [1] * len(self.token_grid))
        self.transformer = TokenTransformer(math.prod(self.token_grid), width, depth, heads, mlp_ratio)
        self.projection = ConvDropoutNormReLU(encoder.conv_op, width, channels, 3, 1, **encoder_block_kwargs(encoder))

    def bottleneck_tokens(self, deepest: torch.Tensor) -> torch.Tensor:
        """The deepest skip ``[B, C, *G]`` -> its embedded tokens ``[B, prod(G), width]`` (before the positional
        embedding, which the transformer adds)."""
        return grid_to_tokens(self.embedding(deepest))

    def forward(self, x: torch.Tensor):
        skips = self.encoder(x)
        deepest = skips[-1]
        tokens, _ = self.transformer(self.bottleneck_tokens(deepest))
        transformed = self.projection(tokens_to_grid(tokens, deepest.shape[2:]))
        return self.decoder([*skips[:-1], transformed])
