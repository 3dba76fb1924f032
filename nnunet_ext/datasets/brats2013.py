"""Convert the BraTS 2013 sample (4 glioma MRI cases from the DeepMedic examples) to a region-based nnU-Net dataset.

Source layout (never copied into the project; see ``default_brats_sample_dir``)::

    brats2013_sample/<case>/Flair_subtrMeanDivStd.nii.gz   240x240x155 voxels, 1 mm, float32, z-scored in the brain
    brats2013_sample/<case>/T1c_subtrMeanDivStd.nii.gz     same grid
    brats2013_sample/<case>/OTMultiClass.nii.gz            0 background, 1 necrosis, 2 oedema,
                                                           3 non-enhancing tumour, 4 enhancing tumour

Per case, the converter

1. crops the three volumes to the bounding box of the brain (FLAIR voxels that differ from the constant background
   value, plus any labelled voxel) enlarged by ``margin_mm`` on every side;
2. resamples to ``target_spacing_mm`` isotropic voxels with SimpleITK: images with a Gaussian anti-aliasing filter
   then linear interpolation, labels with nearest neighbour. The outer corners of the cropped field of view are
   kept, so origin, spacing and direction stay physically correct (at 3 mm a case is about 50x60x50 voxels);
3. remaps the labels to nested tumour regions, the convention nnU-Net's BraTS conversion uses: 2 (oedema) -> 1,
   1 and 3 (necrosis, non-enhancing) -> 2, 4 (enhancing) -> 3, so that whole tumour = {1, 2, 3},
   tumour core = {2, 3} and enhancing tumour = 3.

Output (channel 0000 is FLAIR, 0001 is T1c; the last ``test_cases`` cases in sorted order go to imagesTs/labelsTs)::

    raw_root/Dataset502_BraTS2013Sample/
        dataset.json   (region-based: labels whole_tumor, tumor_core, enhancing_tumor; regions_class_order [1, 2, 3])
        imagesTr/brats_2013_pat0003_1_0000.nii.gz, ..._0001.nii.gz   labelsTr/brats_2013_pat0003_1.nii.gz
        imagesTs/...                                                 labelsTs/...

Command line::

    nnunet_ext_brats2013 --raw /path/to/nnUNet_raw [--source DIR] [--id 502] [--spacing 3.0] \
        [--overwrite]

The data licence is CC BY-NC-SA 3.0 (non-commercial, share alike), unlike the project's: converted datasets must
stay outside the repository.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np
import SimpleITK as sitk

from nnunet_ext.datasets.raw_dataset_folder import (check_output_folder, staged_dataset_folder,
                                                    validate_dataset_id_and_name, write_dataset_json)

SHARED_DATA_ENV_VAR = "NNUNET_EXT_SHARED_DATA"
SAMPLE_FOLDER_NAME = "brats2013_sample"
CHANNEL_FILES = ("Flair_subtrMeanDivStd.nii.gz", "T1c_subtrMeanDivStd.nii.gz")
LABEL_FILE = "OTMultiClass.nii.gz"
CHANNEL_NAMES = {"0": "FLAIR", "1": "T1c"}
NUM_SOURCE_LABELS = 5
# Index = source label (0 bg, 1 necrosis, 2 oedema, 3 non-enhancing, 4 enhancing), value = region-nested label.
SOURCE_TO_REGION_LABEL = np.array([0, 2, 1, 2, 3], dtype=np.uint8)
REGION_LABELS = {"background": 0, "whole_tumor": [1, 2, 3], "tumor_core": [2, 3], "enhancing_tumor": 3}
REGIONS_CLASS_ORDER = [1, 2, 3]
BACKGROUND_TOLERANCE = 1e-4
LICENCE = ("CC BY-NC-SA 3.0 (Switzerland): BraTS 2013 cases as redistributed, intensity-normalised, with the "
           "DeepMedic examples (modified by K. Kamnitsas); non-commercial use only, share alike")
REFERENCE = ("Menze B. H. et al., The Multimodal Brain Tumor Image Segmentation Benchmark (BRATS), IEEE Transactions "
             "on Medical Imaging 34(10):1993-2024, 2015; data from the DeepMedic examples "
             "(https://github.com/deepmedic/deepmedic)")


def default_brats_sample_dir(environ=None) -> pathlib.Path:
    """Where the BraTS 2013 sample is expected.

    ``$NNUNET_EXT_SHARED_DATA/brats2013_sample`` if the environment variable ``NNUNET_EXT_SHARED_DATA`` (the folder
    holding ``brats2013_sample``, i.e. the project's ``../shared/data``) is set in ``environ`` (default
    ``os.environ``), else ``<current directory>/../shared/data/brats2013_sample``, which is right when running from
    the repository root. The location of this file is not used: it says nothing about the data once the package is
    installed.
    """
    shared_data = (os.environ if environ is None else environ).get(SHARED_DATA_ENV_VAR)
    if shared_data:
        return pathlib.Path(shared_data).expanduser().resolve() / SAMPLE_FOLDER_NAME
    return (pathlib.Path.cwd() / ".." / "shared" / "data" / SAMPLE_FOLDER_NAME).resolve()


def find_case_folders(source_dir) -> list:
    """Sorted case folders of ``source_dir``, after checking that each holds the two channels and the labels.

    Raises:
        FileNotFoundError: ``source_dir`` is missing or has no case folder, or a case misses one of its files.
    """
    source_dir = pathlib.Path(source_dir)
    if not source_dir.is_dir():
        raise FileNotFoundError(
            f"BraTS 2013 sample folder {source_dir} not found. It is expected at ../shared/data/{SAMPLE_FOLDER_NAME} "
            f"beside the repository root; set {SHARED_DATA_ENV_VAR} to the folder holding {SAMPLE_FOLDER_NAME} or "
            f"pass its location explicitly (--source).")
    case_folders = sorted(p for p in source_dir.iterdir() if p.is_dir())
    if not case_folders:
        raise FileNotFoundError(f"no case folder in BraTS 2013 sample folder {source_dir}")
    for case_folder in case_folders:
        for file_name in (*CHANNEL_FILES, LABEL_FILE):
            if not (case_folder / file_name).is_file():
                raise FileNotFoundError(f"case {case_folder.name} ({case_folder}) is missing {file_name}")
    return case_folders


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    """True if both images have the same size and (to 1e-4) spacing, origin and direction."""
    return (a.GetSize() == b.GetSize()
            and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-4)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-4))


def read_case(case_folder: pathlib.Path) -> tuple:
    """Read one source case.

    Returns:
        ``(channels, labels)``: list of 2 float32 images (FLAIR, T1c) and a uint8 label image with values 0-4,
        all on the same grid (SimpleITK size (X, Y, Z), e.g. 240x240x155).

    Raises:
        ValueError: the volumes are not on the same grid or the labels are not integers in 0-4.
    """
    channels = [sitk.ReadImage(str(case_folder / name), sitk.sitkFloat32) for name in CHANNEL_FILES]
    source_labels = sitk.ReadImage(str(case_folder / LABEL_FILE))
    label_values = sitk.GetArrayViewFromImage(source_labels)
    if not np.isin(label_values, np.arange(NUM_SOURCE_LABELS)).all():
        found = np.unique(label_values)
        raise ValueError(f"case {case_folder.name}: {LABEL_FILE} holds values {found}, expected integers 0-4")
    labels = sitk.Cast(source_labels, sitk.sitkUInt8)
    for name, image in zip((*CHANNEL_FILES[1:], LABEL_FILE), (*channels[1:], labels)):
        if not _same_grid(channels[0], image):
            raise ValueError(f"case {case_folder.name}: {name} is not on the grid of {CHANNEL_FILES[0]}")
    return channels, labels


def background_value(volume: np.ndarray) -> float:
    """The constant filling the outside of the brain: the most frequent value on the faces of ``volume`` (Z, Y, X)."""
    faces = np.concatenate([volume[[0, -1]].ravel(), volume[:, [0, -1]].ravel(), volume[:, :, [0, -1]].ravel()])
    values, counts = np.unique(faces, return_counts=True)
    return float(values[np.argmax(counts)])


def brain_bounding_box(flair: np.ndarray, labels: np.ndarray) -> tuple:
    """Bounding box of the brain: FLAIR voxels off the background constant, plus labelled voxels.

    Args:
        flair: (Z, Y, X) z-scored FLAIR.
        labels: (Z, Y, X) source labels.

    Returns:
        ``(first, last)``: inclusive (z, y, x) voxel index corners, each a (3,) int array.
    """
    brain = (np.abs(flair - background_value(flair)) > BACKGROUND_TOLERANCE) | (labels > 0)
    if not brain.any():
        raise ValueError("the FLAIR volume is constant: no brain to crop to")
    occupied = [np.flatnonzero(brain.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    return np.array([o[0] for o in occupied]), np.array([o[-1] for o in occupied])


def crop_to_brain(channels: list, labels: sitk.Image, margin_mm: float) -> tuple:
    """Crop all volumes to the brain bounding box plus ``margin_mm`` (clipped to the volume).

    Returns:
        ``(channels, labels)`` cropped with SimpleITK, so each keeps its physical origin, spacing and direction.
    """
    flair = sitk.GetArrayViewFromImage(channels[0])
    first, last = brain_bounding_box(flair, sitk.GetArrayViewFromImage(labels))
    spacing_zyx = np.array(channels[0].GetSpacing()[::-1])
    margin = np.ceil(margin_mm / spacing_zyx).astype(int)
    first = np.maximum(first - margin, 0)
    last = np.minimum(last + margin, np.array(flair.shape) - 1)
    index_xyz = [int(i) for i in first[::-1]]
    size_xyz = [int(n) for n in (last - first + 1)[::-1]]
    return ([sitk.RegionOfInterest(c, size_xyz, index_xyz) for c in channels],
            sitk.RegionOfInterest(labels, size_xyz, index_xyz))


def _target_grid(image: sitk.Image, spacing_mm: float) -> dict:
    """Grid with isotropic ``spacing_mm`` voxels covering the field of view of ``image`` (same outer corners)."""
    old_spacing = np.array(image.GetSpacing())
    new_spacing = np.full(3, float(spacing_mm))
    extent = np.array(image.GetSize()) * old_spacing
    size = [max(1, int(round(e / spacing_mm))) for e in extent]
    direction = np.array(image.GetDirection()).reshape(3, 3)
    origin = np.array(image.GetOrigin()) + direction @ ((new_spacing - old_spacing) / 2.0)
    return {"size": size, "spacing": new_spacing.tolist(), "origin": origin.tolist(),
            "direction": list(image.GetDirection())}


def _resample(image: sitk.Image, grid: dict, interpolator: int, default_value: float) -> sitk.Image:
    """Resample ``image`` onto ``grid`` (from ``_target_grid``) with the identity transform."""
    return sitk.Resample(image, grid["size"], sitk.Transform(), interpolator, grid["origin"], grid["spacing"],
                         grid["direction"], default_value, image.GetPixelID())


def resample_case(channels: list, labels: sitk.Image, spacing_mm: float) -> tuple:
    """Resample a cropped case to isotropic ``spacing_mm``.

    Images get a Gaussian anti-aliasing filter (sigma (target - source spacing) / 2 mm per axis, when downsampling)
    then linear interpolation; labels get nearest neighbour. Returns ``(channels, labels)`` as SimpleITK images
    of the same new size (X, Y, Z).
    """
    grid = _target_grid(labels, spacing_mm)
    sigma_mm = [max(0.0, (spacing_mm - s) / 2.0) for s in labels.GetSpacing()]
    resampled_channels = []
    for channel in channels:
        fill = background_value(sitk.GetArrayViewFromImage(channel))
        smoothed = sitk.SmoothingRecursiveGaussian(channel, sigma_mm) if max(sigma_mm) > 0 else channel
        resampled_channels.append(_resample(smoothed, grid, sitk.sitkLinear, fill))
    return resampled_channels, _resample(labels, grid, sitk.sitkNearestNeighbor, 0)


def remap_labels(labels: sitk.Image) -> sitk.Image:
    """Source labels 0-4 -> nested region labels (2 -> 1, 1 and 3 -> 2, 4 -> 3), keeping the geometry."""
    remapped = sitk.GetImageFromArray(SOURCE_TO_REGION_LABEL[sitk.GetArrayViewFromImage(labels)])
    remapped.CopyInformation(labels)
    return remapped


def _validate_arguments(dataset_id: int, name: str, target_spacing_mm: float, margin_mm: float, test_cases: int,
                        num_cases: int) -> None:
    """Raise ValueError for arguments that cannot give a valid nnU-Net dataset."""
    validate_dataset_id_and_name(dataset_id, name)
    if target_spacing_mm <= 0 or margin_mm < 0:
        raise ValueError(f"need target_spacing_mm > 0 and margin_mm >= 0, got {target_spacing_mm}, {margin_mm}")
    if not 0 <= test_cases < num_cases:
        raise ValueError(f"test_cases must be in 0..{num_cases - 1} so that training keeps a case, got {test_cases}")


def _write_case(case_id: str, channels: list, labels: sitk.Image, dataset_folder: pathlib.Path,
                subset: str) -> None:
    """Write ``{case_id}_000k.nii.gz`` per channel to images{subset} and ``{case_id}.nii.gz`` to labels{subset}."""
    for channel_index, channel in enumerate(channels):
        path = dataset_folder / f"images{subset}" / f"{case_id}_{channel_index:04d}.nii.gz"
        sitk.WriteImage(channel, str(path), useCompression=True)
    sitk.WriteImage(labels, str(dataset_folder / f"labels{subset}" / f"{case_id}.nii.gz"), useCompression=True)


def _dataset_json(name: str, num_training: int, num_test: int, target_spacing_mm: float, margin_mm: float) -> dict:
    """Region-based dataset.json content (nnU-Net v2)."""
    return {
        "channel_names": dict(CHANNEL_NAMES),
        "labels": {k: (list(v) if isinstance(v, list) else v) for k, v in REGION_LABELS.items()},
        "regions_class_order": list(REGIONS_CLASS_ORDER),
        "numTraining": num_training,
        "file_ending": ".nii.gz",
        "name": name,
        "description": f"BraTS 2013 sample (FLAIR, T1c), cropped to the brain + {margin_mm:g} mm and resampled to "
                       f"{target_spacing_mm:g} mm isotropic; labels 1 oedema, 2 necrosis or non-enhancing tumour, "
                       f"3 enhancing tumour, trained as regions whole tumour, tumour core, enhancing tumour.",
        "licence": LICENCE,
        "reference": REFERENCE,
        "numTest": num_test,
    }


def convert_brats2013_sample(source_dir, raw_root, dataset_id: int = 502, name: str = "BraTS2013Sample",
                             target_spacing_mm: float = 3.0, margin_mm: float = 10.0,
                             test_cases: int = 1, overwrite: bool = False) -> pathlib.Path:
    """Convert the BraTS 2013 sample to a region-based nnU-Net v2 raw dataset.

    Args:
        source_dir: folder with one sub-folder per case (see ``default_brats_sample_dir``); only read.
        raw_root: nnU-Net raw folder (``nnUNet_raw``) to write ``Dataset{dataset_id:03d}_{name}`` into.
        target_spacing_mm: isotropic output voxel size (3 mm gives about 50x60x50 voxels per case).
        margin_mm: margin around the brain bounding box kept by the crop.
        test_cases: the last ``test_cases`` cases (sorted by folder name) go to imagesTs/labelsTs.
        overwrite: replace an existing dataset folder of the same name.

    Returns:
        The dataset folder.

    Raises:
        FileNotFoundError: missing source folder or a case missing a file.
        FileExistsError: the dataset folder exists and ``overwrite`` is False, or another folder uses the id.
        ValueError: invalid arguments, or source volumes on different grids or with unexpected label values.
    """
    case_folders = find_case_folders(source_dir)
    _validate_arguments(dataset_id, name, target_spacing_mm, margin_mm, test_cases, len(case_folders))
    raw_root = pathlib.Path(raw_root)
    raw_root.mkdir(parents=True, exist_ok=True)
    folder_name = f"Dataset{dataset_id:03d}_{name}"
    check_output_folder(raw_root, folder_name, dataset_id, overwrite)

    num_training = len(case_folders) - test_cases
    with staged_dataset_folder(raw_root, folder_name) as staging:
        for subset in ("Tr", "Ts"):
            (staging / f"images{subset}").mkdir()
            (staging / f"labels{subset}").mkdir()
        for position, case_folder in enumerate(case_folders):
            channels, labels = crop_to_brain(*read_case(case_folder), margin_mm=margin_mm)
            channels, labels = resample_case(channels, labels, target_spacing_mm)
            subset = "Tr" if position < num_training else "Ts"
            _write_case(case_folder.name, channels, remap_labels(labels), staging, subset)
        dataset_json = _dataset_json(name, num_training, test_cases, target_spacing_mm, margin_mm)
        write_dataset_json(staging, dataset_json)
    return raw_root / folder_name
