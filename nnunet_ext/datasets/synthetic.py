"""A small synthetic 3D CT-like dataset with an organ and lesions, written in nnU-Net v2 raw format.

Every case is a box of voxels (z, y, x) in Hounsfield-like units (int16) with:

- air (-1000 HU) around a body: an elliptic cylinder along z of soft tissue (~40 HU) whose radius varies a little
  along z, wrapped in a thin subcutaneous fat layer (~-100 HU, 1.5-3.5 mm);
- an organ (label 1, ~60 HU): an ellipsoid with random size, position and orientation inside the body, its surface
  deformed by a smooth random field;
- 0 to 3 lesions (label 2, overwriting the organ label): deformed spheres inside the organ, hypodense (-20-0 HU) or
  hyperdense (140-170 HU): 60-110 HU from the organ, 5-18 noise standard deviations (until issue 11 30-60 HU over
  10-20 HU noise, and the demo's short trainings found no lesion). Radii are drawn log-uniformly from 3 voxels of
  the finest spacing up to half the organ's smallest semi-axis, so small lesions are common. Every 4th case (case
  index 3, 7, 11, ...) has no lesion;
- a light Gaussian blur (partial-volume edges), a smooth low-frequency additive bias (up to about +-15 HU) and
  Gaussian noise (6-12 HU standard deviation).

Beside ``dataset.json`` the dataset gets ``diagnosis_labels.json`` (see ``nnunet_ext.diagnosis.labels``): the
image-level label of every case, "lesion" or "no lesion", for the diagnosis trainers.

Body and organ sizes vary per case. Everything is deterministic: case ``i`` is drawn from
``numpy.random.default_rng([seed, i])``, so a case does not depend on how many other cases are generated.

Folder written (nnU-Net v2 raw layout, test labels kept for evaluation)::

    raw_root/Dataset501_SyntheticLesions/
        dataset.json
        imagesTr/synth_000_0000.nii.gz   labelsTr/synth_000.nii.gz   (training cases synth_000 ...)
        imagesTs/synth_016_0000.nii.gz   labelsTs/synth_016.nii.gz   (test cases follow the training ids)

Command line::

    nnunet_ext_synthetic_dataset --raw /path/to/nnUNet_raw [--id 501] [--num-training 16] \
        [--num-test 4] [--shape 40 64 64] [--spacing 2 1 1] [--seed 0] [--overwrite]
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from nnunet_ext.datasets.raw_dataset_folder import (check_output_folder, staged_dataset_folder,
                                                    validate_dataset_id_and_name, write_dataset_json)
from nnunet_ext.diagnosis.labels import write_diagnosis_labels

AIR_HU = -1000.0
FAT_HU = -100.0
SOFT_TISSUE_HU = 40.0
ORGAN_HU = 60.0
HYPODENSE_LESION_HU_RANGE = (-20.0, 0.0)
HYPERDENSE_LESION_HU_RANGE = (140.0, 170.0)
NOISE_STD_HU_RANGE = (6.0, 12.0)
BIAS_AMPLITUDE_HU = 15.0
BLUR_SIGMA_MM = 0.6
HU_CLIP_RANGE = (-1024, 3071)

LABELS = {"background": 0, "organ": 1, "lesion": 2}
DIAGNOSIS_CLASSES = ["no lesion", "lesion"]  # image-level label of every case, in diagnosis_labels.json
LESION_FREE_EVERY = 4
MAX_LESIONS = 3
MIN_SHAPE = (8, 16, 16)
CASE_PREFIX = "synth"


@dataclass(frozen=True)
class Grid:
    """Physical coordinates (mm) of the voxel centres of a (z, y, x) volume with origin 0.

    ``z``, ``y`` and ``x`` are broadcastable arrays of shapes (Z, 1, 1), (1, Y, 1) and (1, 1, X).
    """

    shape: tuple
    spacing: tuple
    z: np.ndarray
    y: np.ndarray
    x: np.ndarray

    @classmethod
    def create(cls, shape: tuple, spacing: tuple) -> "Grid":
        """Grid for a volume of ``shape`` (Z, Y, X) voxels with ``spacing`` (sz, sy, sx) mm."""
        axes = [np.arange(n, dtype=np.float32) * np.float32(s) for n, s in zip(shape, spacing)]
        return cls(tuple(shape), tuple(spacing), axes[0][:, None, None], axes[1][None, :, None],
                   axes[2][None, None, :])

    @property
    def extent_mm(self) -> np.ndarray:
        """Physical size (3,) of the field of view along (z, y, x) in mm."""
        return np.array(self.shape, dtype=np.float64) * np.array(self.spacing, dtype=np.float64)

    def offsets(self, centre_mm: np.ndarray) -> tuple:
        """Broadcastable (dz, dy, dx) offsets in mm of every voxel from ``centre_mm`` (3,) given as (z, y, x)."""
        return self.z - np.float32(centre_mm[0]), self.y - np.float32(centre_mm[1]), self.x - np.float32(centre_mm[2])


def _random_rotation(rng: np.random.Generator, max_tilt_rad: float) -> np.ndarray:
    """Rotation matrix (3, 3) acting on (z, y, x) vectors: any in-plane angle, then tilts of the z axis."""
    yaw = rng.uniform(0.0, np.pi)
    tilt_zy, tilt_zx = rng.uniform(-max_tilt_rad, max_tilt_rad, size=2)
    cos_a, sin_a = np.cos(yaw), np.sin(yaw)
    in_plane = np.array([[1, 0, 0], [0, cos_a, -sin_a], [0, sin_a, cos_a]])
    cos_b, sin_b = np.cos(tilt_zy), np.sin(tilt_zy)
    about_x = np.array([[cos_b, -sin_b, 0], [sin_b, cos_b, 0], [0, 0, 1]])
    cos_c, sin_c = np.cos(tilt_zx), np.sin(tilt_zx)
    about_y = np.array([[cos_c, 0, -sin_c], [0, 1, 0], [sin_c, 0, cos_c]])
    return about_y @ about_x @ in_plane


def _smooth_random_field(unit_offsets: tuple, rng: np.random.Generator, amplitude: float,
                         num_waves: int = 4, max_cycles: float = 1.0) -> np.ndarray:
    """Smooth random field: a sum of ``num_waves`` plane cosine waves with at most ``max_cycles`` cycles per unit.

    ``unit_offsets`` are broadcastable (dz, dy, dx) coordinates in units of the structure size; the result has
    their broadcast shape and values within [-amplitude, amplitude].
    """
    field = np.zeros(np.broadcast_shapes(*(np.shape(o) for o in unit_offsets)), dtype=np.float32)
    for _ in range(num_waves):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        frequency = 2.0 * np.pi * rng.uniform(0.3, max_cycles)
        phase = rng.uniform(0.0, 2.0 * np.pi)
        projection = sum(np.float32(frequency * d) * o for d, o in zip(direction, unit_offsets))
        field += np.cos(projection + np.float32(phase))
    return field * np.float32(amplitude / num_waves)


def _ellipsoid_radius(grid: Grid, centre_mm: np.ndarray, semi_axes_mm: np.ndarray,
                      rotation: np.ndarray) -> tuple:
    """Normalised ellipsoidal radius (Z, Y, X) (1 on the surface) and the rotated unit offsets used for it."""
    dz, dy, dx = grid.offsets(centre_mm)
    local = [np.float32(rotation[0, k]) * dz + np.float32(rotation[1, k]) * dy + np.float32(rotation[2, k]) * dx
             for k in range(3)]
    unit = [component / np.float32(semi_axis) for component, semi_axis in zip(local, semi_axes_mm)]
    return np.sqrt(unit[0] ** 2 + unit[1] ** 2 + unit[2] ** 2), unit


def _body_masks(grid: Grid, rng: np.random.Generator) -> dict:
    """Body geometry: boolean (Z, Y, X) masks ``body``, ``soft_tissue`` (body minus fat) and ``organ_space``
    (soft tissue at least 2 mm from the fat), plus the in-plane ``centre_yx`` (2,) and ``soft_semi_axes_yx`` (2,)
    in mm."""
    extent = grid.extent_mm
    centre_yx = extent[1:] / 2.0 + rng.uniform(-0.03, 0.03, size=2) * extent[1:]
    semi_axes_yx = np.array([rng.uniform(0.30, 0.42) * extent[1], rng.uniform(0.36, 0.46) * extent[2]])
    fat_thickness = rng.uniform(1.5, 3.5)
    taper = 1.0 + 0.06 * np.cos(2.0 * np.pi * rng.uniform(0.3, 0.8) * grid.z / extent[0] + rng.uniform(0, 2 * np.pi))
    dy, dx = grid.y - np.float32(centre_yx[0]), grid.x - np.float32(centre_yx[1])

    def inside(semi_y: float, semi_x: float) -> np.ndarray:
        radius = np.sqrt((dy / np.float32(semi_y)) ** 2 + (dx / np.float32(semi_x)) ** 2)
        return np.broadcast_to(radius <= taper.astype(np.float32), grid.shape)

    soft_semi_axes = semi_axes_yx - fat_thickness
    return {
        "body": inside(*semi_axes_yx),
        "soft_tissue": inside(*soft_semi_axes),
        "organ_space": inside(*(soft_semi_axes - 2.0)),
        "centre_yx": centre_yx,
        "soft_semi_axes_yx": soft_semi_axes,
    }


def _organ_mask(grid: Grid, body: dict, rng: np.random.Generator) -> tuple:
    """Deformed, randomly oriented ellipsoid inside ``body['organ_space']``.

    Returns the boolean organ mask (Z, Y, X) and its semi-axes (3,) in mm.
    """
    extent = grid.extent_mm
    base = rng.uniform(0.55, 0.8) * body["soft_semi_axes_yx"].min()
    semi_axes = base * rng.uniform(0.75, 1.25, size=3)
    semi_axes[0] = min(semi_axes[0] * 1.3, 0.4 * extent[0])
    reach = semi_axes.max() * 1.15
    free_yx = np.clip(body["soft_semi_axes_yx"] - 2.0 - reach, 0.0, None)
    angle, fraction = rng.uniform(0, 2 * np.pi), 0.8 * np.sqrt(rng.uniform())
    centre_yx = body["centre_yx"] + fraction * free_yx * np.array([np.sin(angle), np.cos(angle)])
    centre_z = extent[0] / 2.0 + rng.uniform(-0.15, 0.15) * extent[0]
    centre = np.array([centre_z, *centre_yx])
    radius, unit = _ellipsoid_radius(grid, centre, semi_axes, _random_rotation(rng, max_tilt_rad=0.3))
    deformation = _smooth_random_field(unit, rng, amplitude=0.15, max_cycles=0.8)
    return (radius <= 1.0 + deformation) & body["organ_space"], semi_axes


def _lesion_masks(grid: Grid, organ: np.ndarray, organ_semi_axes: np.ndarray, num_lesions: int,
                  rng: np.random.Generator) -> list:
    """``num_lesions`` boolean (Z, Y, X) lesion masks, each non-empty and inside ``organ`` (Z, Y, X)."""
    depth_mm = ndimage.distance_transform_edt(organ, sampling=grid.spacing)
    organ_voxels = np.argwhere(organ)
    min_radius = 3.0 * min(grid.spacing)
    max_radius = max(1.5 * min_radius, 0.5 * organ_semi_axes.min())
    lesions = []
    for _ in range(num_lesions):
        radius = float(np.exp(rng.uniform(np.log(min_radius), np.log(max_radius))))
        deep_enough = organ_voxels[depth_mm[organ] >= 0.5 * radius]
        candidates = deep_enough if len(deep_enough) else organ_voxels[[np.argmax(depth_mm[organ])]]
        centre_index = candidates[rng.integers(len(candidates))]
        centre = centre_index * np.array(grid.spacing)
        normalised, unit = _ellipsoid_radius(grid, centre, radius * rng.uniform(0.8, 1.2, size=3),
                                             _random_rotation(rng, max_tilt_rad=np.pi / 2))
        lesion = (normalised <= 1.0 + _smooth_random_field(unit, rng, amplitude=0.15)) & organ
        lesion[tuple(centre_index)] = True
        lesions.append(lesion)
    return lesions


def _render_intensities(grid: Grid, body: dict, organ: np.ndarray, lesions: list, lesion_hu: list,
                        rng: np.random.Generator) -> np.ndarray:
    """HU-like int16 image (Z, Y, X): piecewise-constant tissues, blur, low-frequency bias and noise."""
    image = np.full(grid.shape, AIR_HU, dtype=np.float32)
    image[body["body"]] = FAT_HU + rng.uniform(-10, 10)
    image[body["soft_tissue"]] = SOFT_TISSUE_HU + rng.uniform(-5, 5)
    image[organ] = ORGAN_HU + rng.uniform(-5, 10)
    for lesion, hu in zip(lesions, lesion_hu):
        image[lesion] = hu
    image = ndimage.gaussian_filter(image, sigma=[BLUR_SIGMA_MM / s for s in grid.spacing])
    unit_offsets = grid.offsets(grid.extent_mm / 2.0)
    unit_offsets = tuple(o / np.float32(grid.extent_mm.max()) for o in unit_offsets)
    image += _smooth_random_field(unit_offsets, rng, amplitude=BIAS_AMPLITUDE_HU, num_waves=3)
    image += rng.normal(0.0, rng.uniform(*NOISE_STD_HU_RANGE), size=grid.shape).astype(np.float32)
    return np.clip(np.rint(image), *HU_CLIP_RANGE).astype(np.int16)


def synthesize_case(rng: np.random.Generator, shape: tuple = (40, 64, 64), spacing: tuple = (2.0, 1.0, 1.0),
                    num_lesions: int = 1) -> tuple:
    """Draw one synthetic case.

    Args:
        rng: random generator; the case is a deterministic function of its state.
        shape: (Z, Y, X) voxels.
        spacing: (sz, sy, sx) voxel size in mm.
        num_lesions: number of lesions (0 for a lesion-free case).

    Returns:
        ``(image, labels)``: int16 HU-like image (Z, Y, X) and uint8 labels (Z, Y, X) with 0 background,
        1 organ, 2 lesion.
    """
    grid = Grid.create(shape, spacing)
    body = _body_masks(grid, rng)
    organ, organ_semi_axes = _organ_mask(grid, body, rng)
    if not organ.any():
        raise ValueError(f"field of view {shape} voxels at {spacing} mm is too small to hold an organ")
    lesions = _lesion_masks(grid, organ, organ_semi_axes, num_lesions, rng)
    lesion_hu = [rng.uniform(*(HYPERDENSE_LESION_HU_RANGE if rng.uniform() < 0.5 else HYPODENSE_LESION_HU_RANGE))
                 for _ in lesions]
    image = _render_intensities(grid, body, organ, lesions, lesion_hu, rng)
    labels = organ.astype(np.uint8) * np.uint8(LABELS["organ"])
    for lesion in lesions:
        labels[lesion] = LABELS["lesion"]
    return image, labels


def _num_lesions_for_case(case_index: int, rng: np.random.Generator,
                          lesion_free_every: int = LESION_FREE_EVERY) -> int:
    """0 for every ``lesion_free_every``-th case (default 4: index 3, 7, ...), else 1 to ``MAX_LESIONS``."""
    if case_index % lesion_free_every == lesion_free_every - 1:
        return 0
    return int(rng.integers(1, MAX_LESIONS + 1))


def _write_volume(array: np.ndarray, spacing_zyx: tuple, path: pathlib.Path) -> None:
    """Write a (Z, Y, X) array as NIfTI with spacing (sx, sy, sz) in SimpleITK order, origin 0, identity direction."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing([float(s) for s in reversed(spacing_zyx)])
    image.SetOrigin((0.0, 0.0, 0.0))
    image.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    sitk.WriteImage(image, str(path), useCompression=True)


def _validate_arguments(dataset_id: int, name: str, num_training: int, num_test: int, shape: tuple,
                        spacing: tuple) -> None:
    """Raise ValueError for arguments that cannot give a valid nnU-Net dataset."""
    validate_dataset_id_and_name(dataset_id, name)
    if num_training < 1 or num_test < 0:
        raise ValueError(f"need num_training >= 1 and num_test >= 0, got {num_training} and {num_test}")
    if len(shape) != 3 or any(int(n) < m for n, m in zip(shape, MIN_SHAPE)):
        raise ValueError(f"shape must be (Z, Y, X) of at least {MIN_SHAPE} voxels, got {shape}")
    if len(spacing) != 3 or any(float(s) <= 0 for s in spacing):
        raise ValueError(f"spacing must be three positive (z, y, x) values in mm, got {spacing}")


def _dataset_json(name: str, num_training: int, num_test: int, shape: tuple, spacing: tuple, seed: int) -> dict:
    """dataset.json content (nnU-Net v2) for the synthetic dataset."""
    return {
        "channel_names": {"0": "CT"},
        "labels": dict(LABELS),
        "numTraining": num_training,
        "file_ending": ".nii.gz",
        "name": name,
        "description": "Synthetic CT-like volumes: body with fat layer, one organ (label 1) and 0-3 hypo- or "
                       "hyperdense lesions inside it (label 2); every 4th case has no lesion. Generated by "
                       "nnunet_ext.datasets.synthetic.",
        "licence": "CC0-1.0 (synthetic data, no patient data)",
        "reference": "nnunet_ext.datasets.synthetic.generate_synthetic_dataset",
        "numTest": num_test,
        "synthetic_parameters": {"seed": seed, "shape_zyx": list(shape), "spacing_zyx_mm": list(spacing)},
    }


def generate_synthetic_dataset(raw_root, dataset_id: int = 501, name: str = "SyntheticLesions",
                               num_training: int = 16, num_test: int = 4,
                               shape: tuple = (40, 64, 64), spacing: tuple = (2.0, 1.0, 1.0),
                               seed: int = 0, overwrite: bool = False,
                               lesion_free_every: int = LESION_FREE_EVERY) -> pathlib.Path:
    """Write a synthetic organ/lesion CT dataset in nnU-Net v2 raw format.

    Args:
        raw_root: folder holding nnU-Net raw datasets (``nnUNet_raw``); created if missing.
        dataset_id, name: the dataset folder is ``raw_root/Dataset{dataset_id:03d}_{name}``.
        num_training, num_test: cases written to imagesTr/labelsTr and imagesTs/labelsTs.
        shape: (Z, Y, X) voxels of every volume (numpy order).
        spacing: (sz, sy, sx) in mm; the files carry it as SimpleITK spacing (sx, sy, sz).
        seed: case ``i`` is drawn from ``numpy.random.default_rng([seed, i])``.
        overwrite: replace an existing dataset folder of the same name.
        lesion_free_every: every ``lesion_free_every``-th case has no lesion (2: half the cases).

    Returns:
        The dataset folder.

    Raises:
        FileExistsError: the folder exists and ``overwrite`` is False, or another folder uses ``dataset_id``.
        ValueError: invalid id, name, case counts, shape or spacing.
    """
    shape = tuple(int(n) for n in shape)
    spacing = tuple(float(s) for s in spacing)
    _validate_arguments(dataset_id, name, num_training, num_test, shape, spacing)
    if int(lesion_free_every) < 1:
        raise ValueError(f"lesion_free_every must be a positive number of cases, got {lesion_free_every}")
    raw_root = pathlib.Path(raw_root)
    raw_root.mkdir(parents=True, exist_ok=True)
    folder_name = f"Dataset{dataset_id:03d}_{name}"
    check_output_folder(raw_root, folder_name, dataset_id, overwrite)

    lesion_present = {}
    with staged_dataset_folder(raw_root, folder_name) as staging:
        for subset, first_index, count in (("Tr", 0, num_training), ("Ts", num_training, num_test)):
            (staging / f"images{subset}").mkdir()
            (staging / f"labels{subset}").mkdir()
            for case_index in range(first_index, first_index + count):
                rng = np.random.default_rng([seed, case_index])
                num_lesions = _num_lesions_for_case(case_index, rng, int(lesion_free_every))
                image, labels = synthesize_case(rng, shape, spacing, num_lesions)
                case_id = f"{CASE_PREFIX}_{case_index:03d}"
                lesion_present[case_id] = int(num_lesions > 0)
                _write_volume(image, spacing, staging / f"images{subset}" / f"{case_id}_0000.nii.gz")
                _write_volume(labels, spacing, staging / f"labels{subset}" / f"{case_id}.nii.gz")
        dataset_json = _dataset_json(name, num_training, num_test, shape, spacing, seed)
        write_dataset_json(staging, dataset_json)
        write_diagnosis_labels(staging, DIAGNOSIS_CLASSES, lesion_present)
    return raw_root / folder_name
