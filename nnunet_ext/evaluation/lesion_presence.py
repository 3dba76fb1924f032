"""Image-wise lesion classification from exported segmentations: is each class present in a case (or an axial
slice), scored against the ground truth with precision, recall and F1.

Threshold: presence is read from the hard segmentations that nnU-Net exports, so a class counts as predicted present
when at least one voxel carries it. That is nnU-Net's own decision per voxel: sigmoid probability > 0.5 for a region
(region-based datasets), argmax of the softmax for a label. Voxels with the ignore label never count as present.

Command line::

    nnunet_ext_lesion_presence -pred FOLDER -ref FOLDER -djfile dataset.json [--per-axial-slice]
"""

import json
import math
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import SimpleITK as sitk
from nnunetv2.evaluation.evaluate_predictions import region_or_label_to_mask
from nnunetv2.utilities.label_handling.label_handling import LabelManager
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

LabelOrRegion = Union[int, Tuple[int, ...]]
ClassList = List[Tuple[str, LabelOrRegion]]

CASE_SUMMARY_FILE = "lesion_presence_summary.json"
SLICE_SUMMARY_FILE = "lesion_presence_per_slice_summary.json"
AXIAL_AXIS = 0  # SimpleITK arrays are (z, y, x)
SCORE_NAMES = ("precision", "recall", "F1")


def label_manager_for(dataset_json: dict, plans: Optional[dict] = None) -> LabelManager:
    """nnU-Net's label manager of a dataset: the plans' own ``label_manager`` class when the plans name one, else
    nnU-Net's default ``LabelManager`` (which is what ``PlansManager`` uses then too)."""
    if plans is not None and "label_manager" in plans:
        return PlansManager(plans).get_label_manager(dataset_json)
    return LabelManager(dataset_json["labels"], dataset_json.get("regions_class_order"))


def _as_label_tuple(label_or_region) -> Tuple[int, ...]:
    if isinstance(label_or_region, (list, tuple)):
        return tuple(int(label) for label in label_or_region)
    return (int(label_or_region),)


def _class_name(label_dict: dict, label_or_region: LabelOrRegion) -> str:
    """The dataset.json ``labels`` key whose value is ``label_or_region`` (its string form if none is)."""
    wanted = _as_label_tuple(label_or_region)
    for name, value in label_dict.items():
        if name != "ignore" and _as_label_tuple(value) == wanted:
            return name
    return str(label_or_region)


def foreground_classes(label_manager: LabelManager) -> ClassList:
    """``[(name, label_or_region), ...]`` in nnU-Net's order: ``foreground_regions`` for region-based datasets,
    else ``foreground_labels``; names are the dataset.json ``labels`` keys."""
    classes = label_manager.foreground_regions if label_manager.has_regions else label_manager.foreground_labels
    return [(_class_name(label_manager.label_dict, c), c if isinstance(c, tuple) else int(c)) for c in classes]


def presence(segmentation: np.ndarray, classes: ClassList, axis: Optional[int] = None,
             ignore_label: Optional[int] = None) -> np.ndarray:
    """Which classes an exported label map contains.

    ``segmentation``: label map of any shape, e.g. (z, y, x) from SimpleITK; regions are matched through the label
    values nnU-Net exports for them (``regions_class_order``), so region (1, 2, 3) is present where any of 1, 2, 3 is.
    ``classes``: ``[(name, label_or_region), ...]`` as from ``foreground_classes``.
    Returns bool of shape (num_classes,) for ``axis=None``, else (segmentation.shape[axis], num_classes): one row per
    slice along ``axis`` (``AXIAL_AXIS`` = 0 for axial slices). Voxels equal to ``ignore_label`` never count.
    """
    counted = None if ignore_label is None else segmentation != ignore_label

    def class_mask(label_or_region):
        mask = region_or_label_to_mask(segmentation, label_or_region)
        return mask if counted is None else mask & counted

    if axis is None:
        return np.array([class_mask(c).any() for _, c in classes], dtype=bool)
    axis = axis % segmentation.ndim
    other_axes = tuple(a for a in range(segmentation.ndim) if a != axis)
    per_class = [class_mask(c).any(axis=other_axes) for _, c in classes]
    return np.array(per_class, dtype=bool).reshape(len(classes), segmentation.shape[axis]).T


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _confusion_scores(predicted: np.ndarray, reference: np.ndarray) -> dict:
    """Scores of one class; ``predicted``, ``reference``: bool (n_images,)."""
    tp = int(np.sum(predicted & reference))
    fp = int(np.sum(predicted & ~reference))
    fn = int(np.sum(~predicted & reference))
    tn = int(np.sum(~predicted & ~reference))
    return {"TP": tp, "FP": fp, "FN": fn, "TN": tn, "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
            "F1": _ratio(2 * tp, 2 * tp + fp + fn), "n_reference_positive": tp + fn}


def image_wise_scores(predicted: np.ndarray, reference: np.ndarray, class_names: Sequence[str]) -> dict:
    """Image-wise presence scores. ``predicted``, ``reference``: bool (n_images, n_classes), column i is
    ``class_names[i]``.

    Returns ``{"classes": {name: {"TP", "FP", "FN", "TN", "precision", "recall", "F1", "n_reference_positive"}},
    "mean": {"precision", "recall", "F1"}}``. precision = TP/(TP+FP), recall = TP/(TP+FN), F1 = 2TP/(2TP+FP+FN), each
    NaN when its denominator is 0; the means are NaN-ignoring means over classes.
    """
    predicted, reference = np.asarray(predicted, dtype=bool), np.asarray(reference, dtype=bool)
    if predicted.shape != reference.shape or predicted.ndim != 2 or predicted.shape[1] != len(class_names):
        raise ValueError(f"predicted {predicted.shape} and reference {reference.shape} must both be "
                         f"(n_images, {len(class_names)}) for classes {list(class_names)}")
    classes = {name: _confusion_scores(predicted[:, i], reference[:, i]) for i, name in enumerate(class_names)}
    mean = {score: _nanmean([classes[name][score] for name in class_names]) for score in SCORE_NAMES}
    return {"classes": classes, "mean": mean}


def threshold_description(label_manager: LabelManager) -> str:
    decision = ("sigmoid probability > 0.5 per region" if label_manager.has_regions
                else "argmax of the softmax probabilities")
    return (f"hard exported segmentation: a class is present when at least one voxel carries it (nnU-Net's decision "
            f"per voxel: {decision}); ignore-label voxels never count")


def read_segmentation(path: Union[str, Path]) -> np.ndarray:
    """Label map of an image file as a SimpleITK array, shape (z, y, x) for 3D images."""
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def paired_cases(prediction_folder: Union[str, Path], reference_folder: Union[str, Path],
                 file_ending: str) -> List[Tuple[str, Path, Path]]:
    """``[(case, prediction file, reference file), ...]`` for every ``*<file_ending>`` prediction, sorted by name.
    References without a prediction are left out (a validation fold predicts only its own cases)."""
    prediction_folder, reference_folder = Path(prediction_folder), Path(reference_folder)
    predictions = sorted(p for p in prediction_folder.glob(f"*{file_ending}") if p.is_file())
    if not predictions:
        raise FileNotFoundError(f"No predicted segmentations (*{file_ending}) in {prediction_folder}")
    pairs = []
    for prediction in predictions:
        reference = reference_folder / prediction.name
        if not reference.is_file():
            raise FileNotFoundError(f"The prediction {prediction.name} has no reference segmentation: {reference} "
                                    f"does not exist (reference folder {reference_folder})")
        pairs.append((prediction.name[:-len(file_ending)], prediction, reference))
    return pairs


def _nan_to_none(value):
    if isinstance(value, dict):
        return {key: _nan_to_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def write_json(content: dict, output_file: Union[str, Path]) -> None:
    """Writes ``content`` with NaN as null."""
    with open(output_file, "w", encoding="utf-8") as handle:
        json.dump(_nan_to_none(content), handle, indent=2, allow_nan=False)


def default_summary_file(prediction_folder: Union[str, Path], per_axial_slice: bool = False) -> Path:
    return Path(prediction_folder) / (SLICE_SUMMARY_FILE if per_axial_slice else CASE_SUMMARY_FILE)


def summarize_lesion_presence(prediction_folder: Union[str, Path], reference_folder: Union[str, Path],
                              dataset_json: dict, plans: Optional[dict] = None, per_axial_slice: bool = False,
                              output_file: Union[str, Path, None] = None) -> dict:
    """Scores image-wise presence of every foreground class (see ``image_wise_scores``) over the predicted cases, or
    over their axial slices with ``per_axial_slice``, and writes it as JSON (NaN as null) to ``output_file``, by
    default ``prediction_folder/lesion_presence_summary.json`` (``lesion_presence_per_slice_summary.json`` per
    slice), beside nnU-Net's ``summary.json``.

    Returns ``{"unit": "case" | "axial slice", "threshold", "classes", "mean", "n_images", "n_cases"}`` plus, per case,
    ``"per_case": {case: {class: [predicted, reference]}}``.
    """
    label_manager = label_manager_for(dataset_json, plans)
    classes = foreground_classes(label_manager)
    class_names = [name for name, _ in classes]
    axis = AXIAL_AXIS if per_axial_slice else None
    predicted_rows, reference_rows, per_case = [], [], {}
    cases = paired_cases(prediction_folder, reference_folder, dataset_json["file_ending"])
    for case, prediction_file, reference_file in cases:
        predicted_segmentation, reference_segmentation = (read_segmentation(prediction_file),
                                                          read_segmentation(reference_file))
        if per_axial_slice and predicted_segmentation.shape != reference_segmentation.shape:
            raise ValueError(f"{prediction_file} has shape {predicted_segmentation.shape} but its reference "
                             f"{reference_file} has {reference_segmentation.shape}: slices cannot be paired")
        predicted = presence(predicted_segmentation, classes, axis, label_manager.ignore_label)
        reference = presence(reference_segmentation, classes, axis, label_manager.ignore_label)
        predicted_rows.append(np.atleast_2d(predicted))
        reference_rows.append(np.atleast_2d(reference))
        if not per_axial_slice:
            per_case[case] = {name: [bool(p), bool(r)] for name, p, r in zip(class_names, predicted, reference)}

    predicted_matrix, reference_matrix = np.concatenate(predicted_rows), np.concatenate(reference_rows)
    scores = image_wise_scores(predicted_matrix, reference_matrix, class_names)
    summary = {"unit": "axial slice" if per_axial_slice else "case", "threshold": threshold_description(label_manager),
               "classes": scores["classes"], "mean": scores["mean"], "n_images": int(predicted_matrix.shape[0]),
               "n_cases": len(cases)}
    if not per_axial_slice:
        summary["per_case"] = per_case
    write_json(summary, output_file or default_summary_file(prediction_folder, per_axial_slice))
    return summary


def summary_line(summary: dict) -> str:
    """One line: mean image-wise F1, precision and recall of a ``summarize_lesion_presence`` result."""
    mean = summary["mean"]
    return (f"Image-wise lesion presence ({summary['n_images']} {summary['unit']}s): mean F1 {mean['F1']:.4f}, "
            f"precision {mean['precision']:.4f}, recall {mean['recall']:.4f}")
