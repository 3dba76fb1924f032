"""Mixin: train with L-Net's dual loss (``nnunet_ext.losses.dual_dice``) and the paper's schedule.

The paper trains with ``loss_seg`` first and switches to ``loss_dual`` once the learning rate is reduced. nnU-Net's
poly schedule has no step, so the switch happens at the start of epoch ``ceil(dual_loss_start * num_epochs)``;
the default ``dual_loss_start = 0.5`` is where nnU-Net's poly learning rate has fallen to about half its initial
value. ``dual_loss_start = 0`` uses the dual loss from the first epoch. The switch is written to the training log.
The loss object is not in nnU-Net's checkpoints: a training continued (``--c``) past the switch builds it anew and
turns it dual again at its first epoch, which the log then calls a continuation, not a second switch.
Every output of nnU-Net's deep supervision gets the same loss, with nnU-Net's weights, and the presence targets of
the full-resolution target (``FullResolutionPresenceWrapper``: a lesion smaller than a low scale's stride vanishes
from that scale's nearest-neighbour-downsampled target, not from the image).
"""

import math
import os
from typing import Callable

import numpy as np
from batchgenerators.utilities.file_and_folder_operations import join

from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.losses.dual_dice import DualDiceLoss
from nnunet_ext.trainers.deep_supervision_loss import unwrapped, with_full_resolution_presence


class DualLoss:
    """Place before an nnU-Net trainer class in the bases. Class attributes set the loss."""

    dual_loss_weight = 0.8  # lambda of eq. (2): weight of loss_seg (the paper's value)
    dual_loss_start = 0.5  # fraction of num_epochs after which loss_dual replaces loss_seg

    def dual_loss_start_epoch(self) -> int:
        return math.ceil(self.dual_loss_start * self.num_epochs)

    def _build_loss(self):
        name = self.__class__.__name__
        if not 0.0 <= self.dual_loss_weight <= 1.0:
            raise UnsupportedConfigurationError(
                f"{name}.dual_loss_weight (lambda) is {self.dual_loss_weight}, outside [0, 1]: lambda weights "
                f"loss_seg and 1 - lambda weights loss_clf. The paper uses 0.8.")
        if not 0.0 <= self.dual_loss_start <= 1.0:
            raise UnsupportedConfigurationError(
                f"{name}.dual_loss_start is {self.dual_loss_start}, outside [0, 1]: it is the fraction of the "
                f"training after which the dual loss replaces the segmentation loss.")
        check_presence_targets(self.label_manager, self.dataset_json,
                               join(self.preprocessed_dataset_folder_base, "gt_segmentations"),
                               self.plans_manager.image_reader_writer_class().read_seg)
        dual_loss = DualDiceLoss(self.dual_loss_weight, regions=self.label_manager.has_regions,
                                 ignore_label=self.label_manager.ignore_label, dual=self.dual_loss_start_epoch() == 0)
        return with_full_resolution_presence(super()._build_loss(), dual_loss)

    def on_train_epoch_start(self):
        super().on_train_epoch_start()
        loss, start = unwrapped(self.loss), self.dual_loss_start_epoch()
        if not loss.dual and self.current_epoch >= start:
            loss.dual = True
            dual_loss = (f"the dual loss {loss.weight_segmentation} * loss_seg + "
                         f"{1 - loss.weight_segmentation:.2f} * loss_clf")
            schedule = f"dual_loss_start = {self.dual_loss_start} of {self.num_epochs} epochs"
            if self.current_epoch == start:
                self.print_to_log_file(f"Epoch {self.current_epoch}: switching from loss_seg to {dual_loss} "
                                       f"({schedule})")
            else:  # continued (--c) from a checkpoint written after the switch: the loss is built anew
                self.print_to_log_file(f"Epoch {self.current_epoch}: continuing with {dual_loss}, switched at "
                                       f"epoch {start} ({schedule})")


def check_presence_targets(label_manager, dataset_json: dict, ground_truth_folder: str,
                           read_segmentation: Callable) -> None:
    """Raise :class:`UnsupportedConfigurationError` when the labels cannot give image-level presence targets: no
    foreground class at all, or (with an ignore label) a training case whose label map holds nothing but the
    ignore label. Only datasets with an ignore label are read (with ``read_segmentation``, nnU-Net's reader for
    the dataset's file format), once, before training."""
    foreground = label_manager.foreground_regions if label_manager.has_regions else label_manager.foreground_labels
    if len(foreground) == 0:
        raise UnsupportedConfigurationError(
            f"The dataset.json labels {dataset_json.get('labels')} declare no foreground class, so there is no "
            f"lesion whose presence the dual loss could learn. Declare at least one foreground label.")
    ignore_label = label_manager.ignore_label
    if ignore_label is None:
        return
    ending = dataset_json["file_ending"]
    for file_name in sorted(f for f in os.listdir(ground_truth_folder) if f.endswith(ending)):
        labels, _ = read_segmentation(join(ground_truth_folder, file_name))
        if np.all(labels == ignore_label):
            raise UnsupportedConfigurationError(
                f"{join(ground_truth_folder, file_name)} (case {file_name[:-len(ending)]}) holds only the ignore "
                f"label {ignore_label}: no presence target can be derived for it. Annotate at least the absence of "
                f"lesions (background) in that case, or remove it from the dataset.")
