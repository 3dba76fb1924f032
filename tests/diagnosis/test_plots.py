"""ROC and confusion-matrix figures: valid PNGs, AUC in the legend, counts and class names on the matrix."""

import numpy as np
import pytest
from matplotlib.image import imread

from nnunet_ext.diagnosis.plots import (confusion_matrix_figure, roc_curve_figure, save_confusion_matrix,
                                        save_roc_curve)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BINARY = ["benign", "malignant"]
GRADES = ["none", "mild", "moderate"]


def binary_probabilities(p_positive):
    p_positive = np.asarray(p_positive, dtype=np.float64)
    return np.stack([1.0 - p_positive, p_positive], axis=1)


def assert_valid_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def legend_texts(figure):
    return [text.get_text() for text in figure.axes[0].get_legend().get_texts()]


def test_binary_roc_png_is_written_with_the_auc_in_the_legend(tmp_path):
    probabilities, targets = binary_probabilities([0.9, 0.4, 0.6, 0.1]), [1, 1, 0, 0]
    path = save_roc_curve(probabilities, targets, BINARY, tmp_path / "new" / "folder" / "roc.png")
    assert path == tmp_path / "new" / "folder" / "roc.png"
    assert_valid_png(path)
    assert "'malignant': AUC = 0.750" in legend_texts(roc_curve_figure(probabilities, targets, BINARY))


def test_multiclass_roc_has_one_curve_per_class_and_names_the_undefined_one(tmp_path):
    targets = [0, 0, 1, 1]  # 'moderate' never occurs
    probabilities = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]])
    legend = legend_texts(roc_curve_figure(probabilities, targets, GRADES))
    # 'mild' positives score 0.7, 0.2 against negatives 0.1, 0.6: 3 of 4 pairs ranked right
    assert "'none' vs rest: AUC = 1.000" in legend and "'mild' vs rest: AUC = 0.750" in legend
    assert "'moderate' vs rest: AUC undefined" in legend
    assert_valid_png(save_roc_curve(probabilities, targets, GRADES, tmp_path / "roc.png"))


@pytest.mark.parametrize("class_names, probabilities", [
    (BINARY, binary_probabilities([0.2, 0.7, 0.1])),
    (GRADES, np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.7, 0.2, 0.1]])),
])
def test_roc_with_a_single_class_says_auc_undefined(tmp_path, class_names, probabilities):
    targets = [0, 0, 0]
    figure = roc_curve_figure(probabilities, targets, class_names)
    texts = [" ".join(text.get_text().split()) for text in figure.axes[0].texts]
    assert len(texts) == 1
    assert texts[0].startswith("AUC undefined") and f"only class '{class_names[0]}'" in texts[0]
    assert_valid_png(save_roc_curve(probabilities, targets, class_names, tmp_path / "single.png"))


def test_confusion_matrix_annotates_counts_and_names_the_classes(tmp_path):
    targets, predicted = [0, 1, 2, 2, 2], [0, 2, 2, 1, 2]
    probabilities = 0.1 + 0.7 * np.eye(3)[predicted]
    figure = confusion_matrix_figure(probabilities, targets, GRADES)
    axes = figure.axes[0]
    cells = {(round(text.get_position()[1]), round(text.get_position()[0])): int(text.get_text())
             for text in axes.texts}
    expected = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 2]])  # rows = target, columns = predicted
    assert cells == {(row, column): int(expected[row, column]) for row in range(3) for column in range(3)}
    assert [label.get_text() for label in axes.get_xticklabels()] == GRADES
    assert [label.get_text() for label in axes.get_yticklabels()] == GRADES
    assert axes.get_xlabel() == "predicted class" and axes.get_ylabel() == "target class"
    path = save_confusion_matrix(probabilities, targets, GRADES, tmp_path / "deep" / "cm.png")
    assert path == tmp_path / "deep" / "cm.png"
    assert_valid_png(path)


def test_wrong_number_of_class_names_is_refused(tmp_path):
    with pytest.raises(ValueError, match="3 class names for probabilities of 2 classes"):
        save_confusion_matrix(binary_probabilities([0.2, 0.7]), [0, 1], GRADES, tmp_path / "cm.png")
