"""The diagnosis evaluation of a set of cases, written beside nnU-Net's segmentation ``summary.json``.

:func:`write_diagnosis_summary` puts three files into the output folder (e.g. a fold's ``validation`` folder):

* ``diagnosis_summary.json``: the metrics of :func:`nnunet_ext.diagnosis.metrics.diagnosis_metrics`, the class
  names, whether they are ordinal, the rule that turned a case's network outputs into one probability vector
  (``aggregation``, e.g. "mean of the patch probabilities"), the settings that produced the probabilities
  (``settings``: for the final validation the keys of ``DiagnosisPredictor.diagnosis_settings``: ``tile_step_size``,
  ``use_gaussian``, ``use_mirroring``, ``mirroring_axes``, ``diagnosis_from_mirrors``, ``tile_pooling``, ``folds``,
  ``checkpoint``, ``aggregation``; ``null`` when the caller gives none), and one row per case (case id, target,
  predicted class, probability of every class). Undefined metrics are ``null`` with their reason under
  ``metrics.undefined``; the file is strict JSON (no NaN).
* ``diagnosis_roc.png`` and ``diagnosis_confusion_matrix.png`` (:mod:`nnunet_ext.diagnosis.plots`).
"""

import json
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from nnunet_ext.diagnosis.labels import DiagnosisLabels
from nnunet_ext.diagnosis.metrics import checked_probabilities, diagnosis_metrics
from nnunet_ext.diagnosis.plots import save_confusion_matrix, save_roc_curve

SUMMARY_FILE_NAME = "diagnosis_summary.json"
ROC_FILE_NAME = "diagnosis_roc.png"
CONFUSION_MATRIX_FILE_NAME = "diagnosis_confusion_matrix.png"


def write_diagnosis_summary(output_folder: Union[str, Path], case_ids: Sequence[str], probabilities, targets,
                            labels: DiagnosisLabels, aggregation: str, settings: Optional[dict] = None) -> dict:
    """Evaluate ``probabilities`` ``[N, C]`` against ``targets`` ``[N]`` for the cases ``case_ids`` (in the same
    order), write the three files into ``output_folder`` and return the content of the JSON file. ``settings``
    (JSON-serialisable) is recorded as it is."""
    probabilities, targets = checked_probabilities(probabilities, targets)
    case_ids = [str(case_id) for case_id in case_ids]
    if len(case_ids) != len(targets):
        raise ValueError(f"{len(case_ids)} case ids for {len(targets)} cases")
    if len(set(case_ids)) != len(case_ids):
        raise ValueError("case ids must be distinct, one row per case")
    if not isinstance(aggregation, str) or not aggregation.strip():
        raise ValueError("aggregation must say, in words, how a case's probabilities were obtained")
    if settings is not None and not isinstance(settings, dict):
        raise ValueError(f"settings must be a dict of the prediction settings (or None), got {type(settings)}")
    if settings is not None:
        json.dumps(settings, allow_nan=False)  # refuse what the file could not hold before writing anything
    class_names = list(labels.classes)
    metrics = diagnosis_metrics(probabilities, targets, class_names, labels.ordinal)
    predicted = np.argmax(probabilities, axis=1)
    output_folder = Path(output_folder)
    output_folder.mkdir(parents=True, exist_ok=True)
    save_roc_curve(probabilities, targets, class_names, output_folder / ROC_FILE_NAME)
    save_confusion_matrix(probabilities, targets, class_names, output_folder / CONFUSION_MATRIX_FILE_NAME)
    summary = {
        "metrics": metrics,
        "class_names": class_names,
        "ordinal": bool(labels.ordinal),
        "aggregation": aggregation,
        "num_cases": len(case_ids),
        "settings": None if settings is None else dict(settings),
        "figures": {"roc": ROC_FILE_NAME, "confusion_matrix": CONFUSION_MATRIX_FILE_NAME},
        "cases": [{"case_id": case_id, "target": int(target), "target_name": class_names[int(target)],
                   "predicted": int(index), "predicted_name": class_names[int(index)],
                   "probabilities": {name: float(p) for name, p in zip(class_names, row)}}
                  for case_id, target, index, row in zip(case_ids, targets, predicted, probabilities)],
    }
    (output_folder / SUMMARY_FILE_NAME).write_text(json.dumps(summary, indent=2, allow_nan=False))
    return summary
