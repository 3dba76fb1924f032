"""Diagnosis metrics over cases: what the papers report, from per-case class probabilities.

Inputs throughout: ``probabilities`` float ``[N, C]`` (rows sum to one, ``C`` = number of classes; for binary
column 1 is P(class 1), the positive class) and ``targets`` int ``[N]`` (class indices).

* Binary (SeATrans, Table 1): ACC, SPE (specificity), SEN (sensitivity) and AUC, with the counts TP/FP/TN/FN.
* Multi-class (SiAN, Sec. 4.2.3): accuracy, macro F1 and the quadratic weighted kappa (QWK), which is reported for
  every multi-class task; the summary says whether the classes are ordinal, since only then do the quadratic
  weights (squared distance of class indices) mean something clinically.

Readings chosen where the papers leave it open:

* The predicted class is the argmax of a row. For binary that is the threshold 0.5: positive iff P(1) > 0.5; an
  exact tie goes to class 0 (argmax takes the first maximum).
* A metric whose denominator is empty is not a number: SEN with no positive targets, SPE with no negative ones,
  AUC with a single class among the targets, QWK when targets and predictions all fall into one class (the
  expected disagreement is 0). Such a metric is ``None`` (JSON null) and ``metrics["undefined"]`` gives the reason;
  nothing raises.
* Macro F1 averages the per-class F1 = 2TP / (2TP + FP + FN) over the classes that occur among the targets or the
  predictions; a declared class that occurs in neither has 0/0 and is left out of the mean instead of counting as
  0 or 1.
"""

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy.special import expit, softmax
from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score, roc_auc_score

ROW_SUM_TOLERANCE = 1e-4


def checked_probabilities(probabilities, targets=None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """``probabilities`` ``[N, C]`` as float64 and ``targets`` ``[N]`` as int64, after checking shapes, the row
    sums (within ``ROW_SUM_TOLERANCE``) and that every target is a class index. ``targets`` may be None."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] < 1 or probabilities.shape[1] < 2:
        raise ValueError(f"probabilities must have shape [N >= 1, num_classes >= 2], got {probabilities.shape}")
    if not np.all(np.isfinite(probabilities)) or probabilities.min() < 0 or probabilities.max() > 1:
        raise ValueError("probabilities must be finite and within [0, 1]")
    row_sums = probabilities.sum(axis=1)
    if not np.allclose(row_sums, 1.0, rtol=0.0, atol=ROW_SUM_TOLERANCE):
        worst = int(np.argmax(np.abs(row_sums - 1.0)))
        raise ValueError(f"every row of probabilities must sum to one; row {worst} sums to {row_sums[worst]!r} "
                         f"(use probabilities_from_logits on raw network outputs)")
    if targets is None:
        return probabilities, None
    raw_targets = np.asarray(targets)
    if raw_targets.shape != (probabilities.shape[0],):
        raise ValueError(f"targets must have shape [N] = ({probabilities.shape[0]},), got {raw_targets.shape}")
    if raw_targets.dtype.kind not in "iub":
        raise ValueError(f"targets must be integer class indices, got dtype {raw_targets.dtype}")
    targets = raw_targets.astype(np.int64)
    if targets.min() < 0 or targets.max() >= probabilities.shape[1]:
        raise ValueError(f"targets must be class indices in 0..{probabilities.shape[1] - 1}, got values "
                         f"{sorted(set(targets.tolist()))}")
    return probabilities, targets


def predicted_classes(probabilities) -> np.ndarray:
    """``[N, C]`` -> ``[N]`` int64: the argmax of each row (binary: positive iff P(1) > 0.5)."""
    probabilities, _ = checked_probabilities(probabilities)
    return np.argmax(probabilities, axis=1).astype(np.int64)


def probabilities_from_logits(logits) -> np.ndarray:
    """Network outputs ``[N, num_outputs]`` (numpy or torch) -> class probabilities ``[N, num_classes]`` float64.

    One output (the binary BCE head, see ``num_diagnosis_outputs``): p = sigmoid(z), rows ``[1 - p, p]``, computed
    as ``[sigmoid(-z), sigmoid(z)]`` so that a large negative logit keeps its precision. More outputs: softmax.
    """
    if hasattr(logits, "detach"):
        logits = logits.detach().cpu().double().numpy()
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] < 1:
        raise ValueError(f"logits must have shape [N, num_outputs >= 1], got {logits.shape}")
    if logits.shape[1] == 1:
        return np.concatenate([expit(-logits), expit(logits)], axis=1)
    return softmax(logits, axis=1)


def _single_class_reason(targets: np.ndarray, class_names: Sequence[str]) -> str:
    return (f"only class '{class_names[int(targets[0])]}' occurs among the {len(targets)} target(s), so there is no "
            f"pair of cases of different classes to rank")


def one_vs_rest_auc(probabilities: np.ndarray, targets: np.ndarray, class_index: int,
                    class_names: Sequence[str]) -> Tuple[Optional[float], Optional[str]]:
    """AUC of ``probabilities[:, class_index]`` for "class ``class_index``" against all others, or ``(None,
    reason)`` when the targets hold only positives or only negatives of that class."""
    positives = targets == class_index
    if len(set(targets.tolist())) == 1:
        return None, _single_class_reason(targets, class_names)
    if not positives.any():
        return None, f"no target is of class '{class_names[class_index]}', so it has no positives to rank"
    return float(roc_auc_score(positives, probabilities[:, class_index])), None


def _ratio(numerator: int, denominator: int) -> Optional[float]:
    return numerator / denominator if denominator else None


def _binary_metrics(probabilities, targets, predicted, class_names) -> dict:
    positive, negative = targets == 1, targets == 0
    tp, fn = int(np.sum(predicted[positive] == 1)), int(np.sum(predicted[positive] == 0))
    tn, fp = int(np.sum(predicted[negative] == 0)), int(np.sum(predicted[negative] == 1))
    undefined: Dict[str, str] = {}
    sensitivity, specificity = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    if sensitivity is None:
        undefined["SEN"] = f"no target of the positive class '{class_names[1]}' (TP + FN = 0)"
    if specificity is None:
        undefined["SPE"] = f"no target of the negative class '{class_names[0]}' (TN + FP = 0)"
    auc, reason = one_vs_rest_auc(probabilities, targets, 1, class_names)
    if reason is not None:
        undefined["AUC"] = reason
    return {"task": "binary", "positive_class": class_names[1], "n": int(len(targets)),
            "ACC": (tp + tn) / len(targets), "SPE": specificity, "SEN": sensitivity, "AUC": auc,
            "TP": tp, "FP": fp, "TN": tn, "FN": fn, "undefined": undefined}


def _multiclass_metrics(probabilities, targets, predicted, class_names, ordinal: bool) -> dict:
    num_classes = probabilities.shape[1]
    undefined: Dict[str, str] = {}
    occurring = sorted(set(targets.tolist()) | set(predicted.tolist()))
    if len(occurring) == 1:
        kappa = None
        undefined["quadratic_weighted_kappa"] = (
            f"targets and predictions are all class '{class_names[occurring[0]]}': the expected disagreement is 0")
    else:
        kappa = float(cohen_kappa_score(targets, predicted, weights="quadratic", labels=list(range(num_classes))))
    macro_f1 = float(f1_score(targets, predicted, labels=occurring, average="macro"))
    counts = confusion_matrix(targets, predicted, labels=list(range(num_classes)))
    per_class = []
    for index, name in enumerate(class_names):
        auc, reason = one_vs_rest_auc(probabilities, targets, index, class_names)
        if reason is not None:
            undefined[f"AUC_one_vs_rest[{name}]"] = reason
        per_class.append({"class": name, "index": index, "n_targets": int(counts[index].sum()),
                          "n_predicted": int(counts[:, index].sum()), "n_correct": int(counts[index, index]),
                          "AUC_one_vs_rest": auc})
    kappa_note = ("the classes are ordinal grades: the quadratic weights penalise a prediction by its squared "
                  "distance in grades" if ordinal else
                  "the classes are not ordinal: the quadratic weights treat the class indices as if ordered, so "
                  "read the kappa with care and prefer accuracy and macro F1")
    return {"task": "multi-class", "n": int(len(targets)), "accuracy": float(np.mean(predicted == targets)),
            "macro_F1": macro_f1, "macro_F1_classes": [class_names[i] for i in occurring],
            "quadratic_weighted_kappa": kappa, "ordinal": bool(ordinal), "kappa_note": kappa_note,
            "per_class": per_class, "undefined": undefined}


def diagnosis_metrics(probabilities, targets, class_names: Sequence[str], ordinal: bool) -> dict:
    """Metrics of ``probabilities`` ``[N, C]`` against ``targets`` ``[N]`` (see the module docstring).

    Binary (C = 2): ``ACC, SPE, SEN, AUC, TP, FP, TN, FN, n, positive_class``. Multi-class: ``accuracy,
    macro_F1, quadratic_weighted_kappa, ordinal, kappa_note, per_class`` (counts of targets, predictions and
    correct ones, and the one-vs-rest AUC per class). Both: ``task``, ``confusion_matrix`` (rows = target class,
    columns = predicted class) and ``undefined`` ({metric: reason} for every metric that is ``None``). All values
    are plain Python numbers, lists and strings (JSON-ready).
    """
    probabilities, targets = checked_probabilities(probabilities, targets)
    class_names = list(class_names)
    if len(class_names) != probabilities.shape[1]:
        raise ValueError(f"{len(class_names)} class names for probabilities of {probabilities.shape[1]} classes")
    predicted = np.argmax(probabilities, axis=1)
    if probabilities.shape[1] == 2:
        metrics = _binary_metrics(probabilities, targets, predicted, class_names)
    else:
        metrics = _multiclass_metrics(probabilities, targets, predicted, class_names, ordinal)
    labels = list(range(probabilities.shape[1]))
    metrics["confusion_matrix"] = confusion_matrix(targets, predicted, labels=labels).tolist()
    return metrics


def epoch_score(probabilities, targets) -> Tuple[str, float]:
    """The one number logged per epoch: ``("val_diagnosis_auc", AUC)`` for binary, ``("val_diagnosis_kappa",
    QWK)`` for multi-class; the value is ``nan`` when undefined (see the module docstring)."""
    probabilities, targets = checked_probabilities(probabilities, targets)
    class_names: List[str] = [str(index) for index in range(probabilities.shape[1])]
    metrics = diagnosis_metrics(probabilities, targets, class_names, ordinal=True)
    if metrics["task"] == "binary":
        name, value = "val_diagnosis_auc", metrics["AUC"]
    else:
        name, value = "val_diagnosis_kappa", metrics["quadratic_weighted_kappa"]
    return name, math.nan if value is None else float(value)
