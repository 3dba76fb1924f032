"""The divergence attention map of Div-attention (Jiang et al., eq. 2-4).

Eq. (4) as printed, ``attn = |Softmax(M_i - M_{i-1})| / sqrt(D*H*W)``, names no softmax axis and, read literally,
gives values of order ``N**-1.5`` that vanish with their gradient. Our reading (why: docs/decisions.md,
"Div-attention: eq. 4"):

* divergence ``d = |M_i - M_{i-1}|`` (the absolute value on the residual, as the text says), in [0, 1];
* a softmax over the ``N = D*H*W`` spatial positions of each (sample, channel) map, rescaled by ``N`` (not divided
  by ``sqrt(N)``): mean exactly 1 over each map, whatever the patch size;
* evaluated in float32, under autocast too, as ``exp(d) * (N / sum(exp(d)))``: since ``d`` lies in [0, 1],
  ``exp(d)`` lies in [1, e] and needs no max-subtraction (a log-sum-exp costs four more full-size passes forward and
  backward); the map lies in ``[1/e, e]``.

The map is a strictly increasing function of the disagreement ``d`` within each map: the attention is largest
exactly where the two paths' masks disagree most.
"""

import math

import torch


def divergence_attention(upper_mask: torch.Tensor, lower_mask: torch.Tensor) -> torch.Tensor:
    """Attention from the disagreement of two paths' masks (eq. 4, read as in the module docstring).

    :param upper_mask: ``(B, K, *spatial)`` sigmoid masks of the upper path, ``M_i`` (eq. 2).
    :param lower_mask: ``(B, K, *spatial)`` sigmoid masks of the aligned lower path, ``M_{i-1}`` (eq. 3).
    :return: ``(B, K, *spatial)`` attention, ``N * softmax`` over the ``N`` spatial positions of each (b, k) map:
        mean 1 per map, in ``[1/e, e]``, increasing with ``|upper_mask - lower_mask|``; dtype of ``upper_mask``.
    """
    if upper_mask.shape != lower_mask.shape:
        raise ValueError(f"masks must have the same shape, got {tuple(upper_mask.shape)} and {tuple(lower_mask.shape)}")
    exp_divergence = (upper_mask.float() - lower_mask.float()).abs().exp()
    spatial_dims = tuple(range(2, exp_divergence.ndim))
    num_positions = math.prod(exp_divergence.shape[2:])
    scale = num_positions / exp_divergence.sum(dim=spatial_dims, keepdim=True)
    return (exp_divergence * scale).to(upper_mask.dtype)
