"""CATS (Li et al. 2022, "Complementary CNN and Transformer Encoders for Segmentation"; the seminar in
``../shared/papers/004``) on nnU-Net's full planned U-Net, in 2D and 3D.

Two encoders side by side on the same input:

* the CNN encoder: nnU-Net's planned encoder (PlainConv or ResEnc, all its stages), its skip ``i`` at total stride
  ``s_i`` (per axis, anisotropic allowed) with ``C_i`` channels;
* the transformer encoder: a ViT on non-overlapping ``token_size`` (16) patches of the input
  (:class:`PatchEmbedding` + :class:`TokenTransformer`), independent of the CNN.

For each CNN skip one hidden state, reshaped to its token grid at stride 16, is brought to the skip's resolution and
width as UNETR does (:class:`HiddenStateUpsampler`: transposed-conv steps where ``s_i < 16`` on an axis, strided conv
steps where ``s_i > 16``, a 1x1 convolution where ``s_i = 16``) and **added** to the CNN skip, as CATS fuses the two
paths (element-wise addition at each scale). nnU-Net's planned decoder then runs on the fused skips unchanged.

Which hidden states: those after blocks ``evenly_spaced_blocks(depth, n_skips)`` for the shallower skips, and the
transformer's final output (after the LayerNorm) for the deepest one (UNETR's z3, z6, z9 and z12 for 12 blocks and
4 skips). ``depth = 0``: every skip gets the embedded tokens with the positional embedding (the ablation).

Outputs are the planned decoder's, with its deep supervision (``decoder.deep_supervision``, which nnU-Net's trainer
toggles): the logits ``[B, K, *S]`` without, the list of logits nnU-Net's loss expects with (highest resolution
first) -- exactly what the planned U-Net returns. The planned part keeps nnU-Net's names (``encoder.*``,
``decoder.*``).
"""

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

from nnunet_ext.architectures.building_blocks.encoder_settings import encoder_block_kwargs
from nnunet_ext.architectures.building_blocks.hidden_state_upsampler import HiddenStateUpsampler, hidden_states_at
from nnunet_ext.architectures.building_blocks.patch_embedding import PatchEmbedding
from nnunet_ext.architectures.building_blocks.token_transformer import (TokenTransformer, evenly_spaced_blocks,
                                                                         grid_to_tokens, tokens_to_grid)


def cats_skip_blocks(depth: int, n_skips: int) -> tuple:
    """The 1-based blocks whose hidden states feed the ``n_skips - 1`` shallower CNN skips (the deepest one takes
    the final output): ``evenly_spaced_blocks(depth, n_skips)`` without its last (``(3, 6, 9)`` for 12 blocks and 4
    skips); zeros (the embedding) for ``depth = 0``."""
    return evenly_spaced_blocks(depth, n_skips)[:-1] if depth else (0,) * (n_skips - 1)


def total_strides(strides: Sequence[Sequence[int]]) -> list:
    """Total stride per axis of each encoder stage (cumulative product of the stages' strides)."""
    return [tuple(int(s) for s in row) for row in np.cumprod(np.vstack([np.atleast_1d(s) for s in strides]), axis=0)]


class CATS(nn.Module):
    """The planned ``encoder`` and ``decoder`` with a ViT path added to every skip (module docstring).

    ``forward(x [B, C_in, *S])`` -> what ``decoder`` returns (logits ``[B, K, *S]``, or their deep-supervision list).

    :param encoder: the planned encoder (``return_skips=True``), all stages.
    :param decoder: the planned decoder.
    :param token_grid: ``S / token_size`` per axis for the plans' patch.
    :param token_size: the ViT's patch edge per axis (16).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, input_channels: int, token_grid: Sequence[int],
                 token_size: Sequence[int], width: int, depth: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.token_grid = tuple(int(g) for g in token_grid)
        self.token_size = tuple(int(t) for t in token_size)
        strides = total_strides(encoder.strides)
        self.skip_blocks = cats_skip_blocks(depth, len(strides))
        self.embedding = PatchEmbedding(encoder.conv_op, input_channels, width, self.token_size)
        self.transformer = TokenTransformer(math.prod(self.token_grid), width, depth, heads, mlp_ratio)
        block_kwargs = encoder_block_kwargs(encoder)
        self.skip_upsamplers = nn.ModuleList(
            HiddenStateUpsampler(encoder.conv_op, width, channels, self.token_size, stride, block_kwargs)
            for channels, stride in zip(encoder.output_channels, strides))

    def transformer_skips(self, x: torch.Tensor) -> list:
        """The transformer path's contribution to each CNN skip, ``[B, C_i, *(S / s_i)]``, highest resolution
        first."""
        tokens = grid_to_tokens(self.embedding(x))
        final, hidden = hidden_states_at(self.transformer, tokens, self.skip_blocks)
        return [upsampler(tokens_to_grid(state, self.token_grid))
                for upsampler, state in zip(self.skip_upsamplers, [*hidden, final])]

    def forward(self, x: torch.Tensor):
        skips = self.encoder(x)
        fused = [cnn + vit for cnn, vit in zip(skips, self.transformer_skips(x))]
        return self.decoder(fused)
