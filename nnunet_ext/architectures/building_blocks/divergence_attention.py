"""The masks and the divergence attention map of Div-attention (Jiang et al., eq. 2-4), in the readings the trainers
offer as options (``div_attention_masks``, ``div_attention_map``).

**Masks, eq. (2)-(3)** (:data:`MASKS`): ``"sigmoid"`` is the paper's ``Sigmoid(O)``, per channel (right for region
datasets, whose channels nnU-Net trains with a sigmoid each); ``"softmax"`` is a softmax over the channels of the
logits, in float32: the probabilities a label (softmax-trained) dataset's logits stand for. ``sigmoid(O)`` of
softmax-trained logits is not a mask: adding a constant to every channel of a voxel leaves the prediction unchanged
but moves every sigmoid; the softmax masks do not move.

**Attention, eq. (4)** (:data:`ATTENTION_FORMS`), from the divergence ``d = |M_i - M_{i-1}|`` (the absolute value on
the residual, as the text says), in [0, 1], computed in float32 (:func:`absolute_divergence`):

* ``"softmax"`` (:func:`divergence_attention`, the default of issue 2, an option since issue 11): as printed, ``attn = |Softmax(M_i -
  M_{i-1})| / sqrt(D*H*W)`` names no softmax axis and, read literally, gives values of order ``N**-1.5`` that vanish
  with their gradient. Our reading (why: docs/decisions.md, "Div-attention: eq. 4"): a softmax over the ``N = D*H*W``
  spatial positions of each (sample, channel) map, rescaled by ``N`` (not divided by ``sqrt(N)``): mean exactly 1
  over each map, whatever the patch size; evaluated in float32, under autocast too, as ``exp(d) * (N / sum(exp(d)))``
  (``exp(d)`` lies in [1, e] and needs no max-subtraction; a log-sum-exp costs four more full-size passes forward
  and backward); the map lies in ``[1/e, e]``, so voxels where the paths agree still pass at least ``0.37 F_i``.
* ``"divergence"`` (:func:`divergence_map`, the default since issue 11): the paper's §2 "Analysis": the map "has voxels valued from 0 to 1 being
  the extent of the disagreement". It is ``d`` itself, **without any size normalisation**: ``d`` is a per-voxel
  quantity bounded in [0, 1] whatever the patch size (its scale does not grow or shrink with ``D*H*W``, unlike a
  softmax over space, which is what the paper's ``1/sqrt(D*H*W)`` would compensate), and ``attn * F_i`` is then at
  most ``F_i`` (the side branch's normalised features) and exactly 0 where the two paths agree. It costs one
  subtraction and one absolute value, no reduction over space.

Both maps are strictly increasing functions of ``d`` within each map: the attention is largest exactly where the two
paths' masks disagree most.
"""

import math
from typing import Callable, Dict

import torch


def sigmoid_masks(logits: torch.Tensor) -> torch.Tensor:
    """Eq. (2)-(3) as printed: ``sigmoid`` of each channel (dtype of ``logits``)."""
    return torch.sigmoid(logits)


def softmax_masks(logits: torch.Tensor) -> torch.Tensor:
    """The masks of a label dataset: softmax over the channels (dim 1), in float32 (also under autocast)."""
    return torch.softmax(logits, dim=1, dtype=torch.float32)


MASKS: Dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"sigmoid": sigmoid_masks, "softmax": softmax_masks}


def absolute_divergence(upper_mask: torch.Tensor, lower_mask: torch.Tensor) -> torch.Tensor:
    """``|M_i - M_{i-1}|`` in float32 (whatever the masks' dtype and autocast), in [0, 1]."""
    if upper_mask.shape != lower_mask.shape:
        raise ValueError(f"masks must have the same shape, got {tuple(upper_mask.shape)} and {tuple(lower_mask.shape)}")
    return (upper_mask.float() - lower_mask.float()).abs()


def spatial_softmax_attention(divergence: torch.Tensor) -> torch.Tensor:
    """``N * softmax`` of ``divergence`` (in [0, 1]) over the ``N`` spatial positions of each (b, c) map, float32."""
    exp_divergence = divergence.float().exp()
    spatial_dims = tuple(range(2, exp_divergence.ndim))
    num_positions = math.prod(exp_divergence.shape[2:])
    scale = num_positions / exp_divergence.sum(dim=spatial_dims, keepdim=True)
    return exp_divergence * scale


def divergence_attention(upper_mask: torch.Tensor, lower_mask: torch.Tensor) -> torch.Tensor:
    """The ``"softmax"`` attention (eq. 4, read as in the module docstring).

    :param upper_mask: ``(B, K, *spatial)`` masks of the upper path, ``M_i`` (eq. 2).
    :param lower_mask: ``(B, K, *spatial)`` masks of the aligned lower path, ``M_{i-1}`` (eq. 3).
    :return: ``(B, K, *spatial)`` attention, ``N * softmax`` over the ``N`` spatial positions of each (b, k) map:
        mean 1 per map, in ``[1/e, e]``, increasing with ``|upper_mask - lower_mask|``; dtype of ``upper_mask``.
    """
    return spatial_softmax_attention(absolute_divergence(upper_mask, lower_mask)).to(upper_mask.dtype)


def divergence_map(upper_mask: torch.Tensor, lower_mask: torch.Tensor) -> torch.Tensor:
    """The ``"divergence"`` attention, the paper's literal reading: ``|M_i - M_{i-1}|``, no size normalisation.

    :return: ``(B, K, *spatial)`` in [0, 1], 0 where the masks agree; float32, also under autocast and for
        low-precision masks (the subtraction of two masks near 1 is where low precision would lose the divergence).
    """
    return absolute_divergence(upper_mask, lower_mask)


# attention from a divergence d in [0, 1] (so that a junction may reduce d over channels first), float32
ATTENTION_FORMS: Dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "softmax": spatial_softmax_attention, "divergence": lambda divergence: divergence.float()}


def check_option(name: str, value: str, choices) -> str:
    """``value`` if it is one of ``choices``; a ``ValueError`` naming the option and the choices otherwise."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value
