"""A ViT hidden state brought to a CNN feature map's resolution and width, as UNETR reconstructs its skips
(Hatamizadeh et al. 2022, Fig. 2: the chains of "deconv" blocks from z3, z6 and z9); CATS (Li et al. 2022,
"Complementary CNN and Transformer Encoders for Segmentation") brings its transformer path to the CNN skips the same
way. Shared by :mod:`~nnunet_ext.architectures.unetr` and :mod:`~nnunet_ext.architectures.cats`.

A hidden state reshaped to its token grid ``[B, width, *G]`` lies at total stride ``token_stride`` (the token size,
16 per axis); the target lies at total stride ``target_stride`` per axis (anisotropic strides allowed, e.g. a 3D
stage at ``(4, 16, 16)``). Per axis the factor between them gives the steps:

* ``target < token``: upsampling by ``token / target``, in x2 steps, each a transposed convolution (kernel = stride)
  followed by a 3x3(x3) convolution block with the plans' norm and nonlinearity (UNETR's deconv block);
* ``target > token``: downsampling by ``target / token``, in x2 steps, each a strided 3x3(x3) convolution block (as
  nnU-Net's encoder downsamples);
* ``target == token`` on every axis: a 1x1 convolution (the projection to the target's width).

Axes that need fewer steps than others take stride 1 in the remaining steps; an axis that goes up while another goes
down takes all up steps first. Output: ``[B, output_channels, *(G * token_stride / target_stride)]``.

:func:`hidden_states_at` runs the transformer and returns the hidden states after chosen blocks, the inputs of the
upsamplers.
"""

from typing import List, Sequence, Tuple, Type

import torch
from dynamic_network_architectures.building_blocks.helper import get_matching_convtransp
from dynamic_network_architectures.building_blocks.simple_conv_blocks import ConvDropoutNormReLU
from torch import nn
from torch.nn.modules.conv import _ConvNd

from nnunet_ext.architectures.building_blocks.token_transformer import TokenTransformer


def factor_steps(factor: int) -> List[int]:
    """``factor`` as a product of steps, x2 steps first, the smallest prime factors otherwise (16 -> [2, 2, 2, 2],
    12 -> [2, 2, 3], 1 -> [])."""
    steps, divisor = [], 2
    while factor > 1:
        while factor % divisor:
            divisor += 1
        steps.append(divisor)
        factor //= divisor
    return steps


def resampling_steps(token_stride: Sequence[int], target_stride: Sequence[int]) -> Tuple[List[Tuple[int, ...]],
                                                                                         List[Tuple[int, ...]]]:
    """``(up steps, down steps)``: per-axis strides of each upsampling step, then of each downsampling step, from a
    map at total stride ``token_stride`` to one at ``target_stride`` (per axis). ``(16, 16, 16) -> (4, 16, 16)``
    gives ``([(2, 1, 1), (2, 1, 1)], [])``; a ValueError when an axis's strides are not multiples of one another."""
    up, down = [], []
    for token, target in zip(token_stride, target_stride):
        if token % target == 0:
            up.append(factor_steps(token // target))
            down.append([])
        elif target % token == 0:
            up.append([])
            down.append(factor_steps(target // token))
        else:
            raise ValueError(f"a hidden state at stride {tuple(token_stride)} cannot be resampled to stride "
                             f"{tuple(target_stride)}: on each axis one stride must be a multiple of the other")

    def per_step(per_axis: List[List[int]]) -> List[Tuple[int, ...]]:
        count = max(len(steps) for steps in per_axis)
        return [tuple(steps[i] if i < len(steps) else 1 for steps in per_axis) for i in range(count)]

    return per_step(up), per_step(down)


class TransposedConvBlock(nn.Module):
    """One upsampling step of UNETR's deconv chain: a transposed convolution of kernel = stride = ``stride`` (per
    axis), then a 3x3(x3) convolution block with the plans' norm and nonlinearity.

    ``[B, input_channels, *S]`` -> ``[B, output_channels, *(S * stride)]``."""

    def __init__(self, conv_op: Type[_ConvNd], input_channels: int, output_channels: int, stride: Sequence[int],
                 block_kwargs: dict):
        super().__init__()
        self.transposed_conv = get_matching_convtransp(conv_op)(input_channels, output_channels, kernel_size=stride,
                                                                stride=stride, bias=block_kwargs["conv_bias"])
        self.conv_block = ConvDropoutNormReLU(conv_op, output_channels, output_channels, 3, 1, **block_kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_block(self.transposed_conv(x))


class HiddenStateUpsampler(nn.Module):
    """A token grid ``[B, input_channels, *G]`` at total stride ``token_stride`` -> ``[B, output_channels, *G']``
    at ``target_stride`` (``G' = G * token_stride / target_stride`` per axis), by the steps the module docstring
    lists; every step has ``output_channels`` channels (as UNETR's chains).

    :param block_kwargs: the plans' block settings (``encoder_block_kwargs`` of the planned encoder).
    """

    def __init__(self, conv_op: Type[_ConvNd], input_channels: int, output_channels: int,
                 token_stride: Sequence[int], target_stride: Sequence[int], block_kwargs: dict):
        super().__init__()
        self.token_stride = tuple(int(t) for t in token_stride)
        self.target_stride = tuple(int(t) for t in target_stride)
        up, down = resampling_steps(self.token_stride, self.target_stride)
        steps, channels = [], input_channels
        for stride in up:
            steps.append(TransposedConvBlock(conv_op, channels, output_channels, stride, block_kwargs))
            channels = output_channels
        for stride in down:
            steps.append(ConvDropoutNormReLU(conv_op, channels, output_channels, 3, stride, **block_kwargs))
            channels = output_channels
        if not steps:
            steps.append(conv_op(input_channels, output_channels, kernel_size=1))
        self.steps = nn.Sequential(*steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.steps(x)

    def extra_repr(self) -> str:
        return f"token_stride={self.token_stride}, target_stride={self.target_stride}"


def hidden_states_at(transformer: TokenTransformer, tokens: torch.Tensor,
                     blocks: Sequence[int]) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """Run ``transformer`` on ``tokens`` ``[B, N, width]``: ``(final tokens after the LayerNorm, [hidden state
    after block b for each b in blocks])``, each ``[B, N, width]``. ``blocks`` are 1-based and may repeat (a block's
    state then feeds several upsamplers). A transformer without blocks (depth 0) has no hidden state: every entry is
    then its output, the embedded tokens with the positional embedding (``blocks`` are ignored)."""
    if transformer.depth == 0:
        final, _ = transformer(tokens)
        return final, [final] * len(blocks)
    if not all(1 <= b <= transformer.depth for b in blocks):
        raise ValueError(f"hidden states after blocks {tuple(blocks)} requested from {transformer.depth} blocks")
    unique = sorted(set(blocks))
    final, states = transformer(tokens, hidden_after=unique)
    by_block = dict(zip(unique, states))
    return final, [by_block[b] for b in blocks]
