"""The per-case diagnosis CSV: one row per case, class names in the header, probabilities that sum to one."""

import csv

import numpy as np
import pytest

from nnunet_ext.diagnosis.metrics import probabilities_from_logits
from nnunet_ext.diagnosis.predictions_csv import read_diagnosis_csv, write_diagnosis_csv

GRADES = ["no DR", "mild, non-proliferative", "proliferative"]  # a comma inside a name must survive


def test_one_row_per_case_with_class_names_in_the_header(tmp_path):
    rng = np.random.default_rng(0)
    probabilities = probabilities_from_logits(rng.normal(size=(5, 3)) * 3)
    case_ids = [f"case_{i:03d}" for i in range(5)]
    path = write_diagnosis_csv(tmp_path / "predictions" / "diagnosis.csv", case_ids, probabilities, GRADES)
    assert path == tmp_path / "predictions" / "diagnosis.csv"

    with path.open(newline="") as handle:
        header = next(csv.reader(handle))
    assert header == ["case_id"] + [f"probability_{name}" for name in GRADES] + [
        "predicted_class", "predicted_class_name"]

    rows = read_diagnosis_csv(path)
    assert [row["case_id"] for row in rows] == case_ids
    for row, expected in zip(rows, probabilities):
        values = np.array([row["probabilities"][name] for name in GRADES])
        np.testing.assert_array_equal(values, expected)  # written at full precision
        assert values.sum() == pytest.approx(1.0, abs=1e-12)
        assert row["predicted_class"] == int(np.argmax(expected))
        assert row["predicted_class_name"] == GRADES[row["predicted_class"]]


def test_binary_rows_from_one_logit(tmp_path):
    probabilities = probabilities_from_logits(np.array([[2.0], [-1.0], [0.0]]))
    rows = read_diagnosis_csv(write_diagnosis_csv(tmp_path / "d.csv", ["a", "b", "c"], probabilities,
                                                  ["benign", "malignant"]))
    assert [row["predicted_class_name"] for row in rows] == ["malignant", "benign", "benign"]  # 0.5 -> benign
    assert all(sum(row["probabilities"].values()) == pytest.approx(1.0) for row in rows)


def test_writes_exactly_the_given_path_replacing_what_was_there(tmp_path):
    path = tmp_path / "d.csv"
    write_diagnosis_csv(path, ["a", "b"], np.array([[0.9, 0.1], [0.2, 0.8]]), ["x", "y"])
    write_diagnosis_csv(path, ["c"], np.array([[0.4, 0.6]]), ["x", "y"])
    assert [row["case_id"] for row in read_diagnosis_csv(path)] == ["c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


@pytest.mark.parametrize("case_ids, class_names, message", [
    (["a"], ["x", "y"], "1 case ids for 2 rows"),
    (["a", "a"], ["x", "y"], "distinct, one row per case"),
    (["a", "b"], ["x", "x"], "distinct class names"),
])
def test_inconsistent_inputs_are_refused(tmp_path, case_ids, class_names, message):
    with pytest.raises(ValueError, match=message):
        write_diagnosis_csv(tmp_path / "d.csv", case_ids, np.array([[0.9, 0.1], [0.2, 0.8]]), class_names)
    assert not (tmp_path / "d.csv").exists()


def test_reading_a_foreign_csv_says_what_was_expected(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("id,score\na,0.3\n")
    with pytest.raises(ValueError, match="is not a diagnosis predictions CSV"):
        read_diagnosis_csv(path)
