"""The click cue: one more input channel, the distance to the nearest click in mm, clipped and scaled.

Encoding (the paper gives a "distance transform image" and no scaling; ours is numerically tame and has a natural
empty cue)::

    cue(x) = max(0, 1 - d(x) / R),   d(x) = min over clicks c of || (x - c) * spacing ||  (mm)

1 at a click, falling linearly to 0 at ``R`` mm (``radius_mm``, 40 by default) and 0 beyond: values in [0, 1] like a
probability map, with no image statistics involved (nnU-Net's intensity normalisation never touches it). **No
click** (a patch without target, a case without a target) is the all-zero cue: "the nearest click is farther than
``R``". Several clicks (one per target at evaluation) take the nearest. The spacing is the plans' (the preprocessed
grid's), so ``R`` means the same in mm whatever the voxel size. Computed with torch on the tensor's device, in
float32 (no distance transform library: a click is a point, so the distance is closed-form).
"""

from typing import Sequence

import torch

DEFAULT_RADIUS_MM = 40.0


def click_cue(shape: Sequence[int], clicks: Sequence[Sequence[float]], spacing: Sequence[float],
              radius_mm: float = DEFAULT_RADIUS_MM, device=None) -> torch.Tensor:
    """The cue ``[*shape]`` (float32) of ``clicks`` (voxel coordinates on the grid of ``shape``, any number, possibly
    none) on a grid of voxel size ``spacing`` (mm per axis)."""
    if len(spacing) != len(shape):
        raise ValueError(f"spacing {list(spacing)} does not fit the {len(shape)}D grid {list(shape)}")
    if radius_mm <= 0:
        raise ValueError(f"the cue's radius must be positive, got {radius_mm}")
    axes = [torch.arange(size, device=device, dtype=torch.float32) * float(step)
            for size, step in zip(shape, spacing)]
    nearest = None
    for click in clicks:
        if len(click) != len(shape):
            raise ValueError(f"click {list(click)} does not fit the {len(shape)}D grid {list(shape)}")
        squared = None
        for axis, (positions, coordinate, step) in enumerate(zip(axes, click, spacing)):
            term = (positions - float(coordinate) * float(step)).square()
            term = term.view(*[-1 if a == axis else 1 for a in range(len(shape))])
            squared = term if squared is None else squared + term
        nearest = squared if nearest is None else torch.minimum(nearest, squared)
    if nearest is None:
        return torch.zeros(tuple(int(s) for s in shape), dtype=torch.float32, device=device)
    return (1.0 - nearest.sqrt() / float(radius_mm)).clamp_min(0.0).expand(tuple(int(s) for s in shape)).contiguous()
