"""Stage 2's training data: an nnU-Net raw dataset of cubes cropped around the targets of another raw dataset
(Div-attention's pipeline; the geometry in :mod:`nnunet_ext.geometry.crop_cubes`).

* Training cases (``imagesTr``): one crop per target component of their reference labels (``labelsTr``), image
  channels and labels cropped alike.
* Test cases (``imagesTs``): one crop per target component of a Stage-1 segmentation of each (a folder of
  ``<case>.nii.gz`` as ``nnUNetv2_predict`` writes it), with the reference's crop in ``labelsTs`` where the source
  has one (for scoring Stage 2 on crops).
* Every crop is ``size`` voxels per axis, written with the nominal geometry (spacing 1 mm, origin 0, identity
  direction): nnU-Net's planner resamples every case to the dataset's median spacing, which would undo the fixed-size
  normalisation of crops of different true sizes; at one uniform spacing 96^3 stays 96^3. The true geometry (cube
  centre, side, spacing, origin, direction), the case and component of every crop go to ``crops.json``; the crop
  settings also into ``dataset.json`` (key ``nnunet_ext_crops``), which nnU-Net copies into the model folder, so
  that ``nnunet_ext_coarse_to_fine`` crops new cases the way the model was trained.
* A component too small for a crop (:data:`~nnunet_ext.geometry.crop_cubes.MIN_EXTENT_VOXELS`,
  :data:`~nnunet_ext.geometry.crop_cubes.MIN_VOXELS`) is listed under ``skipped``. Crop ids are
  ``<case>_c<k>`` (``k``: the component, largest first).
"""

from __future__ import annotations

import json
import pathlib
from typing import Dict, Iterable, List, Optional, Tuple

import SimpleITK as sitk

from nnunet_ext.core.errors import InputFilesError
from nnunet_ext.datasets.raw_dataset_folder import (check_output_folder, staged_dataset_folder,
                                                    validate_dataset_id_and_name, write_dataset_json)
from nnunet_ext.geometry.crop_cubes import (DEFAULT_CROP_SIZE, DEFAULT_MARGIN, CropCube, crop_image, cube_around,
                                            segmentation_components, with_nominal_geometry)

CROPS_FILE_NAME = "crops.json"
CROP_SETTINGS_KEY = "nnunet_ext_crops"
NOMINAL_SPACING_MM = 1.0


def crop_settings(size: int, margin: float) -> dict:
    return {"size": int(size), "margin": float(margin), "nominal_spacing_mm": NOMINAL_SPACING_MM,
            "rule": "one cube per target component (labels > 0 together), centred on its centroid, side (1 + 2 x "
                    "margin) x its longest principal axis, along the image axes; components narrower than 2 voxels "
                    "or of fewer than 5 voxels are not cropped"}


def case_images(folder: pathlib.Path, case: str, num_channels: int, ending: str) -> List[pathlib.Path]:
    files = [folder / f"{case}_{channel:04d}{ending}" for channel in range(num_channels)]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise InputFilesError(f"Case {case!r} has no image {missing[0].name}.", file=missing[0], case=case,
                              fix="give every case one file per channel of dataset.json")
    return files


def crops_of_case(case: str, images: List[pathlib.Path], targets: sitk.Image, size: int, margin: float,
                  labels: Optional[sitk.Image] = None) -> Tuple[List[dict], List[int]]:
    """The crops of one case around the components of ``targets``: ``([{"id", "cube", "images": [sitk], "labels":
    sitk or None, "component_voxels", "longest_axis_mm"}], sizes of the components too small for a crop)``."""
    read = [sitk.ReadImage(str(path)) for path in images]
    reference = read[0]
    if targets.GetSize() != reference.GetSize():
        raise InputFilesError(f"The segmentation of case {case!r} has size {targets.GetSize()}, its image "
                              f"{reference.GetSize()}.", case=case, fix="give the segmentation of this image")
    crops, skipped = [], []
    for component in segmentation_components(targets):
        if not component.large_enough:
            skipped.append(component.size)
            continue
        cube, length = cube_around(component, reference, size, margin)
        crops.append({"id": f"{case}_c{component.index}", "case": case, "component": component.index,
                      "cube": cube, "component_voxels": component.size, "longest_axis_mm": length,
                      "images": [crop_image(image, cube) for image in read],
                      "labels": None if labels is None else crop_image(labels, cube, labels=True)})
    return crops, skipped


def crop_entry(crop: dict, split: str) -> dict:
    return {"case": crop["case"], "split": split, "component": crop["component"],
            "component_voxels": crop["component_voxels"], "longest_axis_mm": round(crop["longest_axis_mm"], 4),
            **crop["cube"].to_json()}


def write_crop(folder: pathlib.Path, crop: dict, ending: str, split: str) -> None:
    images, labels = folder / f"images{split}", folder / f"labels{split}"
    images.mkdir(exist_ok=True)
    for channel, image in enumerate(crop["images"]):
        sitk.WriteImage(with_nominal_geometry(image, NOMINAL_SPACING_MM),
                        str(images / f"{crop['id']}_{channel:04d}{ending}"), True)
    if crop["labels"] is not None:
        labels.mkdir(exist_ok=True)
        sitk.WriteImage(with_nominal_geometry(crop["labels"], NOMINAL_SPACING_MM),
                        str(labels / f"{crop['id']}{ending}"), True)


def cases_of(folder: pathlib.Path, ending: str) -> List[str]:
    return sorted({p.name[:-len(ending)].rsplit("_", 1)[0] for p in folder.glob(f"*{ending}")}) \
        if folder.is_dir() else []


def write_crop_dataset(source: pathlib.Path, raw_root: pathlib.Path, dataset_id: int, name: str,
                       stage1_predictions: Optional[pathlib.Path] = None, size: int = DEFAULT_CROP_SIZE,
                       margin: float = DEFAULT_MARGIN, overwrite: bool = False) -> pathlib.Path:
    """``raw_root/Dataset<id>_<name>``, the crops of the raw dataset ``source`` (module docstring); returns it."""
    source, raw_root = pathlib.Path(source), pathlib.Path(raw_root)
    validate_dataset_id_and_name(dataset_id, name)
    if size < 8 or not 0 <= margin <= 2:
        raise ValueError(f"crop size must be at least 8 voxels and margin in [0, 2], got {size} and {margin}")
    dataset_json = json.loads((source / "dataset.json").read_text())
    ending = dataset_json["file_ending"]
    channels = len(dataset_json.get("channel_names", dataset_json.get("modality", {})))
    folder_name = f"Dataset{dataset_id:03d}_{name}"
    check_output_folder(raw_root, folder_name, dataset_id, overwrite)
    entries: Dict[str, dict] = {}
    skipped: Dict[str, List[int]] = {}
    with staged_dataset_folder(raw_root, folder_name) as staging:
        for case in cases_of(source / "imagesTr", ending):
            reference = sitk.ReadImage(str(source / "labelsTr" / f"{case}{ending}"))
            crops, too_small = crops_of_case(case, case_images(source / "imagesTr", case, channels, ending),
                                             reference, size, margin, labels=reference)
            for crop in crops:
                write_crop(staging, crop, ending, "Tr")
                entries[crop["id"]] = crop_entry(crop, "training")
            if too_small:
                skipped[case] = too_small
        if stage1_predictions is not None:
            for case in cases_of(source / "imagesTs", ending):
                segmentation_file = pathlib.Path(stage1_predictions) / f"{case}{ending}"
                if not segmentation_file.is_file():
                    raise InputFilesError(f"The Stage-1 predictions have no segmentation of test case {case!r}.",
                                          file=segmentation_file, case=case,
                                          fix="predict imagesTs with the Stage-1 model into that folder first")
                reference_file = source / "labelsTs" / f"{case}{ending}"
                reference = sitk.ReadImage(str(reference_file)) if reference_file.is_file() else None
                crops, too_small = crops_of_case(case, case_images(source / "imagesTs", case, channels, ending),
                                                 sitk.ReadImage(str(segmentation_file)), size, margin, reference)
                for crop in crops:
                    write_crop(staging, crop, ending, "Ts")
                    entries[crop["id"]] = crop_entry(crop, "test")
                if too_small:
                    skipped[case] = too_small
        training = sum(1 for entry in entries.values() if entry["split"] == "training")
        if training == 0:
            raise InputFilesError("No training case has a target large enough for a crop.", file=source,
                                  fix="check labelsTr (the crops are made around their foreground)")
        settings = crop_settings(size, margin)
        content = {key: value for key, value in dataset_json.items() if key not in ("numTraining", "numTest")}
        content.update({"numTraining": training, "name": name,
                        "description": f"Crops around the targets of {source.name} (nnunet_ext_crops).",
                        CROP_SETTINGS_KEY: {**settings, "source": source.name}})
        write_dataset_json(staging, content)
        (staging / CROPS_FILE_NAME).write_text(json.dumps({"settings": settings, "source": str(source),
                                                            "crops": entries, "skipped": skipped}, indent=2) + "\n")
    return raw_root / folder_name


def crop_cases(images: pathlib.Path, segmentations: pathlib.Path, output: pathlib.Path, dataset_json: dict,
               size: int, margin: float) -> dict:
    """Crops of every case of ``images`` around the components of its segmentation in ``segmentations``, written
    into ``output`` (``<crop id>_<channel>`` files, nominal geometry, and ``crops.json``): what Stage 2 predicts.
    Returns the content of ``crops.json``."""
    ending = dataset_json["file_ending"]
    channels = len(dataset_json.get("channel_names", dataset_json.get("modality", {})))
    output = pathlib.Path(output)
    output.mkdir(parents=True, exist_ok=True)
    entries, skipped = {}, {}
    for case in cases_of(pathlib.Path(images), ending):
        segmentation_file = pathlib.Path(segmentations) / f"{case}{ending}"
        if not segmentation_file.is_file():
            raise InputFilesError(f"There is no Stage-1 segmentation of case {case!r}.", file=segmentation_file,
                                  case=case, fix="predict the case with the Stage-1 model first")
        crops, too_small = crops_of_case(case, case_images(pathlib.Path(images), case, channels, ending),
                                         sitk.ReadImage(str(segmentation_file)), size, margin)
        for crop in crops:
            for channel, image in enumerate(crop["images"]):
                sitk.WriteImage(with_nominal_geometry(image, NOMINAL_SPACING_MM),
                                str(output / f"{crop['id']}_{channel:04d}{ending}"), True)
            entries[crop["id"]] = crop_entry(crop, "test")
        skipped[case] = too_small
    content = {"settings": crop_settings(size, margin), "source": str(images), "crops": entries, "skipped": skipped}
    (output / CROPS_FILE_NAME).write_text(json.dumps(content, indent=2) + "\n")
    return content


def read_crops(path: pathlib.Path) -> Dict[str, CropCube]:
    """crop id -> its cube, from a ``crops.json``."""
    return {crop: CropCube.from_json(entry) for crop, entry in json.loads(pathlib.Path(path).read_text())["crops"]
            .items()}


def test_cases_with_crops(entries: Iterable[dict]) -> List[str]:
    return sorted({entry["case"] for entry in entries if entry["split"] == "test"})
