"""The diagnosis summary: strict JSON with metrics, classes, ordinality, aggregation rule and per-case rows, plus
the ROC and confusion-matrix PNGs, in the output folder."""

import json
from pathlib import Path

import numpy as np
import pytest

from nnunet_ext.diagnosis.labels import DiagnosisLabels
from nnunet_ext.diagnosis.summary import write_diagnosis_summary

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
AGGREGATION = "mean of the sliding-window patch probabilities"


def make_labels(classes, ordinal, case_ids, targets):
    return DiagnosisLabels(classes=list(classes), ordinal=ordinal, labels=dict(zip(case_ids, targets)),
                           source=Path("diagnosis_labels.json"))


def test_binary_summary_files_and_content(tmp_path):
    case_ids, targets = ["case_000", "case_001", "case_002", "case_003"], [1, 1, 0, 0]
    p_positive = np.array([0.9, 0.4, 0.6, 0.1])
    probabilities = np.stack([1 - p_positive, p_positive], axis=1)
    labels = make_labels(["benign", "malignant"], False, case_ids, targets)
    output = tmp_path / "fold_0" / "validation"
    summary = write_diagnosis_summary(output, case_ids, probabilities, targets, labels, AGGREGATION)

    on_disk = json.loads((output / "diagnosis_summary.json").read_text())
    assert on_disk == summary
    for name in ("diagnosis_roc.png", "diagnosis_confusion_matrix.png"):
        assert (output / name).read_bytes()[:8] == PNG_SIGNATURE
    assert summary["class_names"] == ["benign", "malignant"] and summary["ordinal"] is False
    assert summary["aggregation"] == AGGREGATION and summary["num_cases"] == 4
    metrics = summary["metrics"]
    assert metrics["AUC"] == pytest.approx(0.75)
    assert (metrics["TP"], metrics["FN"], metrics["TN"], metrics["FP"]) == (1, 1, 1, 1)
    assert summary["cases"][1] == {"case_id": "case_001", "target": 1, "target_name": "malignant", "predicted": 0,
                                   "predicted_name": "benign",
                                   "probabilities": {"benign": pytest.approx(0.6), "malignant": pytest.approx(0.4)}}


def test_multiclass_summary_reports_kappa_and_ordinality(tmp_path):
    grades = ["none", "mild", "moderate"]
    case_ids, targets, predicted = ["a", "b", "c", "d"], [0, 1, 2, 2], [0, 2, 2, 1]
    probabilities = 0.1 + 0.7 * np.eye(3)[predicted]
    summary = write_diagnosis_summary(tmp_path, case_ids, probabilities, targets,
                                      make_labels(grades, True, case_ids, targets), AGGREGATION)
    assert summary["ordinal"] is True and summary["metrics"]["ordinal"] is True
    assert summary["metrics"]["quadratic_weighted_kappa"] == pytest.approx(7 / 11)
    assert [case["predicted_name"] for case in summary["cases"]] == ["none", "moderate", "moderate", "mild"]


def test_single_class_summary_is_strict_json_with_null_auc(tmp_path):
    case_ids, targets = ["a", "b"], [0, 0]
    probabilities = np.array([[0.8, 0.2], [0.3, 0.7]])
    summary = write_diagnosis_summary(tmp_path, case_ids, probabilities, targets,
                                      make_labels(["benign", "malignant"], False, ["a", "b", "c"], [0, 0, 1]),
                                      AGGREGATION)
    text = (tmp_path / "diagnosis_summary.json").read_text()
    assert "NaN" not in text and json.loads(text)["metrics"]["AUC"] is None
    assert "only class 'benign'" in summary["metrics"]["undefined"]["AUC"]
    assert (tmp_path / "diagnosis_roc.png").read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.parametrize("case_ids, aggregation, message", [
    (["a"], AGGREGATION, "1 case ids for 2 cases"),
    (["a", "a"], AGGREGATION, "distinct"),
    (["a", "b"], " ", "aggregation must say"),
])
def test_inconsistent_inputs_are_refused_before_writing(tmp_path, case_ids, aggregation, message):
    labels = make_labels(["benign", "malignant"], False, ["a", "b"], [0, 1])
    with pytest.raises(ValueError, match=message):
        write_diagnosis_summary(tmp_path / "out", case_ids, np.array([[0.8, 0.2], [0.3, 0.7]]), [0, 1], labels,
                                aggregation)
    assert not (tmp_path / "out").exists()


def test_the_settings_that_produced_the_probabilities_are_recorded(tmp_path):
    labels = make_labels(["benign", "malignant"], False, ["a", "b"], [0, 1])
    settings = {"tile_step_size": 0.5, "use_gaussian": True, "use_mirroring": True, "mirroring_axes": [0, 1],
                "diagnosis_from_mirrors": False, "tile_pooling": "max", "folds": [0],
                "checkpoint": "checkpoint_final.pth", "aggregation": AGGREGATION}
    summary = write_diagnosis_summary(tmp_path, ["a", "b"], np.array([[0.8, 0.2], [0.3, 0.7]]), [0, 1], labels,
                                      AGGREGATION, settings=settings)
    assert json.loads((tmp_path / "diagnosis_summary.json").read_text())["settings"] == settings == summary["settings"]
    without = write_diagnosis_summary(tmp_path / "old_call", ["a", "b"], np.array([[0.8, 0.2], [0.3, 0.7]]), [0, 1],
                                      labels, AGGREGATION)  # the signature before settings existed
    assert without["settings"] is None
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        write_diagnosis_summary(tmp_path / "nan", ["a", "b"], np.array([[0.8, 0.2], [0.3, 0.7]]), [0, 1], labels,
                                AGGREGATION, settings={"tile_step_size": float("nan")})
    assert not (tmp_path / "nan").exists()
