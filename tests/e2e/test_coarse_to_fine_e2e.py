"""Div-attention's full pipeline end to end through nnU-Net's real commands, on the session's synthetic dataset:
Stage 1 trained with the click cue (``nnUNetv2_train -tr ClickGuidedTrainer_Short``, its final validation fed
simulated clicks), predicted with clicks from a file and with simulated clicks (``nnunet_ext_predict``); Stage 2's
crop dataset (``nnunet_ext_crops``), planned, preprocessed and trained with the stock commands
(``DivAttentionTrainer_Short``); and ``nnunet_ext_coarse_to_fine``, whose pasted-back segmentations lie exactly on the
cases' grids and are evaluated by ``nnUNetv2_evaluate_folder``."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_ext.cli.nnunet_commands import plan_and_preprocess, run_nnunet_command, train

pytestmark = pytest.mark.e2e

CLICK_MODEL = ("ClickGuidedTrainer_Short", "3d_fullres")
STAGE2_TRAINER, CROP_DATASET_ID, CROP_SIZE = "DivAttentionTrainer_Short", 610, 24
SHARED_RUNS = [("model", *CLICK_MODEL), ("stock_predictions", *CLICK_MODEL)]


def click_file_of(workspace, path: Path) -> Path:
    """A user's clicks: for every test case the world position of the centre of its largest target voxel run."""
    clicks = {}
    for labels_file in sorted((workspace.raw / "labelsTs").glob("*.nii.gz")):
        labels = sitk.ReadImage(str(labels_file))
        inside = np.argwhere(sitk.GetArrayFromImage(labels) > 0)
        voxel = inside[len(inside) // 2][::-1]  # x, y, z of a voxel inside the targets
        clicks[labels_file.name[:-len(".nii.gz")]] = [list(labels.TransformIndexToPhysicalPoint(
            [int(v) for v in voxel]))]
    path.write_text(json.dumps(clicks))
    return path


def click_predictions(runs, folder: Path) -> dict:
    """``nnunet_ext_predict`` with clicks from a file; the session's predictions of the click model (the registry's
    end-to-end runs) are those with simulated clicks."""
    workspace, model = runs.workspace().result(), runs.model(*CLICK_MODEL).result()
    folder.mkdir(parents=True)
    output = folder / "file"
    run_nnunet_command(["nnunet_ext_predict", *runs.predict_arguments(workspace, *CLICK_MODEL, output), "--clicks",
                        click_file_of(workspace, folder / "clicks.json")], model.environment,
                       workspace.log("predict_clicks_file"))
    return {"file": output, "simulated": runs.stock_predictions(*CLICK_MODEL).result()}


def coarse_to_fine(runs, folder: Path) -> dict:
    workspace, model = runs.workspace().result(), runs.model(*CLICK_MODEL).result()
    stage1 = runs.stock_predictions(*CLICK_MODEL).result()  # predicted with simulated clicks
    environment = dict(model.environment, nnUNet_raw=str(folder / "nnUNet_raw"),
                       nnUNet_preprocessed=str(folder / "nnUNet_preprocessed"))
    (folder / "nnUNet_raw").mkdir(parents=True)
    run_nnunet_command(["nnunet_ext_crops", "--raw", folder / "nnUNet_raw", "-s", workspace.raw, "-d",
                        CROP_DATASET_ID, "--stage1", stage1, "--size", CROP_SIZE], environment,
                       workspace.log("crops"))
    plan_and_preprocess(CROP_DATASET_ID, ["3d_fullres"], dict(environment, nnUNet_n_proc_DA="1"),
                        workspace.log("plan_crops"))
    train(CROP_DATASET_ID, "3d_fullres", 0, STAGE2_TRAINER, environment, workspace.log("train_stage2"))
    output = folder / "pipeline"
    run_nnunet_command(["nnunet_ext_coarse_to_fine", "-i", workspace.raw / "imagesTs", "-o", output,
                        "--stage1", runs.dataset_id, CLICK_MODEL[1], CLICK_MODEL[0], "--stage2", CROP_DATASET_ID,
                        "3d_fullres", STAGE2_TRAINER, "--stage2_folds", 0, "--simulated_clicks",
                        workspace.raw / "labelsTs", "--reference", workspace.raw / "labelsTs", "-device", "cpu",
                        "-npp", 0, "-nps", 0, "--disable_tta"], environment, workspace.log("coarse_to_fine"))
    return {"crops": folder / "nnUNet_raw" / f"Dataset{CROP_DATASET_ID}_SyntheticLesionsCrops", "output": output}


SHARED_PIPELINES = {"click_predictions": (click_predictions, SHARED_RUNS),
                    "coarse_to_fine": (coarse_to_fine, SHARED_RUNS)}


def test_click_training_validates_with_simulated_clicks(trained_model):
    model = trained_model(*CLICK_MODEL)
    plans = json.loads((model.folder / "plans.json").read_text())
    assert plans["nnunet_ext_click_cue"]["radius_mm"] == 40.0
    assert (model.fold_0 / "validation" / "summary.json").is_file()  # nnU-Net's final validation, with the cue


def test_click_prediction_from_a_file_and_with_simulated_clicks(shared_pipeline, e2e_workspace, e2e):
    outputs = shared_pipeline("click_predictions")
    for output in outputs.values():
        assert sorted(p.name for p in output.glob("*.nii.gz")) == [f"{c}.nii.gz" for c in e2e.test_cases]
        for case in e2e.test_cases:
            predicted = sitk.ReadImage(str(output / f"{case}.nii.gz"))
            image = sitk.ReadImage(str(e2e_workspace.raw / "imagesTs" / f"{case}_0000.nii.gz"))
            assert predicted.GetSize() == image.GetSize() and predicted.GetOrigin() == image.GetOrigin()


def test_a_click_model_without_clicks_stops_before_predicting(trained_model, e2e_workspace, e2e, capsys,
                                                             monkeypatch, tmp_path):
    from nnunet_ext.cli import predict

    model = trained_model(*CLICK_MODEL)
    monkeypatch.setenv("nnUNet_results", model.environment["nnUNet_results"])
    with pytest.raises(SystemExit) as exit_info:
        predict.main(list(map(str, e2e.predict_arguments(e2e_workspace, *CLICK_MODEL, tmp_path / "out"))))
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "trained with a click cue and needs clicks" in message and "--simulated_clicks" in message
    assert not (tmp_path / "out").exists()


def test_the_crop_dataset_and_the_pasted_back_two_stage_prediction(shared_pipeline, e2e_workspace, e2e):
    result = shared_pipeline("coarse_to_fine")
    crops = json.loads((result["crops"] / "crops.json").read_text())
    assert crops["settings"]["size"] == CROP_SIZE
    assert sum(e["split"] == "training" for e in crops["crops"].values()) >= 8
    output = result["output"]
    record = json.loads((output / "coarse_to_fine.json").read_text())
    assert record["stage2"]["trainer"] == STAGE2_TRAINER and record["crops"]["size"] == CROP_SIZE
    assert sum(len(case["crops"]) for case in record["cases"].values()) >= 1  # Stage 2 refined something
    for case in e2e.test_cases:
        final = sitk.ReadImage(str(output / f"{case}.nii.gz"))
        image = sitk.ReadImage(str(e2e_workspace.raw / "imagesTs" / f"{case}_0000.nii.gz"))
        assert final.GetSize() == image.GetSize()
        assert np.allclose(final.GetSpacing(), image.GetSpacing())
        assert np.allclose(final.GetOrigin(), image.GetOrigin())
        assert np.allclose(final.GetDirection(), image.GetDirection())
    e2e.assert_valid_dice(json.loads((output / "summary.json").read_text()))
    e2e.assert_valid_dice(json.loads((output / "stage1" / "summary.json").read_text()))
    assert os.path.isdir(output / "stage2")
