"""ViT's patch embedding (Dosovitskiy et al. 2021, Eq. 1: ``x_p E``): non-overlapping ``token_size`` patches
linearly projected to ``width`` channels, as one convolution of the plans' ``conv_op`` with kernel = stride =
``token_size``.

``[B, C, *S]`` -> ``[B, width, *(S / token_size)]``."""

from typing import Sequence, Type

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd


class PatchEmbedding(nn.Module):
    def __init__(self, conv_op: Type[_ConvNd], input_channels: int, width: int, token_size: Sequence[int]):
        super().__init__()
        self.token_size = tuple(int(t) for t in token_size)
        self.projection = conv_op(input_channels, width, kernel_size=self.token_size, stride=self.token_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(x)
