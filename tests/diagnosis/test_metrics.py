"""Diagnosis metrics against hand-computed values (SeATrans Table 1: ACC/SPE/SEN/AUC; SiAN: quadratic kappa)."""

import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import cohen_kappa_score

from nnunet_ext.diagnosis.metrics import (diagnosis_metrics, epoch_score, predicted_classes,
                                          probabilities_from_logits)

BINARY = ["benign", "malignant"]
GRADES = ["none", "mild", "moderate"]


def binary_probabilities(p_positive):
    p_positive = np.asarray(p_positive, dtype=np.float64)
    return np.stack([1.0 - p_positive, p_positive], axis=1)


def one_hot(indices, num_classes):
    return np.eye(num_classes)[np.asarray(indices)]


def test_binary_counts_sensitivity_specificity_accuracy():
    # 4 positives (3 found, 1 missed), 6 negatives (5 rejected, 1 false alarm)
    targets = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    p_positive = [0.9, 0.8, 0.7, 0.2, 0.1, 0.1, 0.3, 0.4, 0.2, 0.6]
    metrics = diagnosis_metrics(binary_probabilities(p_positive), targets, BINARY, ordinal=False)
    assert (metrics["TP"], metrics["FN"], metrics["TN"], metrics["FP"], metrics["n"]) == (3, 1, 5, 1, 10)
    assert metrics["SEN"] == pytest.approx(3 / 4)
    assert metrics["SPE"] == pytest.approx(5 / 6)
    assert metrics["ACC"] == pytest.approx(8 / 10)
    assert metrics["confusion_matrix"] == [[5, 1], [1, 3]]
    assert metrics["positive_class"] == "malignant" and metrics["undefined"] == {}


@pytest.mark.parametrize("p_positive, expected_auc", [
    ([0.9, 0.8, 0.3, 0.1], 1.0),    # every positive ranked above every negative
    ([0.1, 0.3, 0.8, 0.9], 0.0),    # reversed ranking
    ([0.9, 0.4, 0.6, 0.1], 0.75),   # pairs (pos, neg): 0.9>0.6, 0.9>0.1, 0.4<0.6, 0.4>0.1 -> 3 of 4
])
def test_binary_auc_is_the_fraction_of_correctly_ranked_pairs(p_positive, expected_auc):
    metrics = diagnosis_metrics(binary_probabilities(p_positive), [1, 1, 0, 0], BINARY, ordinal=False)
    assert metrics["AUC"] == pytest.approx(expected_auc)


def test_binary_threshold_is_one_half_and_a_tie_is_negative():
    probabilities = binary_probabilities([0.5, 0.5000001, 0.4999999])
    assert predicted_classes(probabilities).tolist() == [0, 1, 0]


def test_single_class_makes_auc_and_sensitivity_undefined_without_crashing():
    metrics = diagnosis_metrics(binary_probabilities([0.2, 0.7, 0.1]), [0, 0, 0], BINARY, ordinal=False)
    assert metrics["AUC"] is None and metrics["SEN"] is None
    assert "only class 'benign'" in metrics["undefined"]["AUC"]
    assert "positive class 'malignant'" in metrics["undefined"]["SEN"]
    assert metrics["SPE"] == pytest.approx(2 / 3) and metrics["ACC"] == pytest.approx(2 / 3)
    assert json.loads(json.dumps(metrics, allow_nan=False))["AUC"] is None
    name, value = epoch_score(binary_probabilities([0.2, 0.7, 0.1]), [0, 0, 0])
    assert name == "val_diagnosis_auc" and math.isnan(value)


def test_multiclass_perfect_prediction_has_kappa_one():
    targets = [0, 1, 2, 2, 1]
    metrics = diagnosis_metrics(one_hot(targets, 3), targets, GRADES, ordinal=True)
    assert metrics["quadratic_weighted_kappa"] == pytest.approx(1.0)
    assert metrics["accuracy"] == 1.0 and metrics["macro_F1"] == pytest.approx(1.0)
    assert epoch_score(one_hot(targets, 3), targets) == ("val_diagnosis_kappa", pytest.approx(1.0))


def test_multiclass_kappa_matches_hand_computation_and_sklearn():
    # weights (i-j)^2/4; observed sum 2*(1/4) = 8/16; expected (1/16)*(1+8+1+2+8+2) = 22/16 -> 1 - 8/22 = 7/11
    targets, predicted = [0, 1, 2, 2], [0, 2, 2, 1]
    probabilities = 0.1 + 0.7 * one_hot(predicted, 3)
    metrics = diagnosis_metrics(probabilities, targets, GRADES, ordinal=True)
    assert metrics["quadratic_weighted_kappa"] == pytest.approx(7 / 11)
    assert metrics["quadratic_weighted_kappa"] == pytest.approx(
        cohen_kappa_score(targets, predicted, weights="quadratic"))
    assert metrics["accuracy"] == pytest.approx(0.5)
    counts = {row["class"]: (row["n_targets"], row["n_predicted"], row["n_correct"]) for row in metrics["per_class"]}
    assert counts == {"none": (1, 1, 1), "mild": (1, 1, 0), "moderate": (2, 2, 1)}
    assert metrics["confusion_matrix"] == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]


def test_quadratic_kappa_punishes_a_two_grade_error_more_than_a_one_grade_error():
    targets = [0, 0, 1, 1, 2, 2]
    near, far = [0, 1, 1, 1, 2, 2], [0, 2, 1, 1, 2, 2]
    kappa_near = diagnosis_metrics(one_hot(near, 3), targets, GRADES, ordinal=True)["quadratic_weighted_kappa"]
    kappa_far = diagnosis_metrics(one_hot(far, 3), targets, GRADES, ordinal=True)["quadratic_weighted_kappa"]
    assert kappa_far < kappa_near < 1.0


@pytest.mark.parametrize("ordinal, phrase", [(True, "are ordinal"), (False, "not ordinal")])
def test_kappa_is_reported_for_nominal_classes_too_and_says_which(ordinal, phrase):
    targets = [0, 1, 2]
    metrics = diagnosis_metrics(one_hot([0, 1, 1], 3), targets, GRADES, ordinal=ordinal)
    assert metrics["quadratic_weighted_kappa"] is not None and metrics["ordinal"] is ordinal
    assert phrase in metrics["kappa_note"]


def test_macro_f1_leaves_out_classes_absent_from_targets_and_predictions():
    targets = [0, 1, 0, 1]
    metrics = diagnosis_metrics(one_hot(targets, 3), targets, GRADES, ordinal=True)
    assert metrics["macro_F1"] == pytest.approx(1.0) and metrics["macro_F1_classes"] == ["none", "mild"]
    assert "AUC_one_vs_rest[moderate]" in metrics["undefined"]


def test_multiclass_kappa_undefined_when_everything_is_one_class():
    metrics = diagnosis_metrics(one_hot([2, 2], 3), [2, 2], GRADES, ordinal=True)
    assert metrics["quadratic_weighted_kappa"] is None
    assert "expected disagreement is 0" in metrics["undefined"]["quadratic_weighted_kappa"]
    name, value = epoch_score(one_hot([2, 2], 3), [2, 2])
    assert name == "val_diagnosis_kappa" and math.isnan(value)


def test_binary_epoch_score_is_the_auc():
    assert epoch_score(binary_probabilities([0.9, 0.4, 0.6, 0.1]), [1, 1, 0, 0]) == (
        "val_diagnosis_auc", pytest.approx(0.75))


@pytest.mark.parametrize("probabilities, targets, message", [
    (np.array([[0.7, 0.7]]), [0], "sum to one"),
    (np.array([[0.3, 0.7]]), [2], "class indices in 0..1"),
    (np.array([[0.3, 0.7]]), [0.0], "integer class indices"),
    (np.array([0.3, 0.7]), [0], r"shape \[N >= 1, num_classes >= 2\]"),
])
def test_bad_inputs_are_refused(probabilities, targets, message):
    with pytest.raises(ValueError, match=message):
        diagnosis_metrics(probabilities, targets, BINARY, ordinal=False)


@pytest.mark.parametrize("as_torch", [False, True])
def test_one_logit_gives_sigmoid_rows_that_sum_to_one(as_torch):
    torch.manual_seed(0)
    logits = torch.randn(6, 1) * 5
    logits[0, 0] = -40.0
    probabilities = probabilities_from_logits(logits if as_torch else logits.numpy())
    assert probabilities.shape == (6, 2) and probabilities.dtype == np.float64
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(probabilities[:, 1], torch.sigmoid(logits.double())[:, 0].numpy(), rtol=1e-12)
    assert probabilities[0, 1] > 0.0  # a large negative logit keeps its (tiny) positive probability


@pytest.mark.parametrize("as_torch", [False, True])
def test_three_logits_give_softmax_rows_that_sum_to_one(as_torch):
    torch.manual_seed(0)
    logits = torch.randn(5, 3, requires_grad=True) * 3
    probabilities = probabilities_from_logits(logits if as_torch else logits.detach().numpy())
    assert probabilities.shape == (5, 3) and probabilities.dtype == np.float64
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(probabilities, torch.softmax(logits.detach().double(), dim=1).numpy(), rtol=1e-12)
