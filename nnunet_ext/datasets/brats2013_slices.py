"""Convert the BraTS 2013 sample to a 2D nnU-Net dataset of axial slices with an image-level label per slice.

Segmentation target: the whole tumour (every source label > 0). Image-level (diagnosis) label: whether the
*source* slice (1 mm, before downsampling) holds at least one enhancing-tumour voxel (source label 4). So the
network segments the whole tumour and tells whether part of it enhances, which the whole-tumour mask alone does
not say. Source layout and reading: ``nnunet_ext.datasets.brats2013``.

Per patient (one source case folder), the converter

1. reads FLAIR, T1c and the labels (240x240x155 at 1 mm) and keeps the axial slices ``z`` with
   ``z % slice_step == 0`` that hold tumour or whose brain area (FLAIR off its background constant, or labelled)
   is at least ``min_brain_fraction`` of the patient's largest one: slices inside the brain, tumour-free ones
   included. With the defaults (step 3, fraction 0.1) the four patients give 172 slices (41-46 each), 63 of them
   with enhancing tumour (11, 13, 20, 19 for pat0003-pat0006);
2. downsamples each kept slice on its own, in plane, to ``in_plane_spacing_mm`` (default 3 mm: the full
   240x240 mm field of view becomes 80x80 voxels, every slice the same size): a Gaussian anti-aliasing filter along
   x and y (sigma (target - source spacing) / 2 mm) then linear interpolation for the images, nearest neighbour
   for the whole-tumour mask. The outer corners of the field of view are kept. 3 mm rather than 4 mm because the
   enhancing rim is often only a few mm thick;
3. writes each kept slice as a 3D image of one slice (size (80, 80, 1) in SimpleITK order), nnU-Net's 2D
   convention. Its single voxel centre is at the slice's physical position, but its z spacing is set to
   999 x the in-plane spacing, as nnU-Net's own reader does for 2D images: nnU-Net's planner moves the axis with the
   largest spacing first (``determine_transpose``), so with the true 1 mm the in-plane axes would be taken as the
   slicing axis. The z spacing is therefore not a slice thickness.

Output (channel 0000 is FLAIR, 0001 is T1c; all slices are training cases, the validation split is by patient)::

    raw_root/Dataset503_BraTS2013Slices/
        dataset.json               labels {background: 0, whole_tumour: 1}, file_ending .nii.gz
        diagnosis_labels.json      {"classes": ["no enhancing tumour", "enhancing tumour"], "ordinal": false,
                                    "labels": {"pat0003_z060": 1, ...}}
        imagesTr/pat0003_z060_0000.nii.gz, ..._0001.nii.gz          labelsTr/pat0003_z060.nii.gz
    preprocessed_root/Dataset503_BraTS2013Slices/splits_final.json  (when ``preprocessed_root`` is given)

Case ids are ``{patient}_z{slice index:03d}`` (``nnunet_ext.datasets.patient_splits``); the patient is the
``patNNNN`` part of the case folder name (the whole folder name when it has none).

Command line (``--raw`` defaults to ``$nnUNet_raw``, ``--preprocessed`` to ``$nnUNet_preprocessed``; when a
preprocessed folder is known the leave-one-patient-out ``splits_final.json`` is written there too)::

    nnunet_ext_brats_slices [--source DIR] [--raw DIR] [--preprocessed DIR] [--id 503] \
        [--spacing 3.0] [--slice-step 3] [--num-folds N] [--overwrite]

The data licence is CC BY-NC-SA 3.0 (non-commercial, share alike), unlike the project's: converted datasets must
stay outside the repository.
"""

from __future__ import annotations

import json
import pathlib
import re
from dataclasses import dataclass, field
from typing import Iterable, Optional

import numpy as np
import SimpleITK as sitk

from nnunet_ext.datasets.brats2013 import (BACKGROUND_TOLERANCE, CHANNEL_NAMES, LICENCE, REFERENCE, _resample,
                                           background_value, find_case_folders, read_case)
from nnunet_ext.datasets.patient_splits import slice_case_id, write_patient_splits
from nnunet_ext.datasets.raw_dataset_folder import (check_output_folder, staged_dataset_folder,
                                                    validate_dataset_id_and_name, write_dataset_json)
from nnunet_ext.diagnosis.labels import LABELS_FILE_NAME

SEGMENTATION_LABELS = {"background": 0, "whole_tumour": 1}
DIAGNOSIS_CLASSES = ["no enhancing tumour", "enhancing tumour"]
ENHANCING_SOURCE_LABEL = 4
NNUNET_2D_SPACING_FACTOR = 999.0
PATIENT_PATTERN = re.compile(r"pat\d+")
DEFAULT_IN_PLANE_SPACING_MM = 3.0
DEFAULT_SLICE_STEP = 3
DEFAULT_MIN_BRAIN_FRACTION = 0.1


@dataclass(frozen=True)
class SliceDatasetSummary:
    """What a conversion wrote: the dataset folder, the splits file (or None) and the slice counts."""

    dataset_folder: pathlib.Path
    splits_file: Optional[pathlib.Path]
    slices_per_patient_and_class: dict = field(default_factory=dict)  # {patient: {class name: count}}

    @property
    def slices_per_patient(self) -> dict:
        """``{patient: number of slices}``."""
        return {patient: sum(counts.values()) for patient, counts in self.slices_per_patient_and_class.items()}

    @property
    def slices_per_class(self) -> dict:
        """``{class name: number of slices}`` over all patients, every class listed."""
        return {name: sum(counts[name] for counts in self.slices_per_patient_and_class.values())
                for name in DIAGNOSIS_CLASSES}

    def __str__(self) -> str:
        lines = [str(self.dataset_folder)]
        if self.splits_file is not None:
            lines.append(f"splits: {self.splits_file}")
        for patient, counts in self.slices_per_patient_and_class.items():
            lines.append(f"{patient}: {sum(counts.values())} slices ("
                         + ", ".join(f"{name}: {n}" for name, n in counts.items()) + ")")
        lines.append(f"total: {sum(self.slices_per_patient.values())} slices ("
                     + ", ".join(f"{name}: {n}" for name, n in self.slices_per_class.items()) + ")")
        return "\n".join(lines)


def patient_id_of_folder(folder_name: str) -> str:
    """The ``patNNNN`` part of a case folder name (``brats_2013_pat0003_1`` -> ``pat0003``), else the whole name."""
    match = PATIENT_PATTERN.search(folder_name)
    return match.group(0) if match else folder_name


def brain_mask(flair: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Boolean (Z, Y, X) brain: FLAIR voxels off the background constant, plus labelled voxels (as the 3D
    converter's crop)."""
    return (np.abs(flair - background_value(flair)) > BACKGROUND_TOLERANCE) | (labels > 0)


def select_slices(flair: np.ndarray, labels: np.ndarray, slice_step: int, min_brain_fraction: float) -> list:
    """Axial indices ``z`` (into (Z, Y, X) arrays) with ``z % slice_step == 0`` that hold tumour or a brain area
    of at least ``min_brain_fraction`` times the largest slice's."""
    area = brain_mask(flair, labels).sum(axis=(1, 2))
    if area.max() == 0:
        raise ValueError("the FLAIR volume is constant: no brain slice to keep")
    keep = ((area >= min_brain_fraction * area.max()) & (area > 0)) | (labels > 0).any(axis=(1, 2))
    return [int(z) for z in np.flatnonzero(keep) if z % slice_step == 0]


def enhancing_tumour_present(labels: np.ndarray) -> np.ndarray:
    """(Z,) bool: does axial slice z of the source labels (Z, Y, X) hold any enhancing-tumour voxel (label 4)."""
    return (labels == ENHANCING_SOURCE_LABEL).any(axis=(1, 2))


def in_plane_grid(image: sitk.Image, spacing_mm: float) -> dict:
    """Grid with ``spacing_mm`` along x and y and the source spacing along z, covering the field of view of
    ``image`` (same outer corners); the format of ``brats2013._resample``."""
    old_spacing = np.array(image.GetSpacing())
    new_spacing = np.array([spacing_mm, spacing_mm, old_spacing[2]], dtype=float)
    extent = np.array(image.GetSize()) * old_spacing
    size = [max(1, int(round(e / s))) for e, s in zip(extent[:2], new_spacing[:2])] + [image.GetSize()[2]]
    direction = np.array(image.GetDirection()).reshape(3, 3)
    origin = np.array(image.GetOrigin()) + direction @ ((new_spacing - old_spacing) / 2.0)
    return {"size": size, "spacing": new_spacing.tolist(), "origin": origin.tolist(),
            "direction": list(image.GetDirection())}


def smooth_in_plane(image: sitk.Image, sigma_mm: float) -> sitk.Image:
    """Gaussian filter of standard deviation ``sigma_mm`` along x and y only (z untouched); identity for 0."""
    for axis in (0, 1):
        if sigma_mm > 0:
            image = sitk.RecursiveGaussian(image, sigma_mm, False, sitk.RecursiveGaussianImageFilter.ZeroOrder,
                                           axis)
    return image


def downsample_in_plane(channels: list, labels: sitk.Image, spacing_mm: float, fill_values: list) -> tuple:
    """Resample FLAIR, T1c (float32) and the whole-tumour mask (source labels > 0) to ``spacing_mm`` in plane.

    Args:
        channels, labels: SimpleITK images on one grid (X, Y, Z), e.g. a single slice (240, 240, 1).
        fill_values: per channel, the value for samples outside the field of view (its background constant).

    Returns:
        ``(channels, whole_tumour)``: SimpleITK images of size (X', Y', Z) (Z unchanged), the mask uint8 0/1.
    """
    grid = in_plane_grid(labels, spacing_mm)
    sigma_mm = max(0.0, (spacing_mm - max(labels.GetSpacing()[:2])) / 2.0)
    resampled = [_resample(smooth_in_plane(channel, sigma_mm), grid, sitk.sitkLinear, fill)
                 for channel, fill in zip(channels, fill_values)]
    whole_tumour = sitk.Cast(labels > 0, sitk.sitkUInt8)
    return resampled, _resample(whole_tumour, grid, sitk.sitkNearestNeighbor, 0)


def single_slice(volume: sitk.Image, z: int) -> sitk.Image:
    """Axial slice ``z`` of ``volume`` (X, Y, Z) as a 3D image of size (X, Y, 1) with the volume's geometry."""
    return volume[:, :, z:z + 1]


def with_nnunet_2d_spacing(image: sitk.Image) -> sitk.Image:
    """``image`` (X, Y, 1) with z spacing 999 x its largest in-plane spacing (nnU-Net's 2D convention); the voxel
    centres stay at their physical positions, since the origin is a voxel centre."""
    image = sitk.Image(image)
    in_plane = image.GetSpacing()[:2]
    image.SetSpacing((*in_plane, NNUNET_2D_SPACING_FACTOR * max(in_plane)))
    return image


def _validate_arguments(dataset_id: int, name: str, in_plane_spacing_mm: float, slice_step: int,
                        min_brain_fraction: float) -> None:
    """Raise ValueError for arguments that cannot give a valid dataset."""
    validate_dataset_id_and_name(dataset_id, name)
    if in_plane_spacing_mm <= 0:
        raise ValueError(f"in_plane_spacing_mm must be > 0, got {in_plane_spacing_mm}")
    if int(slice_step) != slice_step or slice_step < 1:
        raise ValueError(f"slice_step must be an integer >= 1, got {slice_step}")
    if not 0 <= min_brain_fraction <= 1:
        raise ValueError(f"min_brain_fraction must be in [0, 1], got {min_brain_fraction}")


def _patient_folders(source, patients: Optional[Iterable[str]]) -> dict:
    """``{patient id: case folder}`` in sorted order, restricted to ``patients`` when given."""
    folders = {}
    for folder in find_case_folders(source):
        patient = patient_id_of_folder(folder.name)
        if patient in folders:
            raise ValueError(f"case folders {folders[patient].name} and {folder.name} both belong to patient "
                             f"{patient}; one case folder per patient is expected")
        folders[patient] = folder
    if patients is None:
        return folders
    patients = list(patients)
    unknown = sorted(set(patients) - set(folders))
    if unknown or not patients:
        raise ValueError(f"patients {unknown or patients} not in {source}; available: {sorted(folders)}")
    return {patient: folders[patient] for patient in sorted(set(patients))}


def _write_slice(case_id: str, channels: list, whole_tumour: sitk.Image, dataset_folder: pathlib.Path) -> None:
    """Write ``{case_id}_000k.nii.gz`` per channel to imagesTr and ``{case_id}.nii.gz`` to labelsTr, in nnU-Net's
    2D convention."""
    for channel_index, channel in enumerate(channels):
        path = dataset_folder / "imagesTr" / f"{case_id}_{channel_index:04d}.nii.gz"
        sitk.WriteImage(with_nnunet_2d_spacing(channel), str(path), useCompression=True)
    sitk.WriteImage(with_nnunet_2d_spacing(whole_tumour), str(dataset_folder / "labelsTr" / f"{case_id}.nii.gz"),
                    useCompression=True)


def _dataset_json(name: str, num_training: int, in_plane_spacing_mm: float, slice_step: int,
                  min_brain_fraction: float) -> dict:
    """dataset.json content (nnU-Net v2) of the slice dataset."""
    return {
        "channel_names": dict(CHANNEL_NAMES),
        "labels": dict(SEGMENTATION_LABELS),
        "numTraining": num_training,
        "file_ending": ".nii.gz",
        "name": name,
        "description": f"Axial slices of the BraTS 2013 sample (FLAIR, T1c), every {slice_step}th slice with at "
                       f"least {min_brain_fraction:g} of the largest brain area, downsampled in plane to "
                       f"{in_plane_spacing_mm:g} mm (z spacing set to {NNUNET_2D_SPACING_FACTOR:g} x in-plane, "
                       f"nnU-Net's 2D convention). Label 1 is the whole tumour; {LABELS_FILE_NAME} says whether "
                       f"the slice holds enhancing tumour. Case ids are <patient>_z<slice>: split by patient.",
        "licence": LICENCE,
        "reference": REFERENCE,
        "numTest": 0,
        "slice_parameters": {"in_plane_spacing_mm": in_plane_spacing_mm, "slice_step": slice_step,
                             "min_brain_fraction": min_brain_fraction},
    }


def convert_brats2013_slices(source, raw_root, dataset_id: int = 503, name: str = "BraTS2013Slices",
                             in_plane_spacing_mm: float = DEFAULT_IN_PLANE_SPACING_MM,
                             slice_step: int = DEFAULT_SLICE_STEP,
                             min_brain_fraction: float = DEFAULT_MIN_BRAIN_FRACTION,
                             patients: Optional[Iterable[str]] = None, preprocessed_root=None,
                             num_folds: Optional[int] = None, overwrite: bool = False) -> SliceDatasetSummary:
    """Convert the BraTS 2013 sample to a 2D nnU-Net v2 raw dataset of axial slices with diagnosis labels.

    Args:
        source: folder with one sub-folder per case (see ``brats2013.default_brats_sample_dir``); only read.
        raw_root: nnU-Net raw folder to write ``Dataset{dataset_id:03d}_{name}`` into.
        in_plane_spacing_mm: in-plane voxel size of the slices (3 mm: 80x80 voxels).
        slice_step: keep axial slices whose index is a multiple of ``slice_step``.
        min_brain_fraction: keep slices whose brain area is at least this fraction of the patient's largest.
        patients: patient ids (``pat0003``, ...) to convert; all when None (tests use fewer to stay fast).
        preprocessed_root: if given, ``splits_final.json`` by patient (``num_folds``: None for leave one patient
            out) is written to ``preprocessed_root/Dataset{dataset_id:03d}_{name}``; needs two patients or more.
        overwrite: replace an existing dataset folder and a different existing ``splits_final.json``.

    Returns:
        A ``SliceDatasetSummary`` (folder, splits file, slice counts per patient and class).

    Raises:
        FileNotFoundError: missing source folder or a case missing a file.
        FileExistsError: the dataset folder (or a different splits file) exists and ``overwrite`` is False, or
            another folder uses the id.
        ValueError: invalid arguments, unknown patients, or source volumes that cannot be read as BraTS cases.
    """
    _validate_arguments(dataset_id, name, in_plane_spacing_mm, slice_step, min_brain_fraction)
    folders = _patient_folders(source, patients)
    raw_root = pathlib.Path(raw_root)
    raw_root.mkdir(parents=True, exist_ok=True)
    folder_name = f"Dataset{dataset_id:03d}_{name}"
    check_output_folder(raw_root, folder_name, dataset_id, overwrite)

    diagnosis = {}
    counts = {}
    splits_file = None
    with staged_dataset_folder(raw_root, folder_name) as staging:
        (staging / "imagesTr").mkdir()
        (staging / "labelsTr").mkdir()
        for patient, case_folder in folders.items():
            channels, labels = read_case(case_folder)
            label_array = sitk.GetArrayFromImage(labels)
            slices = select_slices(sitk.GetArrayViewFromImage(channels[0]), label_array, slice_step,
                                   min_brain_fraction)
            enhancing = enhancing_tumour_present(label_array)
            fill_values = [background_value(sitk.GetArrayViewFromImage(channel)) for channel in channels]
            counts[patient] = {class_name: 0 for class_name in DIAGNOSIS_CLASSES}
            for z in slices:
                case_id = slice_case_id(patient, z)
                slice_channels, whole_tumour = downsample_in_plane([single_slice(c, z) for c in channels],
                                                                   single_slice(labels, z), in_plane_spacing_mm,
                                                                   fill_values)
                _write_slice(case_id, slice_channels, whole_tumour, staging)
                diagnosis[case_id] = int(enhancing[z])
                counts[patient][DIAGNOSIS_CLASSES[diagnosis[case_id]]] += 1
        write_dataset_json(staging, _dataset_json(name, len(diagnosis), in_plane_spacing_mm, slice_step,
                                                  min_brain_fraction))
        labels_file = {"classes": list(DIAGNOSIS_CLASSES), "ordinal": False, "labels": diagnosis}
        (staging / LABELS_FILE_NAME).write_text(json.dumps(labels_file, indent=2) + "\n")
        if preprocessed_root is not None:
            splits_file = write_patient_splits(pathlib.Path(preprocessed_root) / folder_name, list(diagnosis),
                                               num_folds=num_folds, overwrite=overwrite)
    return SliceDatasetSummary(raw_root / folder_name, splits_file, counts)
