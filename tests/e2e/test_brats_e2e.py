"""End to end on the real BraTS 2013 sample (two channels, FLAIR + T1c; region-based: whole tumour, tumour core,
enhancing tumour), resampled to 3 mm so that it stays short on a CPU: Div-attention trains on two patients, nnU-Net
validates on the third, the held-out fourth is predicted and evaluated."""

import json
import math
from pathlib import Path

import pytest
import torch

from nnunet_ext.cli.nnunet_commands import (evaluate, nnunet_environment, plan_and_preprocess, predict,
                                            results_folder, train)
from nnunet_ext.datasets.brats2013 import convert_brats2013_sample, default_brats_sample_dir

pytestmark = pytest.mark.e2e

DATASET_ID, DATASET_NAME = 502, "Dataset502_BraTS2013Sample"
TRAINER = "DivAttentionTrainer_Short"


def train_predict_and_evaluate_on_brats(runs, folder: Path) -> dict:
    """Its own nnU-Net folders under ``folder``; None when the sample is absent (the test skips then)."""
    source = default_brats_sample_dir(runs.environ)
    if not source.is_dir():
        return None
    environment = nnunet_environment(folder, budget={"epochs": 1, "iterations": 2, "val_iterations": 1},
                                     base=runs.environ)
    raw = convert_brats2013_sample(source, environment["nnUNet_raw"], dataset_id=DATASET_ID)
    plan_and_preprocess(DATASET_ID, ["3d_fullres"], environment, folder / "plan.log")
    # three training cases are too few for nnU-Net's five folds: one fold, two patients to train, one to validate
    cases = sorted(p.name[:-len(".nii.gz")] for p in (raw / "labelsTr").glob("*.nii.gz"))
    splits = Path(environment["nnUNet_preprocessed"]) / DATASET_NAME / "splits_final.json"
    splits.write_text(json.dumps([{"train": cases[:2], "val": cases[2:]}]))
    environment.update(nnUNet_n_proc_DA="0", nnUNet_def_n_proc="1")
    train(DATASET_ID, "3d_fullres", 0, TRAINER, environment, folder / "train.log")
    predictions = folder / "predictions"
    predict(raw / "imagesTs", predictions, DATASET_ID, "3d_fullres", 0, TRAINER, environment, folder / "predict.log")
    return {"validation_case": cases[2], "predictions": predictions,
            "summary": evaluate(raw / "labelsTs", predictions, environment, folder / "evaluate.log"),
            "model_folder": results_folder(environment, DATASET_NAME, TRAINER, "3d_fullres") / "fold_0"}


SHARED_PIPELINES = {"brats": (train_predict_and_evaluate_on_brats, [])}


def test_div_attention_on_the_real_brats_sample(brats_source, shared_pipeline):
    result = shared_pipeline("brats")
    model_folder, summary = result["model_folder"], result["summary"]
    assert [p.name for p in (model_folder / "validation").glob("*.nii.gz")] == [f"{result['validation_case']}.nii.gz"]
    checkpoint = torch.load(model_folder / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    first_input_conv = next(v for k, v in checkpoint["network_weights"].items() if k.endswith("conv.weight"))
    assert first_input_conv.shape[1] == 2  # FLAIR and T1c
    side_branch = checkpoint["network_weights"]["div_attention.0.input_features.conv.weight"]
    assert side_branch.shape[:2] == (3, 2)  # three regions out, two channels in
    assert [p.name for p in result["predictions"].glob("*.nii.gz")] == ["brats_2013_pat0006_1.nii.gz"]
    regions = {key for key in summary["mean"]}
    assert regions == {"(1, 2, 3)", "(2, 3)", "3"}, regions
    for region, metrics in summary["mean"].items():
        assert not math.isnan(metrics["Dice"]) and 0.0 <= metrics["Dice"] <= 1.0, (region, metrics)
