"""Per-case diagnosis predictions as a CSV: what a user opens next to the predicted segmentations.

One row per case, columns::

    case_id, probability_<class 0 name>, ..., probability_<class C-1 name>, predicted_class, predicted_class_name

``predicted_class`` is the argmax of the row (binary: positive iff P(class 1) > 0.5), the same rule the metrics
use. Probabilities are written with full float precision (``repr``), so reading the file back gives the same numbers.
:func:`write_diagnosis_csv` writes exactly the ``path`` it is given (creating parent folders) and replaces a file
already there, atomically (a reader sees the old file or the new one, never half of one); choosing a path that does
not hold the user's own data is the caller's job.

The files of a prediction run (:func:`write_prediction_diagnoses`, called by ``DiagnosisPredictor``), in the output
folder:

* ``diagnosis_predictions.csv``: the cases of this run. An existing file is merged (its rows of cases not predicted
  again are kept) only with ``--continue_prediction`` (nnU-Net's ``overwrite=False``); otherwise it is replaced.
* ``diagnosis_predictions_settings.json``: what decided the probabilities (tile step, Gaussian, mirroring, tile
  pooling, folds, checkpoint, the aggregation rule; ``DiagnosisPredictor.diagnosis_settings``).
* Parallel parts (``-num_parts N -part_id k``) each write their own ``diagnosis_predictions_part<k>of<N>.csv`` and
  ``diagnosis_predictions_part<k>of<N>_settings.json`` (merged with that part's earlier file only when continuing).
  Once the files of all ``N`` parts are present, the part that finds them joins them, under an exclusive ``fcntl``
  lock on ``.diagnosis_predictions.lock`` in the output folder, into ``diagnosis_predictions.csv`` and its
  settings file; when continuing, the rows of an existing ``diagnosis_predictions.csv`` that no part holds are
  kept. So the last part to finish leaves every case. Until then, without ``--continue_prediction``, an earlier
  run's ``diagnosis_predictions.csv`` is removed (it is not this run's). Parts whose settings differ, or that hold
  the same case, are not joined (a warning names them): they come from different runs; the last part of this run
  to finish joins again. The part files are kept.

Every one of these files is written through ``nnunet_ext.core.owned_files``: replaced or removed only if we wrote it
and it is unchanged since (else an ``OutputFileConflictError`` names it and ``--overwrite_outputs``). The settings
hold ``model`` (trainer, plans, configuration, folder, folds, checkpoint) when the predictor knows its model folder;
continuing into a folder whose rows another model predicted is refused (:func:`check_same_model`).
``DiagnosisPredictor`` calls :func:`write_prediction_diagnoses` after every case, so an interrupted run keeps its
rows.
"""

import csv
import fcntl
import json
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from nnunet_ext.core.errors import OutputFileConflictError
from nnunet_ext.core.owned_files import check_may_replace, record_written, remove_ours
from nnunet_ext.diagnosis.metrics import checked_probabilities

DIAGNOSIS_CSV_NAME = "diagnosis_predictions.csv"
SETTINGS_FILE_NAME = "diagnosis_predictions_settings.json"
LOCK_FILE_NAME = ".diagnosis_predictions.lock"
OVERWRITE_FLAG = "--overwrite_outputs"  # nnunet_ext_predict's flag that lets us replace files we did not write
MODEL_KEY = "model"  # the settings' record of the model: trainer, plans, configuration, folder

CASE_ID_COLUMN = "case_id"
PROBABILITY_PREFIX = "probability_"
PREDICTED_CLASS_COLUMN = "predicted_class"
PREDICTED_NAME_COLUMN = "predicted_class_name"


def diagnosis_csv_header(class_names: Sequence[str]) -> List[str]:
    """The column names for ``class_names``."""
    return ([CASE_ID_COLUMN] + [PROBABILITY_PREFIX + name for name in class_names]
            + [PREDICTED_CLASS_COLUMN, PREDICTED_NAME_COLUMN])


def write_diagnosis_csv(path: Union[str, Path], case_ids: Sequence[str], probabilities,
                        class_names: Sequence[str]) -> Path:
    """Write one row per case of ``probabilities`` ``[N, C]`` (rows sum to one) to ``path``; returns ``path``."""
    probabilities, _ = checked_probabilities(probabilities)
    case_ids, class_names = [str(case_id) for case_id in case_ids], list(class_names)
    if len(case_ids) != probabilities.shape[0]:
        raise ValueError(f"{len(case_ids)} case ids for {probabilities.shape[0]} rows of probabilities")
    if len(set(case_ids)) != len(case_ids):
        raise ValueError("case ids must be distinct, one row per case")
    if len(class_names) != probabilities.shape[1] or len(set(class_names)) != len(class_names):
        raise ValueError(f"need {probabilities.shape[1]} distinct class names, got {class_names!r}")
    predicted = np.argmax(probabilities, axis=1)
    path = Path(path)
    with _replacing(path) as temporary:
        with temporary.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(diagnosis_csv_header(class_names))
            for case_id, row, index in zip(case_ids, probabilities, predicted):
                writer.writerow([case_id] + [repr(float(p)) for p in row] + [int(index), class_names[int(index)]])
    return path


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` (parent folders created) that replaces ``path`` when the block ends
    without an error (``os.replace``: atomic on one file system); removed otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def read_diagnosis_csv(path: Union[str, Path]) -> List[dict]:
    """The rows of a file written by :func:`write_diagnosis_csv`, in file order, each as ``{"case_id": str,
    "probabilities": {class name: float}, "predicted_class": int, "predicted_class_name": str}``."""
    path = Path(path)
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        class_names = [column[len(PROBABILITY_PREFIX):] for column in (header or [])[1:-2]]
        if header is None or header != diagnosis_csv_header(class_names) or len(class_names) < 2:
            raise ValueError(f"{path} is not a diagnosis predictions CSV: expected the header "
                             f"{diagnosis_csv_header(['<class 0>', '<class 1>', '...'])}, got {header}")
        rows = []
        for line_number, values in enumerate(reader, start=2):
            if len(values) != len(header):
                raise ValueError(f"{path}, line {line_number}: {len(values)} values for {len(header)} columns")
            rows.append({CASE_ID_COLUMN: values[0],
                         "probabilities": {name: float(value) for name, value in zip(class_names, values[1:-2])},
                         PREDICTED_CLASS_COLUMN: int(values[-2]), PREDICTED_NAME_COLUMN: values[-1]})
    return rows


def part_csv_name(part_id: int, num_parts: int) -> str:
    """The CSV of part ``part_id`` of ``num_parts`` (nnU-Net's ``-part_id``, ``-num_parts``)."""
    return f"diagnosis_predictions_part{part_id}of{num_parts}.csv"


def settings_file_name(csv_name: str) -> str:
    """The settings file beside a predictions CSV: ``<name>.csv`` -> ``<name>_settings.json``."""
    return f"{csv_name[:-len('.csv')] if csv_name.endswith('.csv') else csv_name}_settings.json"


def earlier_predictions(path: Union[str, Path], class_names: Sequence[str]) -> Dict[str, np.ndarray]:
    """The rows of an existing diagnosis CSV as case id -> ``[C]`` probabilities in the order of ``class_names``;
    {} when there is no file. A file that is not a diagnosis CSV, or holds other classes, gives {} with a warning
    (it is replaced, not merged)."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        rows = read_diagnosis_csv(path)
    except ValueError as error:
        warnings.warn(f"{path} is not read ({error}); it is replaced, not merged.", stacklevel=2)
        return {}
    names = list(class_names)
    if rows and list(rows[0]["probabilities"]) != names:
        warnings.warn(f"{path} holds the classes {list(rows[0]['probabilities'])}, not the model's {names}: it is "
                      f"replaced, not merged.", stacklevel=2)
        return {}
    return {row[CASE_ID_COLUMN]: np.array([row["probabilities"][name] for name in names]) for row in rows}


def write_case_probabilities(path: Union[str, Path], probabilities: Dict[str, np.ndarray],
                             class_names: Sequence[str]) -> Path:
    """:func:`write_diagnosis_csv` of case id -> ``[C]`` probabilities, rows sorted by case id."""
    case_ids = sorted(probabilities)
    return write_diagnosis_csv(path, case_ids, np.stack([probabilities[c] for c in case_ids]), class_names)


def write_json(path: Union[str, Path], content: dict) -> Path:
    """``content`` as strict, indented JSON at ``path``, replacing it atomically."""
    path = Path(path)
    with _replacing(path) as temporary:
        temporary.write_text(json.dumps(content, indent=2, allow_nan=False))
    return path


@contextmanager
def prediction_folder_lock(output_folder: Union[str, Path]) -> Iterator[None]:
    """An exclusive ``fcntl.flock`` on ``<output_folder>/.diagnosis_predictions.lock`` for the block (parallel parts
    of one prediction take turns; the lock file is left in place, as removing it would race)."""
    Path(output_folder).mkdir(parents=True, exist_ok=True)
    with open(Path(output_folder) / LOCK_FILE_NAME, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def write_prediction_diagnoses(output_folder: Union[str, Path], probabilities: Dict[str, np.ndarray],
                               class_names: Sequence[str], settings: dict, continuing: bool = False,
                               num_parts: int = 1, part_id: int = 0, overwrite_outputs: bool = False) -> Path:
    """Write this run's case id -> ``[C]`` probabilities and its ``settings`` into ``output_folder`` as the module
    docstring says; returns the CSV written (the part's file for a part). A file of ours that is there but was not
    written by us, or was changed since, is left alone with an :class:`OutputFileConflictError`
    (``nnunet_ext.core.owned_files``) unless ``overwrite_outputs``."""
    if num_parts < 1 or not 0 <= part_id < num_parts:
        raise ValueError(f"part_id {part_id} of num_parts {num_parts}: need num_parts >= 1 and 0 <= part_id < "
                         f"num_parts (nnUNetv2_predict -num_parts N -part_id 0..N-1)")
    folder = Path(output_folder)
    name = DIAGNOSIS_CSV_NAME if num_parts == 1 else part_csv_name(part_id, num_parts)
    path = folder / name
    with prediction_folder_lock(folder):
        for ours in (path, folder / settings_file_name(name)):
            check_may_replace(ours, OVERWRITE_FLAG, overwrite_outputs)
        if continuing:
            check_same_model(folder / settings_file_name(name), settings)
            _warn_if_settings_differ(folder / settings_file_name(name), settings)
            probabilities = {**earlier_predictions(path, class_names), **probabilities}
        record_written(write_case_probabilities(path, probabilities, class_names))
        record_written(write_json(folder / settings_file_name(name), settings))
        if num_parts > 1:
            _join_parts(folder, num_parts, class_names, continuing, overwrite_outputs)
    return path


def check_same_model(settings_path: Union[str, Path], settings: dict) -> None:
    """Refuse to continue into a folder whose earlier rows another model predicted (the ``model`` entries of the
    settings differ): its rows cannot be told apart from this model's."""
    settings_path = Path(settings_path)
    if MODEL_KEY not in settings or not settings_path.is_file():
        return
    try:
        earlier = json.loads(settings_path.read_text()).get(MODEL_KEY)
    except (ValueError, AttributeError):
        return
    if earlier is not None and earlier != settings[MODEL_KEY]:
        ours = settings[MODEL_KEY]
        differing = sorted(k for k in {*earlier, *ours} if earlier.get(k) != ours.get(k))
        before = ", ".join(f"{k}: {earlier.get(k)!r}" for k in differing)
        now = ", ".join(f"{k}: {ours.get(k)!r}" for k in differing)
        raise OutputFileConflictError(
            f"{settings_path.parent} holds diagnoses of another model ({before}; this run: {now}); continuing "
            f"would mix the two models' rows in one CSV.", file=settings_path,
            fix="predict into another output folder (-o), or without --continue_prediction to replace them")


def _warn_if_settings_differ(settings_path: Path, settings: dict) -> None:
    if not settings_path.is_file():
        return
    try:
        earlier = json.loads(settings_path.read_text())
    except ValueError:
        return
    differing = sorted(key for key in {*earlier, *settings} if earlier.get(key) != settings.get(key))
    if differing:
        warnings.warn(f"{settings_path}: the cases predicted before this continued run used other settings "
                      f"({', '.join(f'{k}: {earlier.get(k)!r} then {settings.get(k)!r}' for k in differing)}); "
                      f"their rows are kept as they were. Predict without --continue_prediction to use one setting "
                      f"for every case.", stacklevel=3)


def _join_parts(folder: Path, num_parts: int, class_names: Sequence[str], continuing: bool,
                overwrite_outputs: bool = False) -> Optional[Path]:
    """Join the part files into ``diagnosis_predictions.csv`` when all ``num_parts`` are present (caller holds the
    lock); returns the joined CSV, None when not (yet) joined."""
    parts = [folder / part_csv_name(part, num_parts) for part in range(num_parts)]
    joined_csv, joined_settings = folder / DIAGNOSIS_CSV_NAME, folder / SETTINGS_FILE_NAME
    if not all(part.is_file() for part in parts):
        if not continuing:  # an earlier run's result, not this run's
            for earlier in (joined_csv, joined_settings):
                remove_ours(earlier, OVERWRITE_FLAG, overwrite_outputs)
        return None
    settings = [json.loads((folder / settings_file_name(part.name)).read_text())
                if (folder / settings_file_name(part.name)).is_file() else None for part in parts]
    if any(s != settings[0] for s in settings):
        warnings.warn(f"{folder}: the part files {[p.name for p in parts]} were predicted with different settings "
                      f"(see their _settings.json files), so they come from different runs and are not joined into "
                      f"{DIAGNOSIS_CSV_NAME}; the last part of this run to finish joins them again.", stacklevel=3)
        return None
    joined = earlier_predictions(joined_csv, class_names) if continuing else {}
    owner: Dict[str, str] = {}
    for part in parts:
        rows = earlier_predictions(part, class_names)
        shared = sorted(set(rows) & set(owner))
        if shared:
            warnings.warn(f"{folder}: {part.name} and {owner[shared[0]]} both hold case {shared[0]!r} (parts of one "
                          f"run never share a case): they come from different runs and are not joined into "
                          f"{DIAGNOSIS_CSV_NAME}; the last part of this run to finish joins them again.", stacklevel=3)
            return None
        owner.update({case: part.name for case in rows})
        joined.update(rows)
    if not joined:
        return None
    for ours in (joined_csv, joined_settings):
        check_may_replace(ours, OVERWRITE_FLAG, overwrite_outputs)
    record_written(write_case_probabilities(joined_csv, joined, class_names))
    if settings[0] is not None:
        record_written(write_json(joined_settings, settings[0]))
    return joined_csv
