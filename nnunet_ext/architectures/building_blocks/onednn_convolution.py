"""Convolutions with few channels, run by oneDNN on the CPU at batch size 1.

PyTorch's CPU backend choice (``ConvParams::use_mkldnn`` in ATen) sends a float32 convolution whose batch size is 1,
whose kernel is at most 3 along its last two axes and whose ``N*C*D*H`` is at most 20480 to its im2col path
(``slow_conv3d``), which copies every input voxel ``prod(kernel)`` times. nnU-Net's own layers (32 channels and more)
never fall under it; Div-attention's side-branch and fusion convolutions (input channels -> ``K`` and ``K`` -> 8 at
full resolution) always do at batch 1, and there they were 5 % of plain nnU-Net's whole forward + backward time on the
BraTS plans (``python -m benchmarks.profile_div_attention``). :func:`onednn_conv_op` gives the plans' ``conv_op`` with
its forward sent to ``torch.mkldnn_convolution`` instead, on float32 CPU tensors outside autocast and outside
``torch.compile`` (which has no fake-tensor kernel for it, and picks its own); the same parameters and state-dict
names, the same result up to float32 rounding, and ``conv_op`` itself on CUDA, under autocast, when compiled and for
anything else. (The backward pass still goes through PyTorch's backend choice.)
"""

from typing import Type

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd


def _runs_on_onednn(conv: _ConvNd, input: torch.Tensor, weight: torch.Tensor) -> bool:
    return (not torch.compiler.is_compiling() and input.is_cpu and input.dtype == torch.float32 and weight.dtype == torch.float32
            and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)
            and not torch.is_autocast_enabled("cpu") and torch.backends.mkldnn.is_available())


class _OneDNNForward:
    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias):
        if _runs_on_onednn(self, input, weight):
            return torch.mkldnn_convolution(input, weight, bias, self.padding, self.stride, self.dilation,
                                            self.groups)
        return super()._conv_forward(input, weight, bias)


class OneDNNConv2d(_OneDNNForward, nn.Conv2d):
    """``nn.Conv2d`` whose CPU float32 forward runs on oneDNN (see the module docstring)."""


class OneDNNConv3d(_OneDNNForward, nn.Conv3d):
    """``nn.Conv3d`` whose CPU float32 forward runs on oneDNN (see the module docstring)."""


_ONEDNN_OF = {nn.Conv2d: OneDNNConv2d, nn.Conv3d: OneDNNConv3d}


def onednn_conv_op(conv_op: Type[_ConvNd]) -> Type[_ConvNd]:
    """The oneDNN twin of the plans' ``conv_op`` (``nn.Conv2d`` / ``nn.Conv3d``); any other ``conv_op`` unchanged."""
    return _ONEDNN_OF.get(conv_op, conv_op)
