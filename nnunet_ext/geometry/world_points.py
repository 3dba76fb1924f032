"""A point in world coordinates (mm, as a viewer reports the cursor: an attention map's query, a click) on a case's
image grid and on nnU-Net's preprocessed grid of the case.

World -> image index (SimpleITK's convention, ``x y z`` order): ``index = diag(1 / spacing) D^-1 (p - origin)``,
with ``D`` the direction matrix; nnU-Net's reader orders the array axes the other way round (``z y x``; a 2D image is
read as ``[1, y, x]``). Image index -> preprocessed voxel, as nnU-Net's preprocessing moves voxels: the axes
transposed (``transpose_forward``), the crop's start subtracted (``bbox_used_for_cropping``), and voxel centres scaled
by the resampling (``(i + 1/2) * new / old - 1/2`` per axis), rounded to the nearest voxel.
"""

from dataclasses import dataclass
from itertools import product
from typing import List, Sequence, Tuple

import numpy as np

from nnunet_ext.core.errors import UserInputError


@dataclass(frozen=True)
class QueryPoint:
    """A point of one case: ``world_mm`` as given, ``image_index`` (continuous, array order of nnU-Net's reader)
    and ``preprocessed_voxel`` (integer, on the preprocessed grid)."""

    world_mm: Tuple[float, ...]
    image_index: Tuple[float, ...]
    preprocessed_voxel: Tuple[int, ...]


def _geometry(sitk_stuff: dict):
    spacing = np.asarray(sitk_stuff["spacing"], dtype=float)
    origin = np.asarray(sitk_stuff["origin"], dtype=float)
    direction = np.asarray(sitk_stuff["direction"], dtype=float).reshape(len(spacing), len(spacing))
    return spacing, origin, direction


def world_to_index(point_mm: Sequence[float], sitk_stuff: dict) -> np.ndarray:
    """``point_mm`` -> continuous image index in SimpleITK's ``x y (z)`` order."""
    spacing, origin, direction = _geometry(sitk_stuff)
    return np.linalg.solve(direction, np.asarray(point_mm, dtype=float) - origin) / spacing


def index_to_world(index_xyz: Sequence[float], sitk_stuff: dict) -> np.ndarray:
    spacing, origin, direction = _geometry(sitk_stuff)
    return origin + direction @ (np.asarray(index_xyz, dtype=float) * spacing)


def image_extent_mm(sitk_stuff: dict, size_xyz: Sequence[int]) -> List[Tuple[float, float]]:
    """Per world axis, the smallest and largest coordinate of the image's voxel centres."""
    corners = np.array([index_to_world(corner, sitk_stuff)
                        for corner in product(*[(0, max(int(s) - 1, 0)) for s in size_xyz])])
    return [(float(low), float(high)) for low, high in zip(corners.min(axis=0), corners.max(axis=0))]


def format_extent(extent: List[Tuple[float, float]]) -> str:
    return " x ".join(f"[{low:.1f}, {high:.1f}]" for low, high in extent) + " mm"


def locate_query(point_mm: Sequence[float], properties: dict, preprocessed_shape: Sequence[int], plans_manager,
                 case: str, what: str = "query point", option: str = "--query") -> QueryPoint:
    """The :class:`QueryPoint` of ``point_mm`` in one case; a :class:`UserInputError` naming the case and the
    image's extent in mm when the point lies outside the image (or outside the region nnU-Net crops to).

    :param properties: nnU-Net's preprocessing properties of the case (``sitk_stuff``, the crop, the shapes).
    :param what: what the point is, and ``option`` the option that gave it, for the messages."""
    geometry = properties["sitk_stuff"]
    dimension = len(geometry["spacing"])
    if len(point_mm) != dimension:
        raise UserInputError(f"The {what} {list(point_mm)} has {len(point_mm)} coordinates; the image is "
                             f"{dimension}D.", case=case, fix=f"give {option} {dimension} world coordinates in mm")
    shape = properties["shape_before_cropping"]  # transposed array order
    image_shape = [shape[i] for i in plans_manager.transpose_backward]  # the reader's array order
    size_xyz = image_shape[::-1] if dimension == 3 else image_shape[1:][::-1]
    index_xyz = world_to_index(point_mm, geometry)
    if np.any(index_xyz < -0.5) or np.any(index_xyz > np.asarray(size_xyz) - 0.5):
        raise UserInputError(
            f"The {what} {tuple(round(float(p), 2) for p in point_mm)} mm lies outside the image, whose voxel "
            f"centres span {format_extent(image_extent_mm(geometry, size_xyz))} (world x, y, z).", case=case,
            fix=f"give {option} a point inside the image, in the world coordinates (mm) a viewer shows for it")
    image_index = list(index_xyz[::-1]) if dimension == 3 else [0.0, *index_xyz[::-1]]
    transposed = [image_index[i] for i in plans_manager.transpose_forward]
    voxel = []
    for axis, position in enumerate(transposed):
        low, high = properties["bbox_used_for_cropping"][axis]
        old = properties["shape_after_cropping_and_before_resampling"][axis]
        new = preprocessed_shape[axis]
        cropped = position - low
        if cropped < -0.5 or cropped > high - low - 0.5:
            raise UserInputError(
                f"The {what} {tuple(round(float(p), 2) for p in point_mm)} mm lies in the image's zero "
                f"border, which nnU-Net crops away before predicting (kept: voxel indices {low}..{high - 1} on "
                f"preprocessing axis {axis}).", case=case, fix=f"give {option} a point inside the imaged region")
        scaled = (cropped + 0.5) * new / old - 0.5
        voxel.append(int(min(max(round(scaled), 0), new - 1)))
    return QueryPoint(tuple(float(p) for p in point_mm), tuple(float(i) for i in image_index), tuple(voxel))
