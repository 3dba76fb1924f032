"""Convolutions with few channels, run by oneDNN on the CPU at batch size 1, forward and backward.

PyTorch's CPU backend choice (``ConvParams::use_mkldnn`` in ATen) sends a float32 convolution whose batch size is 1,
whose kernel is at most 3 along its last two axes and whose ``N*C*D*H`` is at most 20480 to its im2col path
(``slow_conv3d``), which copies every input voxel ``prod(kernel)`` times. nnU-Net's own layers (32 channels and more)
never fall under it; Div-attention's side-branch and fusion convolutions (input channels -> ``K`` and ``K`` -> 8 at
full resolution) always do at batch 1, and there they were 5 % of plain nnU-Net's whole forward + backward time on the
BraTS plans (``python -m benchmarks.profile_div_attention``). The backward pass makes the same choice again, so
sending the forward alone to ``torch.mkldnn_convolution`` left the im2col backward in place.

:func:`onednn_conv_op` gives the plans' ``conv_op`` whose convolution runs as :class:`OneDNNConvolutionFunction` on
float32 CPU tensors outside autocast and outside ``torch.compile`` (which has no fake-tensor kernel for it, and picks
its own), for stride 1, dilation 1, one group and zero padding of at most ``kernel - 1`` (every few-channel conv of
the junctions): forward and both gradients are ``torch.mkldnn_convolution`` calls. The same parameters and
state-dict names, the same result and gradients up to float32 rounding (tested), and ``conv_op`` itself on CUDA,
under autocast, when compiled and for anything else. For a ``(1, 4, 56, 64, 56)`` input (BraTS' patch) and a 3x3x3
conv to 3 channels, forward + backward took 103 ms against 459 ms on PyTorch's choice (2 threads, median of 7).
"""

from typing import List, Optional, Type

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn.modules.conv import _ConvNd


class OneDNNConvolutionFunction(torch.autograd.Function):
    """``y = conv(x, w) + b`` with stride 1, dilation 1, one group and zero padding ``p``, all on oneDNN.

    Shapes: ``x`` ``(B, C_in, *spatial)``, ``w`` ``(C_out, C_in, *kernel)``, ``b`` ``(C_out,)`` or None,
    ``y`` ``(B, C_out, *spatial')`` with ``spatial' = spatial + 2p - kernel + 1``. The gradients are convolutions
    too: ``dL/dx = conv(dL/dy, flip(w)^T)`` with padding ``kernel - 1 - p`` (the transposed convolution), and
    ``dL/dw = conv(x^T, (dL/dy)^T)^T`` with padding ``p`` (batch and channel axes swapped, so that the batch becomes
    the channels that are summed over and ``dL/dy`` the kernel).
    """

    @staticmethod
    def forward(ctx, input: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                padding: List[int]) -> torch.Tensor:
        ctx.save_for_backward(input, weight)
        ctx.padding = list(padding)
        ctx.has_bias = bias is not None
        ones = [1] * len(padding)
        return torch.mkldnn_convolution(input, weight, bias, ctx.padding, ones, ones, 1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: torch.Tensor):
        input, weight = ctx.saved_tensors
        grad_output = grad_output.contiguous()
        spatial_dims = list(range(2, weight.ndim))
        ones = [1] * len(spatial_dims)
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            transposed_weight = weight.flip(spatial_dims).transpose(0, 1).contiguous()
            padding = [k - 1 - p for k, p in zip(weight.shape[2:], ctx.padding)]
            grad_input = torch.mkldnn_convolution(grad_output, transposed_weight, None, padding, ones, ones, 1)
        if ctx.needs_input_grad[1]:
            grad_weight = torch.mkldnn_convolution(input.transpose(0, 1).contiguous(),
                                                   grad_output.transpose(0, 1).contiguous(), None, ctx.padding,
                                                   ones, ones, 1).transpose(0, 1)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_output.sum(dim=[0, *spatial_dims])
        return grad_input, grad_weight, grad_bias, None


def _runs_on_onednn(conv: _ConvNd, input: torch.Tensor, weight: torch.Tensor) -> bool:
    return (not torch.compiler.is_compiling() and input.is_cpu and input.dtype == torch.float32
            and weight.dtype == torch.float32 and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)
            and conv.groups == 1 and all(s == 1 for s in conv.stride) and all(d == 1 for d in conv.dilation)
            and all(p <= k - 1 for p, k in zip(conv.padding, conv.kernel_size))
            and not torch.is_autocast_enabled("cpu") and torch.backends.mkldnn.is_available())


class _OneDNNForward:
    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias):
        if _runs_on_onednn(self, input, weight):
            return OneDNNConvolutionFunction.apply(input, weight, bias, list(self.padding))
        return super()._conv_forward(input, weight, bias)


class OneDNNConv2d(_OneDNNForward, nn.Conv2d):
    """``nn.Conv2d`` whose CPU float32 forward and backward run on oneDNN (see the module docstring)."""


class OneDNNConv3d(_OneDNNForward, nn.Conv3d):
    """``nn.Conv3d`` whose CPU float32 forward and backward run on oneDNN (see the module docstring)."""


_ONEDNN_OF = {nn.Conv2d: OneDNNConv2d, nn.Conv3d: OneDNNConv3d}


def onednn_conv_op(conv_op: Type[_ConvNd]) -> Type[_ConvNd]:
    """The oneDNN twin of the plans' ``conv_op`` (``nn.Conv2d`` / ``nn.Conv3d``); any other ``conv_op`` unchanged."""
    return _ONEDNN_OF.get(conv_op, conv_op)
