"""Segmentation-assisted diagnosis end to end through nnU-Net's real CLIs and ours, on the session's 2D models: the
short nnU-Net segmentation model and SiAN trained on it (frozen). Validation writes the diagnosis summary;
``nnunet_ext_predict`` writes one CSV row per case and the stock ``nnUNetv2_predict`` the same segmentations;
batches carry their cases' labels with single- and multi-process augmentation; a missing or wrong labels file, or a
segmentation model of other plans, stops ``nnUNetv2_train`` before training; nnU-Net's ``-pretrained_weights``
accepts the file of ``nnunet_ext_diagnosis_init``."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet_ext.cli.nnunet_commands import run_nnunet_command, train
from nnunet_ext.diagnosis.predictions_csv import read_diagnosis_csv
from nnunet_ext.diagnosis.predictor import SETTINGS_FILE_NAME as PREDICTION_SETTINGS_FILE
from nnunet_ext.diagnosis.segmentation_model import SEGMENTATION_MODEL_VARIABLE

pytestmark = pytest.mark.e2e

SEGMENTATION_TRAINER, TRAINER = "PlainUNetTrainer_Short", "SiANDiagnosisTrainer_FrozenSegmentation_Short"
MODELS = [("model", SEGMENTATION_TRAINER, "2d"), ("model", TRAINER, "2d")]
SHARED_RUNS = [*MODELS, ("stock_predictions", TRAINER, "2d")]
COMPARED_SETTINGS = ("tile_step_size", "use_gaussian", "use_mirroring", "mirroring_axes", "diagnosis_from_mirrors",
                     "tile_pooling", "folds", "checkpoint", "aggregation")


def predict_with_ours(runs, output: Path) -> Path:
    """``nnunet_ext_predict`` of the diagnosis model (nnUNetv2_predict's arguments) into ``output``."""
    workspace, model = runs.workspace().result(), runs.model(TRAINER, "2d").result()
    run_nnunet_command(["nnunet_ext_predict", *runs.predict_arguments(workspace, TRAINER, "2d", output)],
                       model.environment, workspace.log("predict_diagnosis_ours"))
    return output


def start_from_the_segmentation_model(runs, folder: Path) -> dict:
    """``nnunet_ext_diagnosis_init`` from the segmentation model, then one iteration of ``nnUNetv2_train
    -pretrained_weights`` with that file."""
    workspace, segmentation = runs.workspace().result(), runs.model(SEGMENTATION_TRAINER, "2d").result()
    checkpoint = segmentation.fold_0 / "checkpoint_final.pth"
    initial, trainer = folder / "initial_weights.pth", "SiANDiagnosisTrainer_Short"
    folder.mkdir(parents=True)
    run_nnunet_command(["nnunet_ext_diagnosis_init", "-d", runs.dataset_id, "-c", "2d", "-tr", trainer, "-i",
                        checkpoint, "-o", initial], workspace.environment, folder / "init.log")
    environment = dict(workspace.environment, NNUNET_EXT_EPOCHS="1", NNUNET_EXT_ITERATIONS="1",
                       NNUNET_EXT_VAL_ITERATIONS="1")
    train(runs.dataset_id, "2d", 0, trainer, environment, folder / "train.log", extra=["-pretrained_weights", initial])
    return {"segmentation_checkpoint": checkpoint, "initial_weights": initial, "train_log": folder / "train.log"}


def predict_the_validation_cases(runs, output: Path) -> Path:
    """``nnunet_ext_predict`` of fold 0's validation cases (their raw images) with the settings of nnU-Net's final
    validation: tile step 0.5, Gaussian weighting, test-time mirroring on, fold 0's final weights."""
    workspace, model = runs.workspace().result(), runs.model(TRAINER, "2d").result()
    splits = json.loads((workspace.preprocessed / "splits_final.json").read_text())
    images = output.parent / f"{output.name}_images"
    images.mkdir(parents=True)
    for case in splits[0]["val"]:
        for image in (workspace.raw / "imagesTr").glob(f"{case}_*.nii.gz"):
            shutil.copy(image, images / image.name)
    run_nnunet_command(["nnunet_ext_predict", "-i", images, "-o", output, "-d", runs.dataset_id, "-c", "2d", "-f", 0,
                        "-tr", TRAINER, "-chk", "checkpoint_final.pth", "-step_size", 0.5, "-device", "cpu",
                        "-npp", 0, "-nps", 0], model.environment, workspace.log("predict_validation_cases"))
    return output


def predict_interrupted_then_continued(runs, output: Path) -> Path:
    """An interrupted ``nnunet_ext_predict`` and its continuation into ``output``: the first run predicts the first
    test case only (what a run stopped after one case leaves: its segmentation, probabilities and CSV row), then
    the same command on all test cases with ``--continue_prediction``."""
    workspace, model = runs.workspace().result(), runs.model(TRAINER, "2d").result()
    first_images = output.parent / f"{output.name}_first_case"
    first_images.mkdir(parents=True)
    for image in (workspace.raw / "imagesTs").glob(f"{runs.test_cases[0]}_*.nii.gz"):
        shutil.copy(image, first_images / image.name)
    arguments = runs.predict_arguments(workspace, TRAINER, "2d", output)
    first = [first_images if previous == "-i" else argument
             for previous, argument in zip([None, *arguments], arguments)]
    run_nnunet_command(["nnunet_ext_predict", *first], model.environment, workspace.log("predict_interrupted"))
    run_nnunet_command(["nnunet_ext_predict", *arguments, "--continue_prediction"], model.environment,
                       workspace.log("predict_continued"))
    return output


SHARED_PIPELINES = {"diagnosis_predicted_by_nnunet_ext": (predict_with_ours, MODELS),
                    "diagnosis_interrupted_then_continued": (predict_interrupted_then_continued, MODELS),
                    "diagnosis_of_the_validation_cases": (predict_the_validation_cases, MODELS),
                    "diagnosis_started_from_the_segmentation_model": (start_from_the_segmentation_model, MODELS)}


@pytest.fixture(scope="module")
def trained(e2e_workspace, trained_model):
    segmentation, diagnosis = trained_model(SEGMENTATION_TRAINER, "2d"), trained_model(TRAINER, "2d")
    return {"work_dir": e2e_workspace.work_dir, "environment": diagnosis.environment, "raw": e2e_workspace.raw,
            "workspace": e2e_workspace, "model": diagnosis.folder,
            "segmentation_model": segmentation.folder}


def test_validation_writes_the_diagnosis_summary_and_the_labels_travel(trained):
    model = trained["model"]
    validation = model / "fold_0" / "validation"
    summary = json.loads((validation / "diagnosis_summary.json").read_text())
    splits = json.loads((trained["workspace"].preprocessed / "splits_final.json").read_text())
    labels = json.loads((trained["raw"] / "diagnosis_labels.json").read_text())
    assert sorted(c["case_id"] for c in summary["cases"]) == sorted(splits[0]["val"])
    for case in summary["cases"]:
        assert case["target"] == labels["labels"][case["case_id"]]
        assert sum(case["probabilities"].values()) == pytest.approx(1.0)
    assert set(summary["metrics"]) >= {"ACC", "SPE", "SEN", "AUC"}
    assert (validation / "diagnosis_roc.png").is_file() and (validation / "diagnosis_confusion_matrix.png").is_file()
    assert (validation / "summary.json").is_file()  # nnU-Net's own segmentation summary is still there
    assert json.loads((model / "diagnosis_labels.json").read_text()) == labels
    assert json.loads((model / "plans.json").read_text())["nnunet_ext_diagnosis"]["classes"] == ["no lesion",
                                                                                                 "lesion"]
    log_text = "".join(p.read_text() for p in (model / "fold_0").glob("training_log_*.txt"))
    assert log_text.count("val_diagnosis_auc (validation patches)") == 2  # one per epoch


def test_the_frozen_segmentation_part_did_not_change(trained):
    ours = torch.load(trained["model"] / "fold_0" / "checkpoint_final.pth", map_location="cpu",
                      weights_only=False)["network_weights"]
    theirs = torch.load(trained["segmentation_model"] / "fold_0" / "checkpoint_final.pth", map_location="cpu",
                        weights_only=False)["network_weights"]
    assert set(theirs) < set(ours)
    assert all(torch.equal(ours[k], v) for k, v in theirs.items())
    assert any(k.startswith("diagnosis.") for k in ours)


def test_our_prediction_writes_one_diagnosis_per_case_and_the_stock_segmentations(shared_pipeline, stock_predictions,
                                                                                  e2e):
    ours, stock = shared_pipeline("diagnosis_predicted_by_nnunet_ext"), stock_predictions(TRAINER, "2d")
    rows = read_diagnosis_csv(ours / "diagnosis_predictions.csv")
    assert [row["case_id"] for row in rows] == e2e.test_cases
    assert all(list(row["probabilities"]) == ["no lesion", "lesion"] for row in rows)
    assert not (stock / "diagnosis_predictions.csv").exists()
    for case in e2e.test_cases:
        ours_segmentation = sitk.GetArrayFromImage(sitk.ReadImage(str(ours / f"{case}.nii.gz")))
        stock_segmentation = sitk.GetArrayFromImage(sitk.ReadImage(str(stock / f"{case}.nii.gz")))
        assert np.array_equal(ours_segmentation, stock_segmentation)


def test_an_interrupted_and_continued_prediction_gives_the_csv_of_an_uninterrupted_one(shared_pipeline, e2e):
    uninterrupted = read_diagnosis_csv(shared_pipeline("diagnosis_predicted_by_nnunet_ext") /
                                       "diagnosis_predictions.csv")
    continued = shared_pipeline("diagnosis_interrupted_then_continued")
    rows = read_diagnosis_csv(continued / "diagnosis_predictions.csv")
    assert [row["case_id"] for row in rows] == [row["case_id"] for row in uninterrupted] == e2e.test_cases
    for row, expected in zip(rows, uninterrupted):
        assert row["predicted_class"] == expected["predicted_class"]
        for name, probability in expected["probabilities"].items():
            assert row["probabilities"][name] == pytest.approx(probability, abs=1e-6), row["case_id"]


def test_predicting_the_validation_cases_reproduces_the_validation_summary(trained, shared_pipeline):
    """One rule in both places: the final validation's per-case probabilities (from the preprocessed cases) are what
    nnunet_ext_predict gives for the same cases' raw images with the same settings, and both files say so."""
    predicted = shared_pipeline("diagnosis_of_the_validation_cases")
    summary = json.loads((trained["model"] / "fold_0" / "validation" / "diagnosis_summary.json").read_text())
    rows = {row["case_id"]: row["probabilities"] for row in read_diagnosis_csv(predicted / "diagnosis_predictions.csv")}
    assert sorted(rows) == sorted(case["case_id"] for case in summary["cases"])
    for case in summary["cases"]:
        for name, probability in case["probabilities"].items():
            assert rows[case["case_id"]][name] == pytest.approx(probability, abs=1e-5), case["case_id"]
    settings = json.loads((predicted / PREDICTION_SETTINGS_FILE).read_text())
    for key in COMPARED_SETTINGS:
        assert settings[key] == summary["settings"][key], key


BATCH_SCRIPT = textwrap.dedent("""
    import json, os, sys, torch
    from batchgenerators.utilities.file_and_folder_operations import join, load_json
    from nnunet_ext.diagnosis.batch_targets import diagnosis_targets
    from nnunet_ext.trainers import SiANDiagnosisTrainer_Short
    folder = join(os.environ["nnUNet_preprocessed"], sys.argv[1])
    plans = dict(load_json(join(folder, "nnUNetPlans.json")), continue_training=False)  # as run_training sets it
    trainer = SiANDiagnosisTrainer_Short(plans, "2d", 0, load_json(join(folder, "dataset.json")),
                                         torch.device("cpu"))
    trainer.initialize()
    loaders = trainer.get_dataloaders()
    batches = [next(loader) for loader in loaders for _ in range(2)]
    print("RESULT" + json.dumps({"augmenter": type(loaders[0]).__name__, "batches": [
        {"keys": [str(k) for k in b["keys"]],
         "targets": diagnosis_targets(trainer.diagnosis_labels, b["keys"], torch.device("cpu")).tolist()}
        for b in batches]}), flush=True)
    for loader in loaders:  # as nnU-Net's on_train_end: stop the augmentation workers before the interpreter exits
        if hasattr(loader, "_finish"):
            loader._finish()
""")


@pytest.mark.parametrize("augmentation_workers, augmenter", [("0", "SingleThreadedAugmenter"),
                                                             ("2", "NonDetMultiThreadedAugmenter")])
def test_batches_carry_the_labels_of_their_cases(trained, augmentation_workers, augmenter, e2e):
    environment = dict(trained["environment"], nnUNet_n_proc_DA=augmentation_workers)
    completed = subprocess.run([sys.executable, "-c", BATCH_SCRIPT, e2e.dataset_name], env=environment,
                               capture_output=True, text=True, timeout=600, cwd=trained["work_dir"])
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads([line for line in completed.stdout.splitlines() if line.startswith("RESULT")][-1][6:])
    labels = json.loads((trained["raw"] / "diagnosis_labels.json").read_text())["labels"]
    assert result["augmenter"] == augmenter
    seen = set()
    for batch in result["batches"]:
        assert batch["targets"] == [labels[key] for key in batch["keys"]]
        seen.update(batch["keys"])
    assert len(seen) > 1


def test_missing_or_wrong_labels_stop_training_before_it_starts(trained, tmp_path, e2e):
    environment = e2e.isolated_copy(trained["workspace"], tmp_path)
    raw_labels = Path(environment["nnUNet_raw"]) / e2e.dataset_name / "diagnosis_labels.json"
    content = json.loads(raw_labels.read_text())
    raw_labels.unlink()
    (Path(environment["nnUNet_preprocessed"]) / e2e.dataset_name / raw_labels.name).unlink(missing_ok=True)
    output = e2e.train_expecting_failure(trained["workspace"], "SiANDiagnosisTrainer_Short", "2d", environment)
    assert f"No diagnosis_labels.json found at {raw_labels}" in output
    content["labels"]["synth_002"] = 7
    raw_labels.write_text(json.dumps(content))
    output = e2e.train_expecting_failure(trained["workspace"], "SiANDiagnosisTrainer_Short", "2d", environment)
    assert "case 'synth_002' has label 7, which is not one of the declared classes" in output
    assert not list(Path(environment["nnUNet_results"]).rglob("checkpoint_*.pth"))


def test_a_segmentation_model_of_other_plans_stops_training(trained, tmp_path, e2e):
    other = tmp_path / "other_model"
    shutil.copytree(trained["segmentation_model"], other)
    plans = json.loads((other / "plans.json").read_text())
    plans["configurations"]["2d"]["patch_size"] = [16, 16]
    (other / "plans.json").write_text(json.dumps(plans))
    environment = dict(trained["environment"], **{SEGMENTATION_MODEL_VARIABLE: str(other)})
    output = e2e.train_expecting_failure(trained["workspace"], "SiANDiagnosisTrainer_FrozenSegmentation", "2d",
                                         environment)
    assert "patch_size" in output and str(other / "plans.json") in output


def test_nnunets_pretrained_weights_fill_the_segmentation_part(shared_pipeline):
    started = shared_pipeline("diagnosis_started_from_the_segmentation_model")
    assert "Loading pretrained weights from file" in started["train_log"].read_text()
    segmentation = torch.load(started["segmentation_checkpoint"], map_location="cpu",
                              weights_only=False)["network_weights"]
    initial_weights = torch.load(started["initial_weights"], map_location="cpu", weights_only=False)["network_weights"]
    assert all(torch.equal(initial_weights[k], v) for k, v in segmentation.items())
    assert any(k.startswith("diagnosis.") for k in initial_weights)
