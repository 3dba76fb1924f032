"""Replicate ("edge") padding by indexing, for any number of spatial axes.

``F.pad(x, ..., mode="replicate")`` (what a convolution with ``padding_mode="replicate"`` runs) gives the same values,
but inductor's CPU code for its backward (``replication_pad2d_backward``) fails a stride assertion on small 2D maps
(``python -m benchmarks.costs --parts inductor``, SiAN's learned weight map, 2026-12-02), and nnU-Net compiles every
network on a GPU. Indexing with clamped positions (``index_select``, whose backward is an ``index_add``) has no such op.
"""

import torch


def replicate_pad(x: torch.Tensor, width: int) -> torch.Tensor:
    """``(B, C, *S)`` -> ``(B, C, *(S + 2 * width))``: each spatial axis extended by ``width`` copies of its first
    and last slice, exactly as ``F.pad(x, [width] * 2 * len(S), mode="replicate")``."""
    for axis in range(2, x.ndim):
        size = x.shape[axis]
        positions = torch.arange(-width, size + width, device=x.device).clamp(0, size - 1)
        x = x.index_select(axis, positions)
    return x
