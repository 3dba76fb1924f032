"""Div-attention end to end, on the session's short Div-attention model: its junctions are in the checkpoint, the
paper's loss trains with finite values, and continuing or validating a checkpoint that another trainer wrote stops
with a clear error."""

import math
import shutil

import pytest

import torch

pytestmark = pytest.mark.e2e

TRAINER, PAPERS_LOSS_TRAINER = "DivAttentionTrainer_Short", "DivAttentionWBCEDiceTrainer_Short"
SHARED_RUNS = [("model", TRAINER, "3d_fullres"), ("model", PAPERS_LOSS_TRAINER, "2d")]


def test_the_junctions_are_trained_and_saved(trained_model):
    model = trained_model(TRAINER, "3d_fullres")
    weights = torch.load(model.fold_0 / "checkpoint_final.pth", map_location="cpu",
                         weights_only=False)["network_weights"]
    assert any(key.startswith("div_attention.") for key in weights)


def test_the_papers_loss_trains_with_finite_losses(trained_model):
    model = trained_model(PAPERS_LOSS_TRAINER, "2d")
    losses = [float(line.split("train_loss")[1]) for line in model.training_log().splitlines()
              if "train_loss" in line]
    assert len(losses) == 2 and all(math.isfinite(value) and value > 0 for value in losses)
    assert (model.fold_0 / "checkpoint_final.pth").exists()


def test_validating_another_trainers_checkpoint_stops_with_a_clear_error(e2e_workspace, trained_model, e2e):
    source = trained_model(TRAINER, "3d_fullres").fold_0
    target = e2e_workspace.model_folder("DivAttentionWBCEDiceTrainer", "3d_fullres") / "fold_0"
    target.mkdir(parents=True)
    shutil.copy(source / "checkpoint_final.pth", target / "checkpoint_final.pth")
    output = e2e.train_expecting_failure(e2e_workspace, "DivAttentionWBCEDiceTrainer", "3d_fullres",
                                         extra=["--val"])
    assert f"was written by trainer '{TRAINER}', not by 'DivAttentionWBCEDiceTrainer'" in output
    assert f"-tr {TRAINER}" in output
