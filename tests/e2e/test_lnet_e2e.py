"""L-Net with the dual loss end to end, on the session's short L-Net model: the switch to the dual loss, nnU-Net's
final validation with the lesion-presence summary, ``nnunet_ext_predict`` (presence CSV written directly) and the
stock ``nnUNetv2_predict --save_probabilities`` followed by ``nnunet_ext_presence``."""

import csv
import json
from pathlib import Path

import pytest

from nnunet_ext.cli.nnunet_commands import run_nnunet_command

pytestmark = pytest.mark.e2e

TRAINER, CONFIGURATION = "LNetTrainer_Short", "3d_fullres"
SHARED_RUNS = [("model", TRAINER, CONFIGURATION), ("stock_predictions", TRAINER, CONFIGURATION)]


def predict_with_ours(runs, output: Path) -> Path:
    """``nnunet_ext_predict`` (nnUNetv2_predict's arguments) into ``output``."""
    workspace, model = runs.workspace().result(), runs.model(TRAINER, CONFIGURATION).result()
    run_nnunet_command(["nnunet_ext_predict", *runs.predict_arguments(workspace, TRAINER, CONFIGURATION, output)],
                       model.environment, workspace.log("predict_lnet_ours"))
    return output


SHARED_PIPELINES = {"lnet_predicted_by_nnunet_ext": (predict_with_ours, [("model", TRAINER, CONFIGURATION)])}


def read_presence_csv(path: Path) -> list:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def assert_presence_rows(rows, test_cases):
    assert [row["case"] for row in rows] == test_cases
    for row in rows:
        assert set(row) == {"case", "organ", "lesion"}  # every foreground class, background excluded
        assert all(0.0 <= float(row[name]) <= 1.0 for name in ("organ", "lesion"))


def test_training_switches_to_the_dual_loss_and_validation_writes_the_presence_summary(trained_model):
    model = trained_model(TRAINER, CONFIGURATION)
    assert "Epoch 1: switching from loss_seg to the dual loss 0.8 * loss_seg + 0.20 * loss_clf" in \
        model.training_log()
    validation = model.fold_0 / "validation"
    summary = json.loads((validation / "lesion_presence_summary.json").read_text())
    assert (validation / "summary.json").exists()
    assert summary["unit"] == "case" and summary["n_images"] == len(list(validation.glob("*.nii.gz")))
    assert set(summary["classes"]) == {"organ", "lesion"}
    for scores in list(summary["classes"].values()) + [summary["mean"]]:
        for name in ("precision", "recall", "F1"):
            assert scores[name] is None or 0.0 <= scores[name] <= 1.0
    assert summary["classes"]["organ"]["recall"] is not None  # every case has an organ


def test_our_prediction_entry_point_writes_the_presence_csv(shared_pipeline, e2e):
    output = shared_pipeline("lnet_predicted_by_nnunet_ext")
    assert sorted(p.name for p in output.glob("*.nii.gz")) == [f"{c}.nii.gz" for c in e2e.test_cases]
    assert_presence_rows(read_presence_csv(output / "presence_probabilities.csv"), e2e.test_cases)


def test_presence_csv_from_the_stock_predictor_output(e2e_workspace, stock_predictions, e2e):
    output = stock_predictions(TRAINER, CONFIGURATION)
    assert not (output / "presence_probabilities.csv").exists()
    csv_file = e2e_workspace.work_dir / "lnet_presence_from_stock.csv"
    run_nnunet_command(["nnunet_ext_presence", "-i", output, "-o", csv_file], e2e_workspace.environment,
                       e2e_workspace.log("presence_from_stock"))
    assert_presence_rows(read_presence_csv(csv_file), e2e.test_cases)
