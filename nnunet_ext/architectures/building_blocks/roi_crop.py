"""The region of interest of Base-ROI (SeATrans, sec. 3.2): the box around the predicted segmentation, cropped and
resized back to the input size, so the diagnosis network sees the lesion region at full detail."""

from typing import List, Tuple

import torch
import torch.nn.functional as F

Box = List[Tuple[int, int]]  # (start, stop) per spatial axis


def foreground_probability(segmentation_probabilities: torch.Tensor, softmax: bool) -> torch.Tensor:
    """``[B, K, *S]`` -> ``[B, 1, *S]``: 1 - P(background) for softmax outputs (channel 0 is the background), the
    maximum over the regions for sigmoid (region-based) outputs."""
    if softmax:
        return 1 - segmentation_probabilities[:, :1]
    return segmentation_probabilities.amax(1, keepdim=True)


def bounding_box(mask: torch.Tensor, margin_fraction: float, min_margin: int = 2) -> Box:
    """The box holding every true voxel of ``mask`` (``[*S]``), grown on each side by ``margin_fraction`` of its
    extent (at least ``min_margin`` voxels) and clipped to the image; the whole image when ``mask`` is empty."""
    if not bool(mask.any()):
        return [(0, size) for size in mask.shape]
    box = []
    for axis, size in enumerate(mask.shape):
        other_axes = tuple(a for a in range(mask.ndim) if a != axis)
        present = torch.nonzero(mask.any(dim=other_axes) if other_axes else mask).flatten()
        start, stop = int(present[0]), int(present[-1]) + 1
        margin = max(min_margin, int(round(margin_fraction * (stop - start))))
        box.append((max(0, start - margin), min(size, stop + margin)))
    return box


def crop_and_resize(image: torch.Tensor, boxes: List[Box]) -> torch.Tensor:
    """``image [B, C, *S]`` and one box per sample -> ``[B, C, *S]``: each sample's box resized (linear
    interpolation) to the full spatial size ``S``."""
    spatial_size = image.shape[2:]
    mode = "bilinear" if image.ndim == 4 else "trilinear"
    crops = []
    for sample, box in zip(image, boxes):
        crop = sample[(slice(None), *[slice(start, stop) for start, stop in box])]
        crops.append(F.interpolate(crop[None], size=spatial_size, mode=mode, align_corners=False))
    return torch.cat(crops, 0)


def crop_around_segmentation(image: torch.Tensor, segmentation_probabilities: torch.Tensor, softmax: bool,
                             threshold: float = 0.5, margin_fraction: float = 0.1) -> Tuple[torch.Tensor, List[Box]]:
    """``image [B, C, *S]``, ``segmentation_probabilities [B, K, *S]`` -> (the regions of interest ``[B, C, *S]``,
    the boxes). The foreground is where :func:`foreground_probability` exceeds ``threshold``; a sample without
    foreground keeps its whole image. The box is not differentiable (it is a selection); gradients flow to the image
    values inside it."""
    foreground = foreground_probability(segmentation_probabilities.detach(), softmax)[:, 0] > threshold
    boxes = [bounding_box(mask, margin_fraction) for mask in foreground]
    return crop_and_resize(image, boxes), boxes
