"""The token grid a patch gives a transformer: ``patch_size / token_size`` per axis, from the plans' patch size.

A patch that the token size does not divide, or a grid of more than ``max_tokens`` tokens (attention costs
``N^2`` per head), cannot be built: :func:`token_grid` says which patch sizes work and how to get one.
:func:`patch_divisible_by` is the adjustment the transformer trainers apply to the plans' patch (each axis rounded
up to a multiple of the token size, stated in the training log).
"""

import math
from typing import Sequence, Tuple

from nnunet_ext.core.errors import UnsupportedConfigurationError

DEFAULT_MAX_TOKENS = 4096  # e.g. 16-voxel tokens of a 256 x 256 x 256 patch, or a 1024 x 1024 image


def patch_divisible_by(patch_size: Sequence[int], token_size: Sequence[int]) -> Tuple[int, ...]:
    """Each axis of ``patch_size`` rounded up to the next multiple of ``token_size`` on that axis (56 x 64 x 56 with
    16-voxel tokens -> 64 x 64 x 64)."""
    return tuple(int(math.ceil(p / t) * t) for p, t in zip(patch_size, token_size))


def token_grid(patch_size: Sequence[int], token_size: Sequence[int], what: str,
               max_tokens: int = DEFAULT_MAX_TOKENS) -> Tuple[int, ...]:
    """``patch_size // token_size`` per axis; an :class:`UnsupportedConfigurationError` naming the patch sizes that
    work when an axis is not divisible, or when the grid holds more than ``max_tokens`` tokens."""
    patch_size, token_size = tuple(int(p) for p in patch_size), tuple(int(t) for t in token_size)
    if any(p % t for p, t in zip(patch_size, token_size)):
        raise UnsupportedConfigurationError(
            f"{what} needs a patch size divisible by its token size {'x'.join(map(str, token_size))}, but the "
            f"plans' patch size is {'x'.join(map(str, patch_size))}.",
            fix=f"use a patch size of {'x'.join(map(str, patch_divisible_by(patch_size, token_size)))} (each axis a "
                f"multiple of the token size): train with our transformer trainers, which round the plans' patch "
                f"up and say so in the log, or set 'patch_size' of the configuration in the plans file")
    grid = tuple(p // t for p, t in zip(patch_size, token_size))
    if math.prod(grid) > max_tokens:
        raise UnsupportedConfigurationError(
            f"{what}: the patch {'x'.join(map(str, patch_size))} gives a token grid of "
            f"{'x'.join(map(str, grid))} = {math.prod(grid)} tokens, more than the {max_tokens} allowed (attention "
            f"costs the square of the token count in memory and time).",
            fix="use a smaller patch size in the plans, or raise the trainer's class attribute "
                "'transformer_max_tokens' if the GPU holds it")
    return grid
