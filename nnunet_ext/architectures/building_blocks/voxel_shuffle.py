"""Pixel shuffle (sub-pixel rearrangement, SeATrans sec. 2.1, its ref. [26]) in any number of spatial dimensions:
channels are traded for resolution without interpolation, so a low-resolution feature map is brought to a finer
scale losslessly. In 3D this is the "voxel shuffle"."""

import math
from typing import Sequence, Union

import torch


def voxel_shuffle(x: torch.Tensor, upscale_factor: Union[int, Sequence[int]]) -> torch.Tensor:
    """``[B, C * prod(r), *S]`` -> ``[B, C, *(S * r)]`` with ``d = x.ndim - 2`` spatial axes.

    :param x: the feature map; its channel count must be divisible by ``prod(r)``.
    :param upscale_factor: ``r``, one int for every axis (``[B, C * r^d, *S]`` as in ``pixel_shuffle``) or one factor
        per spatial axis (nnU-Net plans are often anisotropic, e.g. a stride of ``[1, 2, 2]``).
    :return: the rearranged map. Channel ``c * prod(r) + flat(i_1, ..., i_d)`` (row-major over the factors) goes to
        output channel ``c`` at position ``s_k * r_k + i_k`` along each axis ``k``; in 2D with equal factors this is
        exactly ``torch.nn.functional.pixel_shuffle``.
    """
    spatial = list(x.shape[2:])
    factors = [upscale_factor] * len(spatial) if isinstance(upscale_factor, int) else [int(r) for r in upscale_factor]
    if len(factors) != len(spatial):
        raise ValueError(f"{len(factors)} upscale factors for {len(spatial)} spatial axes")
    block = math.prod(factors)  # math, not numpy: torch.compile traces numpy calls as tensor ops
    if x.shape[1] % block != 0:
        raise ValueError(f"{x.shape[1]} channels are not divisible by the shuffle block of {block} ({factors})")
    batch, channels, dims = x.shape[0], x.shape[1] // block, len(spatial)
    x = x.reshape(batch, channels, *factors, *spatial)
    # [B, C, r_1..r_d, S_1..S_d] -> [B, C, S_1, r_1, ..., S_d, r_d]
    order = [0, 1] + [axis for k in range(dims) for axis in (2 + dims + k, 2 + k)]
    x = x.permute(*order)
    return x.reshape(batch, channels, *[s * r for s, r in zip(spatial, factors)])
