"""End to end on the real BraTS 2013 sample (two channels, FLAIR + T1c; region-based: whole tumour, tumour core,
enhancing tumour), resampled to 3 mm so that it stays short on a CPU."""

import math

import pytest
import torch

from nnunet_ext.datasets.brats2013 import convert_brats2013_sample
from nnunet_ext.nnunet_commands import (evaluate, nnunet_environment, plan_and_preprocess, predict, results_folder,
                                        train)

pytestmark = pytest.mark.e2e

DATASET_ID, DATASET_NAME = 502, "Dataset502_BraTS2013Sample"
TRAINER = "DivAttentionTrainer_Short"


def test_div_attention_on_the_real_brats_sample(brats_source, tmp_path):
    environment = nnunet_environment(tmp_path, budget={"epochs": 2, "iterations": 3, "val_iterations": 1})
    raw = convert_brats2013_sample(brats_source, environment["nnUNet_raw"], dataset_id=DATASET_ID)
    plan_and_preprocess(DATASET_ID, ["3d_fullres"], environment, tmp_path / "plan.log")
    # three training cases are too few for nnU-Net's five folds: train on all of them (fold "all")
    train(DATASET_ID, "3d_fullres", "all", TRAINER, environment, tmp_path / "train.log")
    predictions = tmp_path / "predictions"
    predict(raw / "imagesTs", predictions, DATASET_ID, "3d_fullres", "all", TRAINER, environment,
            tmp_path / "predict.log")
    summary = evaluate(raw / "labelsTs", predictions, environment, tmp_path / "evaluate.log")

    model_folder = results_folder(environment, DATASET_NAME, TRAINER, "3d_fullres") / "fold_all"
    checkpoint = torch.load(model_folder / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    first_input_conv = next(v for k, v in checkpoint["network_weights"].items() if k.endswith("conv.weight"))
    assert first_input_conv.shape[1] == 2  # FLAIR and T1c
    side_branch = checkpoint["network_weights"]["div_attention.0.input_features.conv.weight"]
    assert side_branch.shape[:2] == (3, 2)  # three regions out, two channels in
    assert [p.name for p in predictions.glob("*.nii.gz")] == ["brats_2013_pat0006_1.nii.gz"]
    regions = {key for key in summary["mean"]}
    assert regions == {"(1, 2, 3)", "(2, 3)", "3"}, regions
    for region, metrics in summary["mean"].items():
        assert not math.isnan(metrics["Dice"]) and 0.0 <= metrics["Dice"] <= 1.0, (region, metrics)
