"""L-Net with the dual loss end to end through nnU-Net's real CLIs and ours: train a short LNetTrainer, let nnU-Net's
final validation write the lesion-presence summary, predict with ``nnunet_ext_predict`` (presence CSV written
directly) and with the stock ``nnUNetv2_predict --save_probabilities`` followed by ``nnunet_ext_presence``."""

import csv
import json
from pathlib import Path

import pytest

from nnunet_ext.datasets.synthetic import generate_synthetic_dataset
from nnunet_ext.nnunet_commands import nnunet_environment, plan_and_preprocess, results_folder, run_nnunet_command, train

pytestmark = pytest.mark.e2e

DATASET_ID, DATASET_NAME, TRAINER = 503, "Dataset503_SyntheticLesions", "LNetTrainer_Short"
TEST_CASES = ["synth_008", "synth_009"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("e2e_lnet")
    environment = nnunet_environment(work_dir, budget={"epochs": 2, "iterations": 3, "val_iterations": 1})
    raw = generate_synthetic_dataset(environment["nnUNet_raw"], dataset_id=DATASET_ID, num_training=8, num_test=2,
                                     shape=(32, 48, 48))
    plan_and_preprocess(DATASET_ID, ["3d_fullres"], environment, work_dir / "plan.log")
    train(DATASET_ID, "3d_fullres", 0, TRAINER, environment, work_dir / "train.log")
    return work_dir, environment, raw, results_folder(environment, DATASET_NAME, TRAINER, "3d_fullres") / "fold_0"


def read_presence_csv(path: Path) -> list:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def assert_presence_rows(rows):
    assert [row["case"] for row in rows] == TEST_CASES
    for row in rows:
        assert set(row) == {"case", "organ", "lesion"}  # every foreground class, background excluded
        assert all(0.0 <= float(row[name]) <= 1.0 for name in ("organ", "lesion"))


def test_training_switches_to_the_dual_loss_and_validation_writes_the_presence_summary(trained):
    _, _, _, model_folder = trained
    log_text = "".join(p.read_text() for p in model_folder.glob("training_log_*.txt"))
    assert "Epoch 1: switching from loss_seg to the dual loss 0.8 * loss_seg + 0.20 * loss_clf" in log_text
    summary = json.loads((model_folder / "validation" / "lesion_presence_summary.json").read_text())
    assert (model_folder / "validation" / "summary.json").exists()
    assert summary["unit"] == "case" and summary["n_images"] == 2
    assert set(summary["classes"]) == {"organ", "lesion"}
    for scores in list(summary["classes"].values()) + [summary["mean"]]:
        for name in ("precision", "recall", "F1"):
            assert scores[name] is None or 0.0 <= scores[name] <= 1.0
    assert summary["classes"]["organ"]["recall"] is not None  # every case has an organ


def test_our_prediction_entry_point_writes_the_presence_csv(trained):
    work_dir, environment, raw, _ = trained
    output = work_dir / "ours"
    run_nnunet_command(["nnunet_ext_predict", "-i", raw / "imagesTs", "-o", output, "-d", DATASET_ID, "-c",
                        "3d_fullres", "-f", 0, "-tr", TRAINER, "-device", "cpu", "-npp", 1, "-nps", 1,
                        "--disable_tta"], environment, work_dir / "predict_ours.log")
    assert sorted(p.name for p in output.glob("*.nii.gz")) == [f"{c}.nii.gz" for c in TEST_CASES]
    assert_presence_rows(read_presence_csv(output / "presence_probabilities.csv"))


def test_presence_csv_from_the_stock_predictor_output(trained):
    work_dir, environment, raw, _ = trained
    output = work_dir / "stock"
    run_nnunet_command(["nnUNetv2_predict", "-i", raw / "imagesTs", "-o", output, "-d", DATASET_ID, "-c",
                        "3d_fullres", "-f", 0, "-tr", TRAINER, "-device", "cpu", "-npp", 1, "-nps", 1,
                        "--disable_tta", "--save_probabilities"], environment, work_dir / "predict_stock.log")
    assert not (output / "presence_probabilities.csv").exists()
    run_nnunet_command(["nnunet_ext_presence", "-i", output], environment, work_dir / "presence.log")
    assert_presence_rows(read_presence_csv(output / "presence_probabilities.csv"))
