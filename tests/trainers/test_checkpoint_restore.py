"""What our trainers add survives nnU-Net's ``save_checkpoint`` and ``load_checkpoint`` into a fresh trainer (what
``nnUNetv2_train --c`` does): the dual loss past its switch, a frozen segmentation part, the diagnosis epoch scores
and the best-checkpoint metric.

The trainers are real (a ``_Short`` variant of a registered trainer, built and initialised by nnU-Net) on the plans of
the shared ``planned_synthetic`` fixture. Their preprocessed data folder holds only empty ``.b2nd`` files: enough for
nnU-Net to name the cases, and no step here reads data: each epoch runs nnU-Net's hooks in ``run_training``'s order
on one random batch (:func:`run_epoch`), so the checkpoints are written by ``on_epoch_end`` as in a real run.
"""

import json
from pathlib import Path
from typing import Optional

import pytest
import torch

from nnunetv2.training.logging.nnunet_logger import MetaLogger
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.diagnosis.labels import write_diagnosis_labels
from nnunet_ext.diagnosis.segmentation_model import SEGMENTATION_MODEL_VARIABLE
from nnunet_ext.trainers.deep_supervision_loss import unwrapped
from nnunet_ext.trainers.registry import get_trainer

CONFIGURATION = "2d"
CASES = {"synth_000": 0, "synth_001": 1, "synth_002": 0, "synth_003": 1}  # case id -> diagnosis class


@pytest.fixture
def nnunet_folders(planned_synthetic, tmp_path, monkeypatch) -> dict:
    """nnU-Net's folders for in-process trainers: a preprocessed dataset with the shared plans, placeholder data
    files and diagnosis labels, an empty results folder, no raw data."""
    plans_file, dataset_json = planned_synthetic["nnUNetPlans"]
    plans = json.loads(plans_file.read_text())
    dataset = tmp_path / "nnUNet_preprocessed" / plans["dataset_name"]
    data = dataset / plans["configurations"][CONFIGURATION]["data_identifier"]
    data.mkdir(parents=True)
    for case in CASES:
        (data / f"{case}.b2nd").touch()
    write_diagnosis_labels(dataset, ["no lesion", "lesion"], CASES)
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "nnUNet_preprocessed"))
    monkeypatch.setenv("nnUNet_results", str(tmp_path / "nnUNet_results"))
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "no_raw_data"))
    monkeypatch.setenv("NNUNET_EXT_SAVE_EVERY", "1")  # checkpoint_latest.pth after every epoch but the last
    # nnU-Net's own part of on_train_start makes data loaders (of real data) and copies files: only initialise;
    # its progress plot (2 s an epoch) is not what is tested
    monkeypatch.setattr(nnUNetTrainer, "on_train_start",
                        lambda self: None if self.was_initialized else self.initialize())
    monkeypatch.setattr(MetaLogger, "plot_progress_png", lambda self, folder: None)
    return {"plans": plans, "dataset_json": dataset_json}


def new_trainer(name: str, folders: dict, continue_training: bool = False) -> nnUNetTrainer:
    """The trainer as ``nnUNetv2_train`` constructs it (``--c``: ``continue_training``)."""
    plans = dict(json.loads(json.dumps(folders["plans"])), continue_training=continue_training)
    return get_trainer(name).trainer_class(plans, CONFIGURATION, 0, folders["dataset_json"], torch.device("cpu"))


def random_batch(trainer: nnUNetTrainer) -> dict:
    """A batch as nnU-Net's data loader gives it: images, a label map per deep-supervision scale, case ids."""
    torch.manual_seed(0)
    patch = trainer.configuration_manager.patch_size
    keys = list(CASES)[:2]  # both diagnosis classes, so that the epoch's AUC is defined
    targets = [torch.randint(0, 3, (len(keys), 1, *[round(p * s) for p, s in zip(patch, scale)]))
               for scale in trainer._get_deep_supervision_scales()]
    return {"data": torch.randn(len(keys), trainer.num_input_channels, *patch), "target": targets, "keys": keys}


def run_epoch(trainer: nnUNetTrainer, batch: dict, diagnosis_score: Optional[float] = None) -> None:
    """One epoch of nnU-Net's hooks in the order of ``nnUNetTrainer.run_training``: one training and one
    validation step on ``batch``; with ``diagnosis_score``, the epoch's diagnosis score replaced by it before
    ``on_epoch_end``."""
    trainer.on_epoch_start()
    trainer.on_train_epoch_start()
    trainer.on_train_epoch_end([trainer.train_step(batch)])
    with torch.no_grad():
        trainer.on_validation_epoch_start()
        trainer.on_validation_epoch_end([trainer.validation_step(batch)])
    if diagnosis_score is not None:
        trainer.logger.log("val_diagnosis_auc", diagnosis_score, trainer.current_epoch)
    trainer.on_epoch_end()


def log_since_loading(trainer: nnUNetTrainer) -> str:
    """The training log after the checkpoint was loaded (two trainers made within a second share a log file)."""
    return Path(trainer.log_file).read_text().rsplit("Loaded the checkpoint", 1)[1]


def test_the_dual_loss_continues_after_its_switch(nnunet_folders, monkeypatch):
    monkeypatch.setenv("NNUNET_EXT_EPOCHS", "4")  # loss_seg in epochs 0 and 1, the dual loss from epoch 2
    first = new_trainer("UNetDualLossTrainer_Short", nnunet_folders)
    first.on_train_start()
    batch = random_batch(first)
    for _ in range(3):
        run_epoch(first, batch)
    assert unwrapped(first.loss).dual
    assert "Epoch 2: switching from loss_seg to the dual loss" in Path(first.log_file).read_text()

    continued = new_trainer("UNetDualLossTrainer_Short", nnunet_folders, continue_training=True)
    continued.load_checkpoint(str(Path(continued.output_folder) / "checkpoint_latest.pth"))
    assert continued.current_epoch == 3 and continued._best_ema == first._best_ema
    continued.on_train_start()
    continued.on_train_epoch_start()
    assert unwrapped(continued.loss).dual
    log = log_since_loading(continued)
    assert "Epoch 3: continuing with the dual loss" in log and "switched at epoch 2" in log
    assert "switching" not in log  # the switch happened once, in the first run


def segmentation_parameters(network) -> dict:
    return {k: p.detach().clone() for k, p in network.named_parameters() if not k.startswith("diagnosis.")}


def test_frozen_segmentation_diagnosis_scores_and_best_metric_are_restored(nnunet_folders, segmentation_model,
                                                                          monkeypatch):
    monkeypatch.setenv("NNUNET_EXT_EPOCHS", "2")
    monkeypatch.setenv(SEGMENTATION_MODEL_VARIABLE, str(segmentation_model["folder"]))
    name = "SiANDiagnosisTrainer_FrozenSegmentation_Short"
    first = new_trainer(name, nnunet_folders)
    first.on_train_start()
    batch = random_batch(first)
    run_epoch(first, batch)
    scores = first.logger.get_value("val_diagnosis_auc", step=None)
    assert len(scores) == 1 and 0.0 <= scores[0] <= 1.0

    continued = new_trainer(name, nnunet_folders, continue_training=True)
    continued.load_checkpoint(str(Path(continued.output_folder) / "checkpoint_latest.pth"))
    network = continued.network
    assert network.segmentation_frozen
    assert not any(p.requires_grad for k, p in network.named_parameters() if not k.startswith("diagnosis."))
    assert all(p.requires_grad for p in network.diagnosis.parameters())
    continued.on_train_start()  # as run_training does after --c loaded the checkpoint
    assert continued.logger.get_value("val_diagnosis_auc", step=None) == scores

    frozen, diagnosis = segmentation_parameters(network), network.diagnosis.state_dict()
    diagnosis = {k: v.clone() for k, v in diagnosis.items()}
    run_epoch(continued, batch)
    assert all(torch.equal(p, frozen[k]) for k, p in segmentation_parameters(network).items())
    assert any(not torch.equal(v, diagnosis[k]) for k, v in network.diagnosis.state_dict().items())
    assert continued.logger.get_value("val_diagnosis_auc", step=None)[:1] == scores
    assert len(continued.logger.get_value("val_diagnosis_auc", step=None)) == 2


def best_checkpoint_epoch(trainer: nnUNetTrainer) -> int:
    """The epoch whose end ``checkpoint_best.pth`` holds."""
    checkpoint = torch.load(Path(trainer.output_folder) / "checkpoint_best.pth", map_location="cpu",
                            weights_only=False)
    return checkpoint["current_epoch"] - 1


def test_the_best_checkpoint_follows_the_diagnosis_score_also_after_continuing(nnunet_folders, segmentation_model,
                                                                               monkeypatch):
    """With a frozen segmentation nnU-Net's pseudo Dice is the same every epoch, so its rule keeps the first epoch.
    The EMA of the scores 0.5, 0.6, 0.2 is 0.5, 0.51 (best), 0.479; continued, 0.55 gives 0.4861 (not better, but
    better than nothing: a continued run that forgot the history would take it), then 1.0 gives 0.5375 (best)."""
    monkeypatch.setenv("NNUNET_EXT_EPOCHS", "5")
    monkeypatch.setenv(SEGMENTATION_MODEL_VARIABLE, str(segmentation_model["folder"]))
    name = "SiANDiagnosisTrainer_FrozenSegmentation_Short"
    first = new_trainer(name, nnunet_folders)
    first.on_train_start()
    batch = random_batch(first)
    for score in (0.5, 0.6, 0.2):
        run_epoch(first, batch, score)
    assert first.logger.get_value("ema_val_diagnosis_auc", step=None) == pytest.approx([0.5, 0.51, 0.479])
    assert best_checkpoint_epoch(first) == 1

    continued = new_trainer(name, nnunet_folders, continue_training=True)
    continued.load_checkpoint(str(Path(continued.output_folder) / "checkpoint_latest.pth"))
    continued.on_train_start()
    assert continued.current_epoch == 3
    run_epoch(continued, batch, 0.55)
    assert best_checkpoint_epoch(continued) == 1
    run_epoch(continued, batch, 1.0)
    assert best_checkpoint_epoch(continued) == 4
    assert continued.logger.get_value("ema_val_diagnosis_auc", step=None) == pytest.approx(
        [0.5, 0.51, 0.479, 0.4861, 0.53749])
