"""UNETR (Hatamizadeh et al. 2022, "UNETR: Transformers for 3D Medical Image Segmentation", Fig. 2; the seminar in
``../shared/papers/004``) with the plans' convolution, norm and nonlinearity, in 2D and 3D.

* Encoder: a ViT on the whole input patch. Non-overlapping ``token_size`` patches (16 per axis) are embedded to
  ``width`` (:class:`PatchEmbedding`), a learned positional embedding is added and ``depth`` ViT blocks follow
  (:class:`TokenTransformer`, final LayerNorm).
* Skips: the hidden states after blocks :func:`unetr_skip_blocks` (``z3, z6, z9`` of 12 blocks), reshaped to the
  token grid at 1/16, are reconstructed by chains of (transposed conv x2 + conv block)
  (:class:`HiddenStateUpsampler`): ``z3`` by 3 steps to 1/2 with ``2 f`` channels, ``z6`` by 2 to 1/4 with ``4 f``,
  ``z9`` by 1 to 1/8 with ``8 f`` (``f = feature_size``, 16 as UNETR's and MONAI's default); a conv block on the
  input gives the full-resolution skip with ``f`` channels.
* Bottleneck: the transformer's final output (``z12`` after the LayerNorm) at 1/16 with ``width`` channels.
* Decoder: at each scale the deeper features are upsampled by a transposed convolution of stride 2, concatenated with
  the skip and passed through a conv block (:class:`UpsampleConcatConvStage`); a 1x1 convolution gives the
  ``num_classes`` logits.

Which hidden states (our reading): the three skips come from blocks ``ceil(i * depth / 4)``, ``i = 1, 2, 3`` -- the
last block of each of the first three quarters of the stack: UNETR's ``(3, 6, 9)`` for 12 blocks, and ``(1, 2, 3)``
for the seminar's compressed 3-block UNETR, so that every block feeds a skip (block 3's state before the LayerNorm
the 1/8 skip, after it the bottleneck). ``depth = 0`` (no block) is allowed, the ablation of the blocks: the skips
and the bottleneck all come from the embedded tokens with the positional embedding.

No deep supervision: the network returns the logits ``[B, num_classes, *S]`` only (UNETR's four x2 upsamplings
match nnU-Net's deep-supervision scales only on some plans); the UNETR trainers turn nnU-Net's deep supervision off.

Shapes: ``[B, C_in, *S]`` -> ``[B, num_classes, *S]`` with ``S`` divisible by ``token_size`` per axis (2D or 3D).
"""

import math
from typing import Sequence, Tuple, Type

import torch
from dynamic_network_architectures.building_blocks.helper import get_matching_convtransp
from dynamic_network_architectures.building_blocks.simple_conv_blocks import StackedConvBlocks
from torch import nn
from torch.nn.modules.conv import _ConvNd

from nnunet_ext.architectures.building_blocks.hidden_state_upsampler import HiddenStateUpsampler, hidden_states_at
from nnunet_ext.architectures.building_blocks.patch_embedding import PatchEmbedding
from nnunet_ext.architectures.building_blocks.token_transformer import (TokenTransformer, grid_to_tokens,
                                                                         tokens_to_grid)

SKIP_DIVISORS = (8, 4, 2)  # the ViT skips lie at token_size / 8, / 4, / 2 (1/2, 1/4, 1/8 for 16-voxel tokens)
SKIP_WIDTHS = (2, 4, 8)  # ... with 2, 4, 8 x feature_size channels


def unetr_skip_blocks(depth: int) -> Tuple[int, int, int]:
    """The 1-based blocks whose hidden states give UNETR's three transformer skips (1/2, 1/4, 1/8):
    ``ceil(i * depth / 4)`` for ``i = 1, 2, 3``: ``(3, 6, 9)`` for 12 blocks, ``(1, 2, 3)`` for 3; ``(0, 0, 0)``
    (the embedding) for ``depth = 0``."""
    return tuple(math.ceil(i * depth / 4) for i in (1, 2, 3))


class UpsampleConcatConvStage(nn.Module):
    """One UNETR decoder stage: ``below [B, C_below, *S]`` upsampled by a transposed convolution of kernel = stride
    = ``stride`` to ``output_channels``, concatenated with ``skip [B, output_channels, *(S * stride)]``, and two
    3x3(x3) conv blocks with the plans' norm and nonlinearity -> ``[B, output_channels, *(S * stride)]``."""

    def __init__(self, conv_op: Type[_ConvNd], below_channels: int, output_channels: int, stride: Sequence[int],
                 block_kwargs: dict):
        super().__init__()
        self.transposed_conv = get_matching_convtransp(conv_op)(below_channels, output_channels, kernel_size=stride,
                                                                stride=stride, bias=block_kwargs["conv_bias"])
        self.conv_blocks = StackedConvBlocks(2, conv_op, 2 * output_channels, output_channels, 3, 1, **block_kwargs)

    def forward(self, below: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv_blocks(torch.cat([self.transposed_conv(below), skip], dim=1))


class UNETR(nn.Module):
    """UNETR (module docstring). ``forward(x [B, input_channels, *S])`` -> logits ``[B, num_classes, *S]``.

    :param conv_op: the plans' convolution (``nn.Conv2d`` / ``nn.Conv3d``); transposed convolutions match it.
    :param token_grid: ``S / token_size`` per axis for the plans' patch.
    :param token_size: the patch edge per axis (16); each axis must be a multiple of 8 (four x2 levels).
    :param block_kwargs: the plans' block settings (``encoder_block_kwargs`` of the planned encoder).
    """

    def __init__(self, conv_op: Type[_ConvNd], input_channels: int, num_classes: int, token_grid: Sequence[int],
                 token_size: Sequence[int], width: int, depth: int, heads: int, mlp_ratio: float = 4.0,
                 feature_size: int = 16, block_kwargs: dict = None):
        super().__init__()
        block_kwargs = dict(block_kwargs or {})
        block_kwargs.setdefault("conv_bias", True)
        self.token_grid = tuple(int(g) for g in token_grid)
        self.token_size = tuple(int(t) for t in token_size)
        if any(t % SKIP_DIVISORS[0] for t in self.token_size):
            raise ValueError(f"UNETR needs a token size divisible by 8 on every axis (four x2 levels), not "
                             f"{self.token_size}")
        self.skip_blocks = unetr_skip_blocks(depth)
        self.embedding = PatchEmbedding(conv_op, input_channels, width, self.token_size)
        self.transformer = TokenTransformer(math.prod(self.token_grid), width, depth, heads, mlp_ratio)
        self.input_block = StackedConvBlocks(2, conv_op, input_channels, feature_size, 3, 1, **block_kwargs)
        skip_strides = [tuple(t // d for t in self.token_size) for d in SKIP_DIVISORS]
        self.skip_upsamplers = nn.ModuleList(
            HiddenStateUpsampler(conv_op, width, m * feature_size, self.token_size, stride, block_kwargs)
            for m, stride in zip(SKIP_WIDTHS, skip_strides))
        # deepest first: 1/16 -> 1/8 -> 1/4 -> 1/2 -> 1
        strides = [(1,) * len(self.token_size), *skip_strides, self.token_size][::-1]
        widths = [feature_size, *(m * feature_size for m in SKIP_WIDTHS), width][::-1]
        self.decoder_stages = nn.ModuleList(
            UpsampleConcatConvStage(conv_op, widths[i], widths[i + 1],
                                    tuple(a // b for a, b in zip(strides[i], strides[i + 1])), block_kwargs)
            for i in range(len(widths) - 1))
        self.segmentation_head = conv_op(feature_size, num_classes, kernel_size=1)

    def decoder_features(self, x: torch.Tensor) -> list:
        """The output of every decoder stage, deepest first: ``[B, 8f, *S/8]``, ``[B, 4f, *S/4]``, ``[B, 2f, *S/2]``,
        ``[B, f, *S]`` (for 16-voxel tokens)."""
        tokens = grid_to_tokens(self.embedding(x))
        final, hidden = hidden_states_at(self.transformer, tokens, self.skip_blocks)
        skips = [self.input_block(x)] + [upsampler(tokens_to_grid(state, self.token_grid))
                                         for upsampler, state in zip(self.skip_upsamplers, hidden)]
        features, per_stage = tokens_to_grid(final, self.token_grid), []
        for stage, skip in zip(self.decoder_stages, reversed(skips)):
            features = stage(features, skip)
            per_stage.append(features)
        return per_stage

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.segmentation_head(self.decoder_features(x)[-1])
