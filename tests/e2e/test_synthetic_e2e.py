"""End to end through nnU-Net's real command-line tools, in subprocesses, on a small generated dataset:
plan and preprocess, train short variants of our trainers on the CPU, predict with ``nnUNetv2_predict -tr``,
evaluate with ``nnUNetv2_evaluate_folder``."""

import math
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from nnunet_ext.datasets.synthetic import generate_synthetic_dataset
from nnunet_ext.nnunet_commands import (command_path, evaluate, nnunet_environment, plan_and_preprocess, predict,
                                        results_folder, train)

pytestmark = pytest.mark.e2e

DATASET_ID, DATASET_NAME = 501, "Dataset501_SyntheticLesions"
BUDGET = {"epochs": 2, "iterations": 3, "val_iterations": 1}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("e2e_synthetic")
    environment = nnunet_environment(work_dir, budget=BUDGET)
    raw = generate_synthetic_dataset(environment["nnUNet_raw"], dataset_id=DATASET_ID, num_training=8, num_test=2,
                                     shape=(32, 48, 48))
    plan_and_preprocess(DATASET_ID, ["2d", "3d_fullres"], environment, work_dir / "plan.log")
    return work_dir, environment, raw


def train_predict_evaluate(workspace, trainer, configuration):
    work_dir, environment, raw = workspace
    logs = work_dir / "logs"
    train(DATASET_ID, configuration, 0, trainer, environment, logs / f"train_{trainer}_{configuration}.log")
    predictions = work_dir / f"predictions_{trainer}_{configuration}"
    predict(raw / "imagesTs", predictions, DATASET_ID, configuration, 0, trainer, environment,
            logs / f"predict_{trainer}_{configuration}.log")
    summary = evaluate(raw / "labelsTs", predictions, environment, logs / f"evaluate_{trainer}_{configuration}.log")
    return results_folder(environment, DATASET_NAME, trainer, configuration) / "fold_0", predictions, summary


def assert_trained_and_predicted(model_folder, predictions, summary, trainer):
    checkpoint = torch.load(model_folder / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert checkpoint["trainer_name"] == trainer
    assert any(key.startswith("div_attention.") for key in checkpoint["network_weights"])
    assert (model_folder / "validation" / "summary.json").exists()  # nnU-Net's own final validation ran
    assert sorted(p.name for p in predictions.glob("*.nii.gz")) == ["synth_008.nii.gz", "synth_009.nii.gz"]
    for label in ("1", "2"):
        dice = summary["mean"][label]["Dice"]
        assert not math.isnan(dice) and 0.0 <= dice <= 1.0, (label, dice)


def test_div_attention_3d_trains_predicts_and_evaluates(workspace):
    model_folder, predictions, summary = train_predict_evaluate(workspace, "DivAttentionTrainer_Short", "3d_fullres")
    assert_trained_and_predicted(model_folder, predictions, summary, "DivAttentionTrainer_Short")


def test_div_attention_2d_trains_predicts_and_evaluates(workspace):
    model_folder, predictions, summary = train_predict_evaluate(workspace, "DivAttentionTrainer_Short", "2d")
    assert_trained_and_predicted(model_folder, predictions, summary, "DivAttentionTrainer_Short")


def test_weighted_bce_dice_trainer_trains_with_finite_losses(workspace):
    work_dir, environment, _ = workspace
    environment = dict(environment, NNUNET_EXT_EPOCHS="1")
    trainer = "DivAttentionWBCEDiceTrainer_Short"
    train(DATASET_ID, "3d_fullres", 0, trainer, environment, work_dir / "logs" / f"train_{trainer}.log")
    model_folder = results_folder(environment, DATASET_NAME, trainer, "3d_fullres") / "fold_0"
    log_text = "".join(p.read_text() for p in model_folder.glob("training_log_*.txt"))
    losses = [float(line.split("train_loss")[1]) for line in log_text.splitlines() if "train_loss" in line]
    assert losses and all(math.isfinite(value) and value > 0 for value in losses)
    assert (model_folder / "checkpoint_final.pth").exists()


def test_validating_another_trainers_checkpoint_stops_with_a_clear_error(workspace):
    work_dir, environment, _ = workspace
    source = results_folder(environment, DATASET_NAME, "DivAttentionTrainer_Short", "3d_fullres") / "fold_0"
    if not (source / "checkpoint_final.pth").exists():
        train(DATASET_ID, "3d_fullres", 0, "DivAttentionTrainer_Short", environment, work_dir / "logs" / "again.log")
    target = results_folder(environment, DATASET_NAME, "DivAttentionWBCEDiceTrainer", "3d_fullres") / "fold_0"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "checkpoint_final.pth", target / "checkpoint_final.pth")
    completed = subprocess.run([command_path("nnUNetv2_train"), str(DATASET_ID), "3d_fullres", "0", "-tr",
                                "DivAttentionWBCEDiceTrainer", "--val", "-device", "cpu"],
                               env=environment, capture_output=True, text=True, timeout=600)
    assert completed.returncode != 0
    assert "was written by trainer 'DivAttentionTrainer_Short', not by 'DivAttentionWBCEDiceTrainer'" in completed.stderr
    assert "-tr DivAttentionTrainer_Short" in completed.stderr
