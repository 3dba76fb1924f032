"""A model trained under a trainer's former name continues with ``--c`` and predicts under that name.

``DualLossTrainer_Short`` is the former name of ``UNetDualLossTrainer_Short`` (a real subclass, registered as
deprecated). An older nnunet_ext wrote such a model: its folder ``DualLossTrainer_Short__nnUNetPlans__2d`` and
``checkpoint['trainer_name']``. Were the old name a mere alias of the new class, ``-tr DualLossTrainer_Short --c``
would look for the checkpoint in ``UNetDualLossTrainer_Short__...`` and silently start from scratch.
"""

from pathlib import Path

import pytest
import torch

from nnunet_ext.cli.nnunet_commands import run_nnunet_command, train

pytestmark = pytest.mark.e2e

OLD_NAME, CONFIGURATION = "DualLossTrainer_Short", "2d"
SEGMENTATION_MODEL = ("model", "PlainUNetTrainer_Short", CONFIGURATION)


def continue_and_predict_an_old_name_model(runs, folder: Path) -> dict:
    """The fold folder of an old-name model one epoch before its end (nnU-Net's planned U-Net, the network that
    UNetDualLossTrainer keeps, saved as ``checkpoint_latest.pth`` after epoch 0 under the former trainer name);
    then ``nnUNetv2_train -tr DualLossTrainer_Short --c`` and ``nnUNetv2_predict -tr DualLossTrainer_Short``."""
    workspace = runs.workspace().result()
    source = runs.model(*SEGMENTATION_MODEL[1:]).result().fold_0 / "checkpoint_final.pth"
    checkpoint = torch.load(source, map_location="cpu", weights_only=False)
    checkpoint["trainer_name"] = OLD_NAME
    checkpoint["current_epoch"] = 1  # nnU-Net saves the next epoch to run
    checkpoint["logging"] = {key: values[:1] for key, values in checkpoint["logging"].items()}
    fold_folder = workspace.model_folder(OLD_NAME, CONFIGURATION) / "fold_0"
    fold_folder.mkdir(parents=True)
    torch.save(checkpoint, fold_folder / "checkpoint_latest.pth")
    folder.mkdir(parents=True)
    train(runs.dataset_id, CONFIGURATION, 0, OLD_NAME, workspace.environment, folder / "continue.log",
          extra=["--c"])
    predictions = folder / "predictions"
    run_nnunet_command(["nnUNetv2_predict", *runs.predict_arguments(workspace, OLD_NAME, CONFIGURATION,
                                                                     predictions)],
                       workspace.environment, folder / "predict.log")
    return {"fold_folder": fold_folder, "predictions": predictions}


SHARED_PIPELINES = {"old_name_continued": (continue_and_predict_an_old_name_model, [SEGMENTATION_MODEL])}


def test_an_old_name_checkpoint_continues_and_predicts(shared_pipeline, e2e):
    result = shared_pipeline("old_name_continued")
    fold_folder = result["fold_folder"]
    log_text = "".join(p.read_text() for p in fold_folder.glob("training_log_*.txt"))
    assert "DualLossTrainer_Short is the former name of UNetDualLossTrainer_Short" in log_text
    assert "Epoch 1" in log_text and "Epoch 0" not in log_text  # continued, not started afresh
    final = torch.load(fold_folder / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert final["trainer_name"] == OLD_NAME and final["current_epoch"] == 2
    assert (fold_folder / "validation" / "lesion_presence_summary.json").is_file()  # the dual-loss family's
    assert sorted(p.name for p in result["predictions"].glob("*.nii.gz")) == [f"{c}.nii.gz" for c in e2e.test_cases]
