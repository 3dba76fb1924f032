"""TransFuse's attention-gated decoder step (Zhang et al. 2021, sec. 2.3; the seminar in ``../shared/papers/003``,
3.4, after Attention U-Net, Oktay et al. 2018)::

    f_hat^{i+1} = Conv([Up(f_hat^i), AG(f^{i+1}, Up(f_hat^i))])
    AG(x, gate)  = x * sigmoid(norm(psi(act(norm(W_x x) + norm(W_g gate)))))

``Up`` interpolates (bi/trilinear, parameter-free, as the authors' ``nn.Upsample``) to ``f^{i+1}``'s size; ``Conv`` is
the authors' residual double convolution (3x3 conv-norm-act, 3x3 conv-norm, plus a 1x1 conv-norm of the input, then
the nonlinearity). Built from the plans' ``conv_op``, norm and nonlinearity.
"""

from typing import Type

import torch
from dynamic_network_architectures.building_blocks.simple_conv_blocks import ConvDropoutNormReLU
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.conv import _ConvNd

INTERPOLATION = {1: "linear", 2: "bilinear", 3: "trilinear"}


def upsampled_to(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``x [B, C, *S]`` interpolated to ``reference``'s spatial size (align_corners as the authors')."""
    return F.interpolate(x, size=reference.shape[2:], mode=INTERPOLATION[x.ndim - 2], align_corners=True)


class AttentionGate(nn.Module):
    """``AG(x, gate)`` of the module docstring: ``x [B, C_x, *S]`` gated by ``gate [B, C_g, *S]`` -> ``[B, C_x, *S]``."""

    def __init__(self, conv_op: Type[_ConvNd], gate_channels: int, x_channels: int, inner_channels: int,
                 block_kwargs: dict):
        super().__init__()
        linear = {**block_kwargs, "nonlin": None, "nonlin_kwargs": None, "conv_bias": True}
        self.gate_projection = ConvDropoutNormReLU(conv_op, gate_channels, inner_channels, 1, 1, **linear)
        self.x_projection = ConvDropoutNormReLU(conv_op, x_channels, inner_channels, 1, 1, **linear)
        nonlin = block_kwargs.get("nonlin") or nn.ReLU
        self.activation = nonlin(**(block_kwargs.get("nonlin_kwargs") or {}))
        self.psi = ConvDropoutNormReLU(conv_op, inner_channels, 1, 1, 1, **linear)

    def forward(self, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.psi(self.activation(self.gate_projection(gate) + self.x_projection(x))))
        return x * weights


class ResidualDoubleConv(nn.Module):
    """``act(norm(conv3(act(norm(conv3(x))))) + norm(conv1(x)))``: ``[B, C_in, *S]`` -> ``[B, C_out, *S]``."""

    def __init__(self, conv_op: Type[_ConvNd], input_channels: int, output_channels: int, block_kwargs: dict):
        super().__init__()
        linear = {**block_kwargs, "nonlin": None, "nonlin_kwargs": None}
        self.convs = nn.Sequential(ConvDropoutNormReLU(conv_op, input_channels, output_channels, 3, 1, **block_kwargs),
                                   ConvDropoutNormReLU(conv_op, output_channels, output_channels, 3, 1, **linear))
        self.identity = ConvDropoutNormReLU(conv_op, input_channels, output_channels, 1, 1, **linear)
        nonlin = block_kwargs.get("nonlin") or nn.ReLU
        self.activation = nonlin(**(block_kwargs.get("nonlin_kwargs") or {}))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.convs(x) + self.identity(x))


class GatedUpStep(nn.Module):
    """``f_hat^{i+1}`` from ``f_hat^i [B, C_deep, *S_i]`` and ``f^{i+1} [B, C_skip, *S_{i+1}]`` ->
    ``[B, output_channels, *S_{i+1}]``."""

    def __init__(self, conv_op: Type[_ConvNd], deep_channels: int, skip_channels: int, output_channels: int,
                 block_kwargs: dict):
        super().__init__()
        self.gate = AttentionGate(conv_op, deep_channels, skip_channels, output_channels, block_kwargs)
        self.conv = ResidualDoubleConv(conv_op, deep_channels + skip_channels, output_channels, block_kwargs)

    def forward(self, deep: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = upsampled_to(deep, skip)
        return self.conv(torch.cat([self.gate(skip, up), up], dim=1))
