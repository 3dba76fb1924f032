"""Segmentation-assisted diagnosis end to end through nnU-Net's real CLIs and ours, on a small synthetic 2D dataset
with image-level labels ("lesion" / "no lesion"): train nnU-Net's segmentation model, then SiAN on it (frozen);
validation writes the diagnosis summary; ``nnunet_ext_predict`` writes one CSV row per case; the stock
``nnUNetv2_predict`` writes the same segmentations; batches carry their cases' labels with single- and
multi-process augmentation; a missing or wrong labels file stops ``nnUNetv2_train`` before training."""

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

from nnunet_ext.datasets.synthetic import generate_synthetic_dataset
from nnunet_ext.diagnosis.predictions_csv import read_diagnosis_csv
from nnunet_ext.diagnosis.segmentation_model import SEGMENTATION_MODEL_VARIABLE
from nnunet_ext.nnunet_commands import (command_path, nnunet_environment, plan_and_preprocess, results_folder,
                                        run_nnunet_command, train)

pytestmark = pytest.mark.e2e

DATASET_ID, DATASET_NAME = 504, "Dataset504_SyntheticLesions"
SEGMENTATION_TRAINER, TRAINER = "PlainUNetTrainer_Short", "SiANDiagnosisTrainer_FrozenSegmentation_Short"
TEST_CASES = ["synth_010", "synth_011"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("e2e_diagnosis")
    environment = nnunet_environment(work_dir, budget={"epochs": 2, "iterations": 3, "val_iterations": 2})
    raw = generate_synthetic_dataset(environment["nnUNet_raw"], dataset_id=DATASET_ID, num_training=10,
                                     num_test=2, shape=(16, 40, 40))
    plan_and_preprocess(DATASET_ID, ["2d"], environment, work_dir / "plan.log")
    train(DATASET_ID, "2d", 0, SEGMENTATION_TRAINER, environment, work_dir / "train_segmentation.log")
    segmentation_model = results_folder(environment, DATASET_NAME, SEGMENTATION_TRAINER, "2d")
    environment[SEGMENTATION_MODEL_VARIABLE] = str(segmentation_model)
    train(DATASET_ID, "2d", 0, TRAINER, environment, work_dir / "train_diagnosis.log")
    return {"work_dir": work_dir, "environment": environment, "raw": raw,
            "model": results_folder(environment, DATASET_NAME, TRAINER, "2d"),
            "segmentation_model": segmentation_model}


def test_validation_writes_the_diagnosis_summary_and_the_labels_travel(trained):
    model = trained["model"]
    validation = model / "fold_0" / "validation"
    summary = json.loads((validation / "diagnosis_summary.json").read_text())
    splits = json.loads((Path(trained["environment"]["nnUNet_preprocessed"]) / DATASET_NAME /
                         "splits_final.json").read_text())
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


def test_our_prediction_writes_one_diagnosis_per_case_and_the_stock_segmentations(trained):
    work_dir, environment, raw = trained["work_dir"], trained["environment"], trained["raw"]
    arguments = ["-i", raw / "imagesTs", "-d", DATASET_ID, "-c", "2d", "-f", 0, "-tr", TRAINER, "-device", "cpu",
                 "-npp", 1, "-nps", 1, "--disable_tta"]
    run_nnunet_command(["nnunet_ext_predict", *arguments, "-o", work_dir / "ours"], environment,
                       work_dir / "predict_ours.log")
    run_nnunet_command(["nnUNetv2_predict", *arguments, "-o", work_dir / "stock"], environment,
                       work_dir / "predict_stock.log")
    rows = read_diagnosis_csv(work_dir / "ours" / "diagnosis_predictions.csv")
    assert [row["case_id"] for row in rows] == TEST_CASES
    for row in rows:
        assert list(row["probabilities"]) == ["no lesion", "lesion"]
        assert sum(row["probabilities"].values()) == pytest.approx(1.0)
        assert row["predicted_class_name"] == max(row["probabilities"], key=row["probabilities"].get)
    assert not (work_dir / "stock" / "diagnosis_predictions.csv").exists()
    for case in TEST_CASES:
        ours = sitk.GetArrayFromImage(sitk.ReadImage(str(work_dir / "ours" / f"{case}.nii.gz")))
        stock = sitk.GetArrayFromImage(sitk.ReadImage(str(work_dir / "stock" / f"{case}.nii.gz")))
        assert np.array_equal(ours, stock)


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
        for b in batches]}))
""")


@pytest.mark.parametrize("augmentation_workers, augmenter", [("0", "SingleThreadedAugmenter"),
                                                             ("2", "NonDetMultiThreadedAugmenter")])
def test_batches_carry_the_labels_of_their_cases(trained, augmentation_workers, augmenter):
    environment = dict(trained["environment"], nnUNet_n_proc_DA=augmentation_workers)
    completed = subprocess.run([sys.executable, "-c", BATCH_SCRIPT, DATASET_NAME], env=environment,
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


def run_training_expecting_failure(trained, trainer=TRAINER):
    completed = subprocess.run([command_path("nnUNetv2_train"), str(DATASET_ID), "2d", "0", "-tr", trainer,
                                "-device", "cpu"], env=trained["environment"], capture_output=True, text=True,
                               timeout=600)
    assert completed.returncode != 0
    return completed.stdout + completed.stderr


def test_missing_or_wrong_labels_stop_training_before_it_starts(trained, tmp_path):
    raw_labels = trained["raw"] / "diagnosis_labels.json"
    preprocessed_labels = Path(trained["environment"]["nnUNet_preprocessed"]) / DATASET_NAME / raw_labels.name
    kept = tmp_path / "kept.json"
    shutil.copyfile(raw_labels, kept)
    try:
        raw_labels.unlink()
        preprocessed_labels.unlink(missing_ok=True)
        output = run_training_expecting_failure(trained, "SiANDiagnosisTrainer_Short")
        assert f"No diagnosis_labels.json found at {raw_labels}" in output
        content = json.loads(kept.read_text())
        content["labels"]["synth_002"] = 7
        raw_labels.write_text(json.dumps(content))
        output = run_training_expecting_failure(trained, "SiANDiagnosisTrainer_Short")
        assert "case 'synth_002' has label 7, which is not one of the declared classes" in output
    finally:
        shutil.copyfile(kept, raw_labels)
    assert not list((results_folder(trained["environment"], DATASET_NAME, "SiANDiagnosisTrainer_Short", "2d")
                     / "fold_0").glob("checkpoint_*.pth"))


def test_a_segmentation_model_of_other_plans_stops_training(trained, tmp_path):
    other = tmp_path / "other_model"
    shutil.copytree(trained["segmentation_model"], other)
    plans = json.loads((other / "plans.json").read_text())
    plans["configurations"]["2d"]["patch_size"] = [16, 16]
    (other / "plans.json").write_text(json.dumps(plans))
    environment = dict(trained["environment"], **{SEGMENTATION_MODEL_VARIABLE: str(other)})
    output = run_training_expecting_failure(dict(trained, environment=environment),
                                            "SiANDiagnosisTrainer_FrozenSegmentation")
    assert "patch_size" in output and str(other / "plans.json") in output


def test_nnunets_pretrained_weights_fill_the_segmentation_part(trained):
    work_dir, environment = trained["work_dir"], trained["environment"]
    checkpoint = trained["segmentation_model"] / "fold_0" / "checkpoint_final.pth"
    initial = work_dir / "initial_weights.pth"
    trainer = "SiANDiagnosisTrainer_Short"
    run_nnunet_command(["nnunet_ext_diagnosis_init", "-d", DATASET_ID, "-c", "2d", "-tr", trainer, "-i", checkpoint,
                        "-o", initial], environment, work_dir / "init.log")
    environment = dict(environment, NNUNET_EXT_EPOCHS="1", NNUNET_EXT_ITERATIONS="1", NNUNET_EXT_VAL_ITERATIONS="1")
    train(DATASET_ID, "2d", 0, trainer, environment, work_dir / "train_pretrained.log",
          extra=["-pretrained_weights", initial])
    log_text = (work_dir / "train_pretrained.log").read_text()
    assert "Loading pretrained weights from file" in log_text
    segmentation = torch.load(checkpoint, map_location="cpu", weights_only=False)["network_weights"]
    initial_weights = torch.load(initial, map_location="cpu", weights_only=False)["network_weights"]
    assert all(torch.equal(initial_weights[k], v) for k, v in segmentation.items())
    assert any(k.startswith("diagnosis.") for k in initial_weights)
