"""Stage 2 of Div-attention's pipeline in geometry: the target components of a segmentation, the cube around each
(its size from PCA), the cube resampled to a fixed grid, and a refined crop pasted back (Jiang et al., "Pipeline":
"According to the prediction of Stage 1, principle component analysis is used to obtain an estimate of the longest
axis length of the target tumor or organ. The input image will be cropped into a smaller patch and resized to a
uniform size"; "lesions with too small sizes (less than 2 in one dimension or less than 5 in pixels) are
discarded").

* **Components** (:func:`segmentation_components`): connected components (full connectivity) of the foreground, all
  labels > 0 together (an organ and the lesions inside it are one target: Stage 2 refines them together, every
  label of the dataset). A component whose bounding box is narrower than 2 voxels on an axis, or that has fewer than
  5 voxels, is too small: no crop, Stage 1's prediction stays there.
* **Longest axis** (:func:`longest_axis_mm`): the voxel centres in mm (index x spacing, per image axis), their
  principal axes (PCA, the eigenvectors of their covariance), the extent of the voxels along the first: the largest
  minus the smallest projection, plus one voxel (the largest spacing), so a one-voxel target is one voxel long.
* **Cube** (:class:`CropCube`): centred on the component's centroid, along the image's axes, of side
  ``(1 + 2 * margin) * longest axis`` (``margin`` 0.25 by default: a quarter of the target's length of context on
  each side), at least 4 voxels of the largest spacing; resampled to ``size`` voxels per axis (96 by default, the
  paper's 96x96x96; the 2D analogue for 2D images): an isotropic grid of spacing ``side / size`` in mm.
* **Resampling** with SimpleITK over the cube's physical grid: images linear (outside the image: the image's
  minimum), labels nearest neighbour (outside: 0).
* **Paste back** (:func:`paste_crops`): every refined crop, on its true cube geometry, resampled nearest neighbour
  onto the case's grid; inside a cube the crop's labels replace Stage 1's, background included (Stage 1's false
  positives there are removed). **Overlaps**: a voxel inside several cubes takes the labels of the cube whose centre
  is nearest to it (in mm). Outside every cube Stage 1's prediction stays.
"""

from dataclasses import asdict, dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

MIN_EXTENT_VOXELS = 2  # "less than 2 in one dimension"
MIN_VOXELS = 5  # "or less than 5 in pixels"
DEFAULT_MARGIN = 0.25
DEFAULT_CROP_SIZE = 96
MIN_SIDE_VOXELS = 4


@dataclass
class Component:
    """One target component: its voxel indices ``[n, ndim]`` (SimpleITK's x, y, z order) and whether it is large
    enough for a crop."""

    index: int
    voxels_xyz: np.ndarray
    large_enough: bool

    @property
    def size(self) -> int:
        return int(len(self.voxels_xyz))


def segmentation_components(labels: sitk.Image) -> List[Component]:
    """The foreground's components, largest first (the module docstring)."""
    array = sitk.GetArrayFromImage(labels) > 0  # [z, y, x]
    labelled, count = ndimage.label(array, structure=np.ones((3,) * array.ndim, dtype=bool))
    components = []
    for index in range(1, count + 1):
        voxels = np.argwhere(labelled == index)[:, ::-1]  # x, y, z
        extent = voxels.max(axis=0) - voxels.min(axis=0) + 1
        components.append(Component(0, voxels, bool(extent.min() >= MIN_EXTENT_VOXELS and len(voxels) >= MIN_VOXELS)))
    components.sort(key=lambda c: -c.size)
    for number, component in enumerate(components):
        component.index = number
    return components


def longest_axis_mm(voxels_xyz: np.ndarray, spacing: Sequence[float]) -> float:
    """The extent in mm of the voxels along their first principal axis, plus one voxel (the largest spacing)."""
    points = voxels_xyz.astype(float) * np.asarray(spacing, dtype=float)
    if len(points) < 2:
        return float(max(spacing))
    centred = points - points.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov(centred, rowvar=False))
    projection = centred @ vectors[:, -1]  # eigh sorts ascending: the last is the first principal axis
    return float(projection.max() - projection.min() + max(spacing))


@dataclass
class CropCube:
    """A cube in world coordinates, on the image's axes (``direction``), resampled to ``size`` voxels per axis."""

    centre_mm: Tuple[float, ...]
    side_mm: float
    direction: Tuple[float, ...]
    size: int

    @property
    def ndim(self) -> int:
        return len(self.centre_mm)

    @property
    def spacing_mm(self) -> float:
        return self.side_mm / self.size

    @property
    def origin_mm(self) -> Tuple[float, ...]:
        """The world position of the first voxel's centre."""
        direction = np.asarray(self.direction, dtype=float).reshape(self.ndim, self.ndim)
        offset = np.full(self.ndim, (self.side_mm - self.spacing_mm) / 2)
        return tuple(float(v) for v in np.asarray(self.centre_mm) - direction @ offset)

    def reference(self) -> sitk.Image:
        """An empty image on the cube's grid (what images and labels are resampled onto)."""
        reference = sitk.Image([self.size] * self.ndim, sitk.sitkUInt8)
        reference.SetSpacing([self.spacing_mm] * self.ndim)
        reference.SetOrigin(self.origin_mm)
        reference.SetDirection(self.direction)
        return reference

    def to_json(self) -> dict:
        return {**asdict(self), "spacing_mm": self.spacing_mm, "origin_mm": list(self.origin_mm)}

    @classmethod
    def from_json(cls, entry: dict) -> "CropCube":
        return cls(tuple(entry["centre_mm"]), float(entry["side_mm"]), tuple(entry["direction"]), int(entry["size"]))


def cube_around(component: Component, image: sitk.Image, size: int = DEFAULT_CROP_SIZE,
                margin: float = DEFAULT_MARGIN) -> Tuple[CropCube, float]:
    """The cube around a component of ``image``'s grid, and the component's longest axis in mm."""
    spacing = image.GetSpacing()
    length = longest_axis_mm(component.voxels_xyz, spacing)
    side = max((1 + 2 * margin) * length, MIN_SIDE_VOXELS * max(spacing))
    centre = image.TransformContinuousIndexToPhysicalPoint([float(v) for v in component.voxels_xyz.mean(axis=0)])
    return CropCube(tuple(centre), float(side), tuple(image.GetDirection()), int(size)), length


def crop_image(image: sitk.Image, cube: CropCube, labels: bool = False) -> sitk.Image:
    """``image`` resampled onto the cube's grid: linear (outside: the image's minimum), or nearest for labels."""
    if labels:
        return sitk.Resample(image, cube.reference(), sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                             image.GetPixelID())
    minimum = float(sitk.GetArrayViewFromImage(image).min())
    return sitk.Resample(sitk.Cast(image, sitk.sitkFloat32), cube.reference(), sitk.Transform(), sitk.sitkLinear,
                         minimum, sitk.sitkFloat32)


def with_nominal_geometry(image: sitk.Image, spacing: float = 1.0) -> sitk.Image:
    """The same voxels with spacing ``spacing``, origin 0 and identity direction: how crops are written, so that
    nnU-Net's planner sees every crop at one uniform spacing and keeps their fixed size (the true geometry is kept
    in the crops' JSON)."""
    nominal = sitk.Image(image)
    nominal.SetSpacing([spacing] * image.GetDimension())
    nominal.SetOrigin([0.0] * image.GetDimension())
    nominal.SetDirection(np.eye(image.GetDimension()).ravel().tolist())
    return nominal


def with_cube_geometry(image: sitk.Image, cube: CropCube) -> sitk.Image:
    """A crop written with its nominal geometry, put back on its cube."""
    placed = sitk.Image(image)
    placed.SetSpacing([cube.spacing_mm] * cube.ndim)
    placed.SetOrigin(cube.origin_mm)
    placed.SetDirection(cube.direction)
    return placed


def paste_crops(stage1: sitk.Image, crops: Sequence[Tuple[sitk.Image, CropCube]]) -> sitk.Image:
    """Stage 1's segmentation with every refined crop (labels on the cube's grid, with its geometry) pasted back
    (the module docstring's rules). Returns an image on ``stage1``'s grid, of its pixel type."""
    result = sitk.GetArrayFromImage(stage1).copy()
    nearest = np.full(result.shape, np.inf, dtype=np.float32)
    spacing = np.asarray(stage1.GetSpacing(), dtype=float)
    for crop, cube in crops:
        placed = with_cube_geometry(crop, cube)
        labels = sitk.GetArrayFromImage(sitk.Resample(placed, stage1, sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                                                      stage1.GetPixelID()))
        ones = sitk.Image(placed.GetSize(), sitk.sitkUInt8) + 1
        ones.CopyInformation(placed)
        footprint = sitk.GetArrayFromImage(sitk.Resample(ones, stage1, sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                                                         sitk.sitkUInt8)) > 0
        where = np.nonzero(footprint)  # array order (z, y, x)
        if not where[0].size:
            continue
        centre = np.asarray(stage1.TransformPhysicalPointToContinuousIndex(cube.centre_mm))  # x, y, z
        offsets = (np.stack(where[::-1], axis=1) - centre) * spacing
        distance = np.sqrt((offsets ** 2).sum(axis=1)).astype(np.float32)
        closer = distance < nearest[where]
        chosen = tuple(axis[closer] for axis in where)
        result[chosen] = labels[chosen]
        nearest[chosen] = distance[closer]
    pasted = sitk.GetImageFromArray(result)
    pasted.CopyInformation(stage1)
    return pasted
