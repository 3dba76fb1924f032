"""Mixin: train with L-Net's dual loss (``nnunet_ext.losses.dual_dice``) and the paper's schedule.

The paper (sec. 4.1, Implementations) trains with ``loss_seg`` first and switches to ``loss_dual`` once the learning
rate is reduced, which it does when the validation performance has not improved in 4 consecutive validations.
nnU-Net's poly schedule has no such step; ``dual_loss_switch`` chooses the stand-in:

- ``"fraction"`` (default): the switch happens at the start of epoch ``ceil(dual_loss_start * num_epochs)``; the
  default ``dual_loss_start = 0.5`` is where nnU-Net's poly learning rate has fallen to about half its initial
  value. ``dual_loss_start = 0`` uses the dual loss from the first epoch.
- ``"plateau"``: the switch happens at the start of the first epoch, not before ``dual_loss_min_epoch``, after nnU-Net's
  EMA pseudo Dice (``ema_fg_dice``, the validation signal of its best checkpoint) has not improved for
  ``dual_loss_patience`` epochs (:func:`epochs_without_improvement`); never while that EMA has not yet risen above 0.
  Under DDP every rank logs the same gathered EMA, so all ranks switch at the same epoch.

The switch is written to the training log. The loss object is not in nnU-Net's checkpoints: a training continued
(``--c``) past the switch builds it anew and turns it dual again at its first epoch, which the log then calls a
continuation, not a second switch. In the fraction schedule the epoch gives the switch; in the plateau schedule,
nnU-Net's logger, which checkpoints hold, records for every epoch whether it trained with the dual loss
(``dual_loss_active``), so the continued run knows whether and when it switched (the EMA may have risen since).
Every output of nnU-Net's deep supervision gets the same loss, with nnU-Net's weights, and the presence targets of
the full-resolution target (``FullResolutionPresenceWrapper``: a lesion smaller than a low scale's stride vanishes
from that scale's nearest-neighbour-downsampled target, not from the image).
"""

import math
import numbers
import os
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
from batchgenerators.utilities.file_and_folder_operations import join

from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.losses.dual_dice import DualDiceLoss
from nnunet_ext.trainers.deep_supervision_loss import unwrapped, with_full_resolution_presence


SWITCHES = ("fraction", "plateau")
DUAL_LOSS_ACTIVE = "dual_loss_active"  # key in nnU-Net's logger (plateau schedule): 1 for an epoch of the dual loss


class DualLoss:
    """Place before an nnU-Net trainer class in the bases. Class attributes set the loss."""

    dual_loss_weight = 0.8  # lambda of eq. (2): weight of loss_seg (the paper's value)
    dual_loss_switch = "fraction"  # or "plateau": when loss_dual replaces loss_seg (see the module docstring)
    dual_loss_start = 0.5  # "fraction": fraction of num_epochs after which loss_dual replaces loss_seg
    # "plateau": epochs without a new best EMA pseudo Dice before the switch. The paper waits 4 validations of 1K
    # batches; nnU-Net checks every epoch (250 batches) but its EMA (0.9 per epoch) already averages about 10
    # epochs, so a stall of 5 of them is half its memory, past the jitter of a plateau and far from its rise
    dual_loss_patience = 5
    # "plateau": the earliest switch epoch. The first EMA values are the first epochs' pseudo Dice, nearly unsmoothed
    # (the first epoch still weighs 0.9 ** 10 = 0.35 at epoch 10), and an early pause of the rise is no plateau
    dual_loss_min_epoch = 10

    def dual_loss_start_epoch(self) -> int:
        return math.ceil(self.dual_loss_start * self.num_epochs)

    def _build_loss(self):
        name = self.__class__.__name__
        if not 0.0 <= self.dual_loss_weight <= 1.0:
            raise UnsupportedConfigurationError(
                f"{name}.dual_loss_weight (lambda) is {self.dual_loss_weight}, outside [0, 1]: lambda weights "
                f"loss_seg and 1 - lambda weights loss_clf. The paper uses 0.8.")
        if self.dual_loss_switch not in SWITCHES:
            raise UnsupportedConfigurationError(
                f"{name}.dual_loss_switch is {self.dual_loss_switch!r}: it must be 'fraction' (the dual loss "
                f"replaces the segmentation loss after dual_loss_start of the epochs) or 'plateau' (once the EMA "
                f"pseudo Dice has not improved for dual_loss_patience epochs).")
        if not 0.0 <= self.dual_loss_start <= 1.0:
            raise UnsupportedConfigurationError(
                f"{name}.dual_loss_start is {self.dual_loss_start}, outside [0, 1]: it is the fraction of the "
                f"training after which the dual loss replaces the segmentation loss.")
        if not _is_count(self.dual_loss_patience, 1):
            raise UnsupportedConfigurationError(
                f"{name}.dual_loss_patience is {self.dual_loss_patience!r}: it must be a whole number of epochs, at "
                f"least 1, without a new best EMA pseudo Dice before the dual loss replaces the segmentation loss.")
        if not _is_count(self.dual_loss_min_epoch, 0):
            raise UnsupportedConfigurationError(
                f"{name}.dual_loss_min_epoch is {self.dual_loss_min_epoch!r}: it must be a whole number, at least "
                f"0, the earliest epoch at which a plateau may switch to the dual loss.")
        check_presence_targets(self.label_manager, self.dataset_json,
                               join(self.preprocessed_dataset_folder_base, "gt_segmentations"),
                               self.plans_manager.image_reader_writer_class().read_seg)
        if self.dual_loss_switch == "plateau":
            earliest = max(self.dual_loss_min_epoch, self.dual_loss_patience + 1)
            if earliest >= self.num_epochs:
                self.print_to_log_file(
                    f"Warning: with dual_loss_switch = 'plateau', the dual loss cannot start before epoch {earliest} "
                    f"(dual_loss_min_epoch = {self.dual_loss_min_epoch}, dual_loss_patience = "
                    f"{self.dual_loss_patience}), and this training has {self.num_epochs} epochs: it trains with "
                    f"loss_seg only.")
        dual_from_the_start = self.dual_loss_switch == "fraction" and self.dual_loss_start_epoch() == 0
        dual_loss = DualDiceLoss(self.dual_loss_weight, regions=self.label_manager.has_regions,
                                 ignore_label=self.label_manager.ignore_label, dual=dual_from_the_start)
        return with_full_resolution_presence(super()._build_loss(), dual_loss)

    def on_train_epoch_start(self):
        super().on_train_epoch_start()
        if self.dual_loss_switch == "plateau":
            self._switch_on_a_plateau(unwrapped(self.loss))
        else:
            self._switch_at_the_fraction(unwrapped(self.loss))

    def _dual_loss_description(self, loss) -> str:
        return f"the dual loss {loss.weight_segmentation} * loss_seg + {1 - loss.weight_segmentation:.2f} * loss_clf"

    def _switch_at_the_fraction(self, loss) -> None:
        start = self.dual_loss_start_epoch()
        if not loss.dual and self.current_epoch >= start:
            loss.dual = True
            dual_loss = self._dual_loss_description(loss)
            schedule = f"dual_loss_start = {self.dual_loss_start} of {self.num_epochs} epochs"
            if self.current_epoch == start:
                self.print_to_log_file(f"Epoch {self.current_epoch}: switching from loss_seg to {dual_loss} "
                                       f"({schedule})")
            else:  # continued (--c) from a checkpoint written after the switch: the loss is built anew
                self.print_to_log_file(f"Epoch {self.current_epoch}: continuing with {dual_loss}, switched at "
                                       f"epoch {start} ({schedule})")

    def dual_loss_switch_epoch(self) -> Optional[int]:
        """Plateau schedule: the epoch whose start switched to the dual loss, from nnU-Net's logger (so also in a
        training continued from a checkpoint); None before the switch."""
        active = self.logger.get_checkpoint().get(DUAL_LOSS_ACTIVE, [])
        return next((epoch for epoch, dual in enumerate(active[:self.current_epoch]) if dual == 1), None)

    def _switch_on_a_plateau(self, loss) -> None:
        logged = self.logger.get_checkpoint()  # nnU-Net's logged lists, as its checkpoints hold them
        active = logged.setdefault(DUAL_LOSS_ACTIVE, [])
        # one value per epoch, as nnU-Net's logger wants (its progress plot stops at the shortest list): epochs of a
        # checkpoint written without this key are unknown
        active.extend([math.nan] * (self.current_epoch - len(active)))
        switched_at = self.dual_loss_switch_epoch()
        schedule = f"dual_loss_switch = 'plateau', dual_loss_patience = {self.dual_loss_patience}"
        if switched_at is not None:
            if not loss.dual:  # continued (--c) from a checkpoint written after the switch: the loss is built anew
                loss.dual = True
                self.print_to_log_file(f"Epoch {self.current_epoch}: continuing with "
                                       f"{self._dual_loss_description(loss)}, switched at epoch {switched_at} "
                                       f"({schedule})")
        elif not loss.dual and self.current_epoch >= self.dual_loss_min_epoch:
            ema = list(self.logger.get_value("ema_fg_dice", step=None))[:self.current_epoch]
            best_epoch, stalled = epochs_without_improvement(ema)
            if best_epoch is not None and stalled >= self.dual_loss_patience:
                loss.dual = True
                last = range(self.current_epoch - self.dual_loss_patience, self.current_epoch)
                epochs = f"epoch {last[0]}" if len(last) == 1 else f"epochs {last[0]}-{last[-1]}"
                self.print_to_log_file(
                    f"Epoch {self.current_epoch}: switching from loss_seg to {self._dual_loss_description(loss)} "
                    f"({schedule}): the EMA pseudo Dice has not improved for {stalled} epochs, best "
                    f"{ema[best_epoch]:.4f} at epoch {best_epoch}, {epochs}: "
                    f"{', '.join(f'{ema[e]:.4f}' for e in last)}")
        self.logger.log(DUAL_LOSS_ACTIVE, int(loss.dual), self.current_epoch)


def _is_count(value, least: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= least


def epochs_without_improvement(ema: Sequence[float]) -> Tuple[Optional[int], int]:
    """``(epoch of the best value, epochs after it)`` of the EMA pseudo Dice of epochs ``0 .. len(ema) - 1``. An
    epoch improves when its value is above every earlier one (as nnU-Net's best checkpoint: a tie does not);
    NaN never improves. The best epoch is None, and nothing counts as a plateau, while no value is above 0: a
    network that has not found a lesion yet is not on a plateau."""
    best_epoch = None
    for epoch, value in enumerate(ema):
        if not math.isnan(value) and (best_epoch is None or value > ema[best_epoch]):
            best_epoch = epoch
    if best_epoch is None or not ema[best_epoch] > 0:
        return None, 0
    return best_epoch, len(ema) - 1 - best_epoch


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
