"""The dual-loss mixin: its checks before training, and the switch from loss_seg to loss_dual (after a fraction of
the epochs, or on a plateau of the EMA pseudo Dice, also across a checkpoint)."""

import os

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from types import SimpleNamespace

from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
from nnunetv2.training.logging.nnunet_logger import MetaLogger
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.label_handling.label_handling import LabelManager

from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.losses.dual_dice import DualDiceLoss
from nnunet_ext.losses.full_resolution_presence import FullResolutionPresenceWrapper
from nnunet_ext.trainers.deep_supervision_loss import unwrapped
from nnunet_ext.trainers.dual_loss import DUAL_LOSS_ACTIVE, DualLoss


class NnunetTrainerStandIn:
    """The few nnUNetTrainer hooks the mixin builds on (a real trainer needs a preprocessed dataset on disk)."""

    def __init__(self, tmp_path, labels, num_epochs=4):
        self.dataset_json = {"labels": labels, "file_ending": ".nii.gz"}
        self.label_manager = LabelManager(labels, None)
        self.preprocessed_dataset_folder_base = str(tmp_path)
        (tmp_path / "gt_segmentations").mkdir(exist_ok=True)
        self.plans_manager = SimpleNamespace(image_reader_writer_class=SimpleITKIO)  # a property in PlansManager
        self.num_epochs, self.current_epoch, self.log = num_epochs, 0, []

    def _build_loss(self):
        return DeepSupervisionWrapper(object(), [0.57, 0.43, 0.0])

    def on_train_epoch_start(self):
        pass

    def print_to_log_file(self, *args, **kwargs):
        self.log.append(" ".join(map(str, args)))


class DualLossTrainer(DualLoss, NnunetTrainerStandIn):
    pass


def write_labels(folder, case, array):
    sitk.WriteImage(sitk.GetImageFromArray(array.astype(np.uint8)), str(folder / "gt_segmentations" / f"{case}.nii.gz"))


LABELS = {"background": 0, "lesion": 1}


def test_loss_seg_first_then_the_dual_loss_from_half_the_training(tmp_path):
    trainer = DualLossTrainer(tmp_path, LABELS, num_epochs=4)
    trainer.loss = trainer._build_loss()
    assert isinstance(trainer.loss, DeepSupervisionWrapper) and trainer.loss.weight_factors == (0.57, 0.43, 0.0)
    assert isinstance(trainer.loss, FullResolutionPresenceWrapper)  # presence targets from the full resolution
    inner = trainer.loss.loss
    assert isinstance(inner, DualDiceLoss) and inner.weight_segmentation == 0.8 and not inner.dual
    for epoch, expected in [(0, False), (1, False), (2, True), (3, True)]:
        trainer.current_epoch = epoch
        trainer.on_train_epoch_start()
        assert inner.dual is expected, epoch
    assert len(trainer.log) == 1 and trainer.log[0].startswith("Epoch 2: switching from loss_seg to the dual loss")


def test_dual_loss_from_the_start_when_asked(tmp_path):
    trainer = DualLossTrainer(tmp_path, LABELS)
    trainer.dual_loss_start = 0.0
    assert trainer._build_loss().loss.dual


BAD_SETTINGS = [("dual_loss_weight", 1.2, r"lambda\) is 1.2, outside \[0, 1\]"),
                ("dual_loss_weight", -0.1, "outside"),
                ("dual_loss_start", 2.0, r"dual_loss_start is 2.0"),
                ("dual_loss_switch", "step", r"dual_loss_switch is 'step'.*'fraction'.*'plateau'"),
                ("dual_loss_patience", 0, r"dual_loss_patience is 0.*at least 1"),
                ("dual_loss_patience", 2.5, r"dual_loss_patience is 2\.5"),
                ("dual_loss_patience", True, r"dual_loss_patience is True"),
                ("dual_loss_min_epoch", -1, r"dual_loss_min_epoch is -1.*at least 0"),
                ("dual_loss_min_epoch", "5", r"dual_loss_min_epoch is '5'")]


@pytest.mark.parametrize("attribute, value, message", BAD_SETTINGS)
def test_bad_settings_stop_before_training(tmp_path, attribute, value, message):
    trainer = DualLossTrainer(tmp_path, LABELS)
    setattr(trainer, attribute, value)
    with pytest.raises(UnsupportedConfigurationError, match=message):
        trainer._build_loss()


def test_a_case_labelled_only_with_the_ignore_label_is_named(tmp_path):
    labels = {"background": 0, "lesion": 1, "ignore": 2}
    trainer = DualLossTrainer(tmp_path, labels)
    write_labels(tmp_path, "case_a", np.array([[[0, 1, 2]]]))
    write_labels(tmp_path, "case_b", np.full((2, 3, 3), 2))
    with pytest.raises(UnsupportedConfigurationError, match=r"case_b\.nii\.gz \(case case_b\) holds only the ignore"):
        trainer._build_loss()


def test_ignore_label_with_usable_cases_is_accepted(tmp_path):
    trainer = DualLossTrainer(tmp_path, {"background": 0, "lesion": 1, "ignore": 2})
    write_labels(tmp_path, "case_a", np.array([[[0, 2, 2]]]))
    assert trainer._build_loss().loss.ignore_label == 2


def test_a_dataset_without_foreground_class_is_refused(tmp_path):
    trainer = DualLossTrainer(tmp_path, {"background": 0, "ignore": 1})
    with pytest.raises(UnsupportedConfigurationError, match="declare no foreground class"):
        trainer._build_loss()


class PlateauStandIn(NnunetTrainerStandIn):
    """The stand-in with nnU-Net's logger, an ``on_epoch_end`` that writes ``checkpoint_latest.pth`` with nnU-Net's own
    ``save_checkpoint`` (of a one-parameter network) and counts the epoch, and nnU-Net's ``load_checkpoint``. The
    EMA pseudo Dice of an epoch is set by the test (:func:`train`), where nnU-Net's validation would log it."""

    def __init__(self, tmp_path, labels, num_epochs=100):
        super().__init__(tmp_path, labels, num_epochs)
        self.output_folder = str(tmp_path)
        self.logger = MetaLogger(self.output_folder, False)
        self.network = torch.nn.Linear(1, 1)
        self.optimizer = torch.optim.SGD(self.network.parameters(), lr=0.01)
        self.grad_scaler, self._best_ema, self.my_init_kwargs = None, None, {}
        self.local_rank, self.is_ddp, self.disable_checkpointing, self.was_initialized = 0, False, False, True
        self.device, self.inference_allowed_mirroring_axes = torch.device("cpu"), None

    save_checkpoint = nnUNetTrainer.save_checkpoint
    load_checkpoint = nnUNetTrainer.load_checkpoint

    def checkpoint(self) -> str:
        return os.path.join(self.output_folder, "checkpoint_latest.pth")

    def on_epoch_end(self):
        self.save_checkpoint(self.checkpoint())
        self.current_epoch += 1


class PlateauTrainer(DualLoss, PlateauStandIn):
    dual_loss_switch = "plateau"
    dual_loss_patience = 3
    dual_loss_min_epoch = 0


def plateau_trainer(tmp_path, **attributes) -> PlateauTrainer:
    trainer = PlateauTrainer(tmp_path, LABELS)
    for name, value in attributes.items():
        setattr(trainer, name, value)
    trainer.loss = trainer._build_loss()
    return trainer


def train(trainer, ema_per_epoch) -> list:
    """One epoch per EMA pseudo Dice, from the trainer's current epoch on; whether each trained with the dual loss."""
    dual = []
    for ema in ema_per_epoch:
        trainer.on_train_epoch_start()
        dual.append(unwrapped(trainer.loss).dual)
        trainer.logger.log("ema_fg_dice", ema, trainer.current_epoch)  # nnU-Net: on_validation_epoch_end
        trainer.on_epoch_end()
    return dual


def test_plateau_switch_after_patience_epochs_without_a_new_best_ema_and_not_before(tmp_path):
    trainer = plateau_trainer(tmp_path, dual_loss_start=0.0)  # the fraction schedule's setting plays no part
    assert not unwrapped(trainer.loss).dual
    # best 0.30 at epoch 2; epochs 3-5 do not improve (a tie is no improvement): the dual loss from epoch 6
    dual = train(trainer, [0.10, 0.20, 0.30, 0.29, 0.30, 0.28, 0.27, 0.35])
    assert dual == [False] * 6 + [True] * 2
    assert trainer.dual_loss_switch_epoch() == 6
    assert trainer.logger.get_value(DUAL_LOSS_ACTIVE, step=None) == [0] * 6 + [1] * 2
    assert trainer.log == [
        "Epoch 6: switching from loss_seg to the dual loss 0.8 * loss_seg + 0.20 * loss_clf (dual_loss_switch = "
        "'plateau', dual_loss_patience = 3): the EMA pseudo Dice has not improved for 3 epochs, best 0.3000 at "
        "epoch 2, epochs 3-5: 0.2900, 0.3000, 0.2800"]


def test_a_new_best_ema_restarts_the_count(tmp_path):
    trainer = plateau_trainer(tmp_path)
    # epochs 2 and 3 do not improve, epoch 4 does; then 5, 6 and 7 do not: the dual loss from epoch 8
    dual = train(trainer, [0.10, 0.20, 0.15, 0.20, 0.25, 0.24, 0.25, 0.20, 0.20])
    assert dual == [False] * 8 + [True]
    assert trainer.log[0].startswith("Epoch 8: switching") and "best 0.2500 at epoch 4" in trainer.log[0]


def test_no_plateau_switch_before_the_minimum_epoch_nor_while_the_ema_is_zero(tmp_path):
    trainer = plateau_trainer(tmp_path, dual_loss_patience=2, dual_loss_min_epoch=6)
    assert train(trainer, [0.30] * 8) == [False] * 6 + [True] * 2  # stalled from epoch 3 on, switched at 6
    assert trainer.log[0].startswith("Epoch 6: switching") and "not improved for 5 epochs" in trainer.log[0]

    no_lesion_found_yet = plateau_trainer(tmp_path, dual_loss_patience=2)
    assert train(no_lesion_found_yet, [0.0] * 6 + [0.01, 0.01, 0.01, 0.01]) == [False] * 9 + [True]
    assert no_lesion_found_yet.log[0].startswith("Epoch 9: switching")


def test_too_few_epochs_for_a_plateau_switch_are_named_in_the_log(tmp_path):
    trainer = PlateauTrainer(tmp_path, LABELS, num_epochs=4)
    trainer._build_loss()
    assert len(trainer.log) == 1 and "cannot start before epoch 4" in trainer.log[0]
    assert "this training has 4 epochs: it trains with loss_seg only" in trainer.log[0]
    trainer.num_epochs = 5
    trainer.log.clear()
    trainer._build_loss()
    assert trainer.log == []


def test_the_plateau_switch_survives_a_checkpoint(tmp_path):
    first = plateau_trainer(tmp_path, dual_loss_patience=2)
    # switched at epoch 4; after it the EMA rises, so the EMA alone would no longer call this a plateau
    assert train(first, [0.10, 0.30, 0.20, 0.20, 0.50, 0.60]) == [False] * 4 + [True] * 2

    continued = plateau_trainer(tmp_path, dual_loss_patience=2)  # as --c: the loss is built anew, not dual
    assert not unwrapped(continued.loss).dual
    continued.load_checkpoint(continued.checkpoint())
    assert continued.current_epoch == 6 and continued.dual_loss_switch_epoch() == 4
    assert train(continued, [0.65, 0.70]) == [True, True]
    assert continued.logger.get_value(DUAL_LOSS_ACTIVE, step=None) == [0] * 4 + [1] * 4
    assert continued.log == ["Epoch 6: continuing with the dual loss 0.8 * loss_seg + 0.20 * loss_clf, switched at "
                             "epoch 4 (dual_loss_switch = 'plateau', dual_loss_patience = 2)"]  # no second switch


def test_a_run_continued_before_its_plateau_switches_once_when_it_comes(tmp_path):
    first = plateau_trainer(tmp_path, dual_loss_patience=2)
    assert train(first, [0.10, 0.30, 0.20]) == [False] * 3
    continued = plateau_trainer(tmp_path, dual_loss_patience=2)
    continued.load_checkpoint(continued.checkpoint())
    assert train(continued, [0.25, 0.30, 0.30]) == [False, True, True]  # epochs 2 and 3 after the best of epoch 1
    assert len(continued.log) == 1 and continued.log[0].startswith("Epoch 4: switching")

