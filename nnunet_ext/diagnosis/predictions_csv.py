"""Per-case diagnosis predictions as a CSV: what a user opens next to the predicted segmentations.

One row per case, columns::

    case_id, probability_<class 0 name>, ..., probability_<class C-1 name>, predicted_class, predicted_class_name

``predicted_class`` is the argmax of the row (binary: positive iff P(class 1) > 0.5), the same rule the metrics
use. Probabilities are written with full float precision (``repr``), so reading the file back gives the same numbers.
:func:`write_diagnosis_csv` writes exactly the ``path`` it is given (creating parent folders) and replaces a file
already there; choosing a path that does not hold the user's own data is the caller's job.
"""

import csv
from pathlib import Path
from typing import List, Sequence, Union

import numpy as np

from nnunet_ext.diagnosis.metrics import checked_probabilities

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
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(diagnosis_csv_header(class_names))
        for case_id, row, index in zip(case_ids, probabilities, predicted):
            writer.writerow([case_id] + [repr(float(p)) for p in row] + [int(index), class_names[int(index)]])
    return path


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
