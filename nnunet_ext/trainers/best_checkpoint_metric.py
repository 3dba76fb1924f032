"""Mixin: a training continued from ``checkpoint_latest.pth`` compares its epochs with the best EMA pseudo Dice of
every epoch before it, including the checkpoint's last.

nnU-Net's ``on_epoch_end`` writes ``checkpoint_latest.pth`` before it compares the epoch's EMA pseudo Dice with
``_best_ema``, so that checkpoint holds the best EMA of the epochs before its last one (none at all after a first
epoch). Continued from it (``--c``), the next epochs are compared with that stale best: an epoch worse than the
checkpoint's last, or any epoch when there was no best yet, overwrites a better ``checkpoint_best.pth``. The
checkpoint's logger holds the missing value (``ema_fg_dice`` of its last epoch); after loading, this mixin makes
the comparison that nnU-Net made after saving. For ``checkpoint_best.pth`` and ``checkpoint_final.pth``, written
after that comparison, it changes nothing.
"""

from typing import Union


class BestCheckpointMetricOnLoading:
    """Place before an nnU-Net trainer class in the bases."""

    def load_checkpoint(self, filename_or_checkpoint: Union[dict, str]) -> None:
        super().load_checkpoint(filename_or_checkpoint)
        ema = self.logger.get_value("ema_fg_dice", step=None)
        if len(ema) > 0 and (self._best_ema is None or ema[-1] > self._best_ema):
            self._best_ema = ema[-1]
