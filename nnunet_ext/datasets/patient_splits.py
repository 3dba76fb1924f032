"""Cross-validation folds by patient for datasets whose cases are slices of patients.

A case id of a sliced dataset is ``{patient}_z{index}``, e.g. ``pat0003_z070`` (axial slice 70 of patient pat0003);
``slice_case_id`` builds it and ``patient_of_case`` reads the patient back. Slices of one patient are strongly
correlated, so a validation fold must never hold a slice of a patient whose other slices are trained on.
nnU-Net's default split (5 random folds over case ids, in ``nnUNetTrainer.do_split``) does exactly that; it is
replaced by writing nnU-Net's own file before training::

    nnUNet_preprocessed/DatasetXXX_Name/splits_final.json   [{"train": [case ids], "val": [case ids]}, ...]

``do_split`` uses an existing ``splits_final.json`` as it is. The folder may be created before planning: planning
and preprocessing add files and sub-folders to it but do not delete it.
"""

from __future__ import annotations

import collections
import json
import os
import pathlib
import re
import tempfile
from typing import Iterable, Optional

SPLITS_FILE_NAME = "splits_final.json"
SLICE_CASE_ID_PATTERN = re.compile(r"(?P<patient>.+)_z(?P<slice>\d+)")
SLICE_INDEX_DIGITS = 3


def slice_case_id(patient: str, slice_index: int) -> str:
    """Case id of axial slice ``slice_index`` of ``patient``: ``{patient}_z{slice_index:03d}``."""
    if not patient or slice_index < 0:
        raise ValueError(f"need a non-empty patient id and a slice index >= 0, got {patient!r}, {slice_index}")
    return f"{patient}_z{slice_index:0{SLICE_INDEX_DIGITS}d}"


def patient_of_case(case_id: str) -> str:
    """The patient of a slice case id ``{patient}_z{index}`` (the part before the last ``_z``).

    Raises:
        ValueError: ``case_id`` does not end in ``_z`` followed by digits.
    """
    match = SLICE_CASE_ID_PATTERN.fullmatch(case_id)
    if match is None:
        raise ValueError(f"case id {case_id!r} does not name a patient's slice; expected '<patient>_z<slice index>', "
                         f"e.g. 'pat0003_z070'")
    return match.group("patient")


def cases_by_patient(case_ids: Iterable[str]) -> dict:
    """``{patient: sorted case ids}`` with patients in sorted order.

    Raises:
        ValueError: a case id is listed twice or names no patient.
    """
    case_ids = list(case_ids)
    duplicates = sorted(case_id for case_id, count in collections.Counter(case_ids).items() if count > 1)
    if duplicates:
        raise ValueError(f"case ids listed more than once: {duplicates[:5]}")
    grouped = {}
    for case_id in case_ids:
        grouped.setdefault(patient_of_case(case_id), []).append(case_id)
    return {patient: sorted(grouped[patient]) for patient in sorted(grouped)}


def patient_folds(case_ids: Iterable[str], num_folds: Optional[int] = None) -> list:
    """Cross-validation folds in which every patient's cases are validated together, in exactly one fold.

    With ``num_folds=None`` there is one fold per patient (leave one patient out), fold ``i`` validating the
    ``i``-th patient in sorted order. Otherwise patients are grouped into ``num_folds`` folds of about equal case
    counts: taken from most to fewest cases (ties by name), each goes to the fold with the fewest cases so far (ties:
    lowest fold); folds are then ordered by their alphabetically first patient. Deterministic, no randomness.

    Returns:
        nnU-Net's split list ``[{"train": [case ids], "val": [case ids]}, ...]``, ids sorted within each list.

    Raises:
        ValueError: no or duplicate case ids, an id naming no patient, fewer than two patients, or ``num_folds``
            outside 2..number of patients.
    """
    grouped = cases_by_patient(case_ids)
    if len(grouped) < 2:
        raise ValueError(f"a split by patient needs cases of at least two patients, got {list(grouped)}")
    if num_folds is None:
        num_folds = len(grouped)
    if not 2 <= num_folds <= len(grouped):
        raise ValueError(f"num_folds must be in 2..{len(grouped)} (the number of patients) so that every fold "
                         f"validates at least one patient, got {num_folds}")
    fold_patients = [[] for _ in range(num_folds)]
    fold_sizes = [0] * num_folds
    for patient in sorted(grouped, key=lambda p: (-len(grouped[p]), p)):
        fold = min(range(num_folds), key=lambda f: (fold_sizes[f], f))
        fold_patients[fold].append(patient)
        fold_sizes[fold] += len(grouped[patient])
    fold_patients.sort(key=min)
    splits = []
    for validated in fold_patients:
        splits.append({
            "train": sorted(c for p in grouped if p not in validated for c in grouped[p]),
            "val": sorted(c for p in validated for c in grouped[p]),
        })
    return splits


def _existing_splits(path: pathlib.Path):
    """Content of an existing splits file, or None when it is not valid JSON."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def write_patient_splits(preprocessed_dataset_folder, case_ids: Iterable[str], num_folds: Optional[int] = None,
                         overwrite: bool = False) -> pathlib.Path:
    """Write ``splits_final.json`` (``patient_folds(case_ids, num_folds)``) into nnU-Net's preprocessed folder.

    Args:
        preprocessed_dataset_folder: ``nnUNet_preprocessed/DatasetXXX_Name``; created if missing.
        case_ids: every training case id, ``{patient}_z{index}``.
        num_folds: ``None`` for leave one patient out, else 2..number of patients.
        overwrite: replace an existing file that holds a different split.

    Returns:
        The path of ``splits_final.json``. An existing file with the same split is left untouched.

    Raises:
        FileExistsError: the file exists with a different (or unreadable) content and ``overwrite`` is False.
        ValueError: see ``patient_folds``.
    """
    splits = patient_folds(case_ids, num_folds)
    folder = pathlib.Path(preprocessed_dataset_folder)
    path = folder / SPLITS_FILE_NAME
    if path.is_file():
        existing = _existing_splits(path)
        if existing == splits:
            return path
        if not overwrite:
            problem = "is not valid JSON" if existing is None else "holds a different split"
            raise FileExistsError(
                f"{path} {problem}; nnU-Net trains on whatever split that file defines. Pass overwrite=True "
                f"(--overwrite) to replace it with the split by patient, or delete it yourself.")
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{SPLITS_FILE_NAME}.", dir=folder)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(json.dumps(splits, indent=2) + "\n")
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path
