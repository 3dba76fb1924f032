"""TransFuse's BiFusion module (Zhang et al. 2021, sec. 2.2, Eq. 1; the seminar in ``../shared/papers/003``, 3.3):
fuses a CNN feature ``g`` and a transformer feature ``t`` of the same resolution::

    t_hat = ChannelAttn(t)                       squeeze-and-excitation on the transformer feature
    g_hat = SpatialAttn(g)                       CBAM's spatial attention on the CNN feature
    b_hat = Conv(t W_1 (Hadamard) g W_2)         bilinear interaction of the two projections
    f     = Residual([b_hat, t_hat, g_hat])

Built from the plans' ``conv_op`` with the plans' norm and nonlinearity where the authors use BatchNorm and ReLU
(W_1, W_2: 1x1 conv + norm; Conv: 3x3 conv + norm + nonlinearity; the spatial attention's 7x7 conv + norm, 7x7x7
in 3D; the residual block as the authors' bottleneck: norm-act-1x1 to half width, norm-act-3x3, norm-act-1x1, plus a
1x1 projection of the input). The channel attention's reduction ratio ``r`` is the authors' (4, 2, 1 at strides 16,
8, 4). No dropout (nnU-Net trains its networks without).

``g [B, C_g, *S]``, ``t [B, C_t, *S]`` -> ``f [B, C_out, *S]``.
"""

from typing import Type

import torch
from dynamic_network_architectures.building_blocks.simple_conv_blocks import ConvDropoutNormReLU
from torch import nn
from torch.nn.modules.conv import _ConvNd


def _without_nonlinearity(block_kwargs: dict) -> dict:
    return {**block_kwargs, "nonlin": None, "nonlin_kwargs": None}


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): ``x * sigmoid(W_2 act(W_1 mean_spatial(x)))``, ``W_1`` reducing
    the channels by ``reduction``. ``[B, C, *S]`` -> ``[B, C, *S]``."""

    def __init__(self, conv_op: Type[_ConvNd], channels: int, reduction: int, block_kwargs: dict):
        super().__init__()
        hidden = max(1, channels // reduction)
        nonlin = block_kwargs.get("nonlin") or nn.ReLU
        self.squeeze = conv_op(channels, hidden, kernel_size=1)
        self.activation = nonlin(**(block_kwargs.get("nonlin_kwargs") or {}))
        self.excite = conv_op(hidden, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=tuple(range(2, x.ndim)), keepdim=True)
        return x * torch.sigmoid(self.excite(self.activation(self.squeeze(pooled))))


class SpatialAttention(nn.Module):
    """CBAM's spatial attention (Woo et al. 2018): ``x * sigmoid(norm(conv7([max_c(x), mean_c(x)])))``.
    ``[B, C, *S]`` -> ``[B, C, *S]``."""

    def __init__(self, conv_op: Type[_ConvNd], block_kwargs: dict, kernel_size: int = 7):
        super().__init__()
        self.conv = ConvDropoutNormReLU(conv_op, 2, 1, kernel_size, 1, **_without_nonlinearity(
            {**block_kwargs, "conv_bias": False}))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class BottleneckResidual(nn.Module):
    """The authors' residual block: ``proj(x) + conv1x1(act(norm(conv3(act(norm(conv1x1(act(norm(x)))))))))``,
    half width inside. ``[B, C_in, *S]`` -> ``[B, C_out, *S]``."""

    def __init__(self, conv_op: Type[_ConvNd], input_channels: int, output_channels: int, block_kwargs: dict):
        super().__init__()
        norm, norm_kwargs = block_kwargs["norm_op"], block_kwargs.get("norm_op_kwargs") or {}
        nonlin, nonlin_kwargs = block_kwargs["nonlin"], block_kwargs.get("nonlin_kwargs") or {}
        half = max(1, output_channels // 2)

        def norm_act(channels):
            return nn.Sequential(norm(channels, **norm_kwargs) if norm else nn.Identity(),
                                 nonlin(**nonlin_kwargs) if nonlin else nn.Identity())
        self.body = nn.Sequential(norm_act(input_channels), conv_op(input_channels, half, 1),
                                  norm_act(half), conv_op(half, half, 3, padding=1),
                                  norm_act(half), conv_op(half, output_channels, 1))
        self.projection = (nn.Identity() if input_channels == output_channels
                           else conv_op(input_channels, output_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(x) + self.body(x)


class BiFusion(nn.Module):
    """The module docstring's ``f`` from ``g`` (CNN, ``cnn_channels``) and ``t`` (transformer,
    ``transformer_channels``), with ``inner_channels`` for the bilinear term."""

    def __init__(self, conv_op: Type[_ConvNd], cnn_channels: int, transformer_channels: int, inner_channels: int,
                 output_channels: int, reduction: int, block_kwargs: dict):
        super().__init__()
        projection_kwargs = _without_nonlinearity(block_kwargs)
        self.cnn_projection = ConvDropoutNormReLU(conv_op, cnn_channels, inner_channels, 1, 1, **projection_kwargs)
        self.transformer_projection = ConvDropoutNormReLU(conv_op, transformer_channels, inner_channels, 1, 1,
                                                          **projection_kwargs)
        self.interaction = ConvDropoutNormReLU(conv_op, inner_channels, inner_channels, 3, 1, **block_kwargs)
        self.spatial_attention = SpatialAttention(conv_op, block_kwargs)
        self.channel_attention = ChannelAttention(conv_op, transformer_channels, reduction, block_kwargs)
        self.residual = BottleneckResidual(conv_op, cnn_channels + transformer_channels + inner_channels,
                                           output_channels, block_kwargs)

    def forward(self, g: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        interaction = self.interaction(self.cnn_projection(g) * self.transformer_projection(t))
        return self.residual(torch.cat([self.spatial_attention(g), self.channel_attention(t), interaction], dim=1))
