"""The dual-loss mixin: its checks before training, and the switch from loss_seg to loss_dual."""

import numpy as np
import pytest
import SimpleITK as sitk
from types import SimpleNamespace

from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.utilities.label_handling.label_handling import LabelManager

from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.losses.dual_dice import DualDiceLoss
from nnunet_ext.losses.full_resolution_presence import FullResolutionPresenceWrapper
from nnunet_ext.trainers.dual_loss import DualLoss


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


@pytest.mark.parametrize("attribute, value, message", [("dual_loss_weight", 1.2, r"lambda\) is 1.2, outside \[0, 1\]"),
                                                       ("dual_loss_weight", -0.1, "outside"),
                                                       ("dual_loss_start", 2.0, r"dual_loss_start is 2.0")])
def test_settings_outside_zero_one_stop_before_training(tmp_path, attribute, value, message):
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
