"""Per-case presence probability of every class, as a CSV beside the predicted segmentations.

Works for a model of any trainer once ``nnUNetv2_predict --save_probabilities`` has run (``nnunet_ext_predict`` does
that and then writes the CSV itself). nnU-Net saves, per case, ``<case>.npz`` with key ``probabilities`` of shape
(C, *spatial) in the original image space, and copies ``dataset.json`` and ``plans.json`` into the output folder.
A class's presence probability is the maximum of its probability map over all voxels. Channel c is
``label_manager.all_labels[c]`` for softmax datasets (the background channel is left out) and
``label_manager.foreground_regions[c]`` for region-based ones.

Command line::

    nnunet_ext_presence -i PREDICTION_FOLDER [-o CSV]
"""

import csv
import json
from pathlib import Path
from typing import List, Sequence, Tuple, Union

import numpy as np
from nnunetv2.utilities.label_handling.label_handling import LabelManager

from nnunet_ext.evaluation.lesion_presence import foreground_classes, label_manager_for

PROBABILITIES_KEY = "probabilities"
DEFAULT_CSV_NAME = "presence_probabilities.csv"
FIX_HINT = "run nnUNetv2_predict with --save_probabilities, or use nnunet_ext_predict"


def probability_channels(label_manager: LabelManager) -> List[Tuple[str, int]]:
    """``[(class name, channel of the probabilities array), ...]`` for every foreground class, in nnU-Net's order."""
    classes = foreground_classes(label_manager)
    if label_manager.has_regions:
        return [(name, channel) for channel, (name, _) in enumerate(classes)]
    return [(name, label_manager.all_labels.index(label)) for name, label in classes]


def presence_probabilities(probabilities: np.ndarray, channels: Sequence[int]) -> np.ndarray:
    """``probabilities``: (C, *spatial). Returns (len(channels),): the maximum over all voxels of each channel."""
    return np.array([probabilities[channel].max() for channel in channels], dtype=np.float64)


def probability_files(prediction_folder: Path) -> List[Path]:
    """The ``*.npz`` files of ``--save_probabilities``, sorted by name."""
    if not prediction_folder.is_dir():
        raise FileNotFoundError(f"The prediction folder {prediction_folder} does not exist")
    files = sorted(p for p in prediction_folder.glob("*.npz") if p.is_file())
    if not files:
        raise FileNotFoundError(f"No predicted probabilities (*.npz) in {prediction_folder}: {FIX_HINT}")
    return files


def _read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def prediction_label_manager(prediction_folder: Path) -> LabelManager:
    """The label manager of the model that predicted ``prediction_folder``, from the dataset.json (and plans.json,
    if present) that nnUNetv2_predict copies there."""
    dataset_file, plans_file = prediction_folder / "dataset.json", prediction_folder / "plans.json"
    if not dataset_file.is_file():
        raise FileNotFoundError(f"{dataset_file} is missing: class names and regions come from it. nnUNetv2_predict "
                                f"writes it into its output folder; for a folder assembled by hand, copy the model's "
                                f"dataset.json there")
    plans = _read_json(plans_file) if plans_file.is_file() else None
    return label_manager_for(_read_json(dataset_file), plans)


def load_probabilities(npz_file: Path, expected_channels: int) -> np.ndarray:
    """The (C, *spatial) ``probabilities`` array of one case; C must be ``expected_channels``."""
    with np.load(npz_file) as archive:
        if PROBABILITIES_KEY not in archive.files:
            raise KeyError(f"{npz_file} holds no '{PROBABILITIES_KEY}' array (keys: {archive.files}); is it an "
                           f"nnU-Net --save_probabilities export?")
        probabilities = archive[PROBABILITIES_KEY]
    if probabilities.shape[0] != expected_channels:
        raise ValueError(f"{npz_file} has {probabilities.shape[0]} channels but the dataset.json beside it implies "
                         f"{expected_channels}")
    return probabilities


def write_presence_probabilities_csv(prediction_folder: Union[str, Path],
                                     output_csv: Union[str, Path, None] = None) -> Path:
    """Writes ``case,<class 1>,<class 2>,...`` with one row per ``*.npz`` case (probabilities to 4 decimals) to
    ``output_csv``, by default ``prediction_folder/presence_probabilities.csv``, and returns its path. Writes
    nothing else; ``output_csv`` must end with ``.csv``."""
    prediction_folder = Path(prediction_folder)
    output_csv = Path(output_csv) if output_csv is not None else prediction_folder / DEFAULT_CSV_NAME
    if output_csv.suffix.lower() != ".csv":
        raise ValueError(f"The output {output_csv} must be a .csv file")
    npz_files = probability_files(prediction_folder)
    label_manager = prediction_label_manager(prediction_folder)
    names_and_channels = probability_channels(label_manager)
    channels = [channel for _, channel in names_and_channels]
    rows = []
    for npz_file in npz_files:
        probabilities = load_probabilities(npz_file, label_manager.num_segmentation_heads)
        rows.append([npz_file.stem, *(f"{p:.4f}" for p in presence_probabilities(probabilities, channels))])
    with open(output_csv, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case", *(name for name, _ in names_and_channels)])
        writer.writerows(rows)
    return output_csv
