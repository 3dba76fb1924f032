"""Figures of a diagnosis evaluation: the ROC curve(s) and the confusion matrix, as PNG files.

Inputs as in :mod:`nnunet_ext.diagnosis.metrics`: ``probabilities`` ``[N, C]`` (rows sum to one) and ``targets``
``[N]`` (class indices). Figures are built with :class:`matplotlib.figure.Figure` and never touch pyplot, so
nothing depends on (or changes) the process's matplotlib backend and no window opens; PNGs are rendered by Agg.
"""

import textwrap
from pathlib import Path
from typing import Sequence, Union

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from nnunet_ext.diagnosis.metrics import checked_probabilities, one_vs_rest_auc, predicted_classes

DPI = 120


def _save(figure: Figure, path: Union[str, Path]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI)
    return path


def _checked_names(probabilities: np.ndarray, class_names: Sequence[str]) -> list:
    class_names = list(class_names)
    if len(class_names) != probabilities.shape[1]:
        raise ValueError(f"{len(class_names)} class names for probabilities of {probabilities.shape[1]} classes")
    return class_names


def roc_curve_figure(probabilities, targets, class_names: Sequence[str]) -> Figure:
    """The ROC figure (one axes).

    Binary: one curve of P(class 1) with the AUC in the legend. Multi-class: one one-vs-rest curve per class; a
    class without positive targets is named in the legend as undefined. With a single class among the targets no
    curve exists: the figure says that the AUC is undefined and why.
    """
    probabilities, targets = checked_probabilities(probabilities, targets)
    class_names = _checked_names(probabilities, class_names)
    figure = Figure(figsize=(5.5, 5.0))
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    binary = probabilities.shape[1] == 2
    curve_classes = [1] if binary else range(probabilities.shape[1])
    drawn = 0
    for index in curve_classes:
        auc, _ = one_vs_rest_auc(probabilities, targets, index, class_names)
        name = f"'{class_names[index]}'" + ("" if binary else " vs rest")
        if auc is None:
            axes.plot([], [], linestyle="none", label=f"{name}: AUC undefined")
            continue
        false_positive_rate, true_positive_rate, _ = roc_curve(targets == index, probabilities[:, index])
        axes.plot(false_positive_rate, true_positive_rate, linewidth=2, label=f"{name}: AUC = {auc:.3f}")
        drawn += 1
    if drawn == 0:
        _, reason = one_vs_rest_auc(probabilities, targets, int(targets[0]), class_names)
        axes.text(0.5, 0.5, "AUC undefined:\n" + textwrap.fill(reason, width=40), ha="center", va="center",
                  transform=axes.transAxes, bbox={"facecolor": "white", "edgecolor": "grey"})
    axes.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate (1 - specificity)",
             ylabel="true positive rate (sensitivity)", aspect="equal",
             title=f"ROC ({len(targets)} cases)" if binary else f"one-vs-rest ROC ({len(targets)} cases)")
    axes.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    return figure


def save_roc_curve(probabilities, targets, class_names: Sequence[str], path: Union[str, Path]) -> Path:
    """:func:`roc_curve_figure` as a PNG at ``path`` (parent folders are created); returns ``path``."""
    return _save(roc_curve_figure(probabilities, targets, class_names), path)


def confusion_matrix_figure(probabilities, targets, class_names: Sequence[str]) -> Figure:
    """The confusion matrix (rows: target class, columns: predicted class = argmax) with every count written in
    its cell and the class names on both axes (the first axes of the figure; the second is the colour bar)."""
    probabilities, targets = checked_probabilities(probabilities, targets)
    class_names = _checked_names(probabilities, class_names)
    num_classes = len(class_names)
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (targets, predicted_classes(probabilities)), 1)
    side = 3.0 + 0.7 * num_classes
    figure = Figure(figsize=(side + 1.0, side))
    axes = figure.add_subplot()
    image = axes.imshow(counts, cmap="Blues", vmin=0, vmax=max(int(counts.max()), 1))
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    threshold = counts.max() / 2.0
    for row in range(num_classes):
        for column in range(num_classes):
            value = int(counts[row, column])
            axes.text(column, row, str(value), ha="center", va="center",
                      color="white" if value > threshold else "black")
    ticks = list(range(num_classes))
    axes.set_xticks(ticks, labels=class_names, rotation=30, ha="right", rotation_mode="anchor")
    axes.set_yticks(ticks, labels=class_names)
    axes.set(xlabel="predicted class", ylabel="target class", title=f"confusion matrix ({len(targets)} cases)")
    figure.tight_layout()
    return figure


def save_confusion_matrix(probabilities, targets, class_names: Sequence[str], path: Union[str, Path]) -> Path:
    """:func:`confusion_matrix_figure` as a PNG at ``path`` (parent folders are created); returns ``path``."""
    return _save(confusion_matrix_figure(probabilities, targets, class_names), path)
