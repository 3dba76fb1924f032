"""Mixin: ``checkpoint_best.pth`` follows the diagnosis, not the segmentation.

nnU-Net saves ``checkpoint_best.pth`` whenever the EMA of its pseudo Dice improves; with a frozen segmentation that
Dice is the same every epoch, so the "best" checkpoint is the first epoch's branch. Here the epoch's diagnosis
score (``val_diagnosis_auc``, or ``val_diagnosis_kappa`` for more than two classes, on the epoch's validation
patches; :mod:`epoch_score`) is smoothed as nnU-Net smooths its Dice (``ema = 0.9 ema + 0.1 score``; an epoch whose
score is undefined, e.g. AUC with one class among the patches, keeps the EMA), logged as ``ema_<score name>``, and
``checkpoint_best.pth`` is written when it exceeds every earlier epoch's EMA. The comparison reads the logger's
history, which every checkpoint carries, so a run continued with ``--c`` compares with the epochs before it.
nnU-Net still writes the file, at its usual point in ``on_epoch_end`` (after the epoch's last log entry): its
pseudo-Dice comparison is made to answer ours (``_best_ema`` is set to None, "no best yet", when the diagnosis EMA
improved, and to infinity otherwise), so its log line "New best EMA pseudo Dice" then follows ours.

Which checkpoint is used where: nnU-Net's final validation (``diagnosis_summary.json``) uses the weights at the end
of training (= ``checkpoint_final.pth``), and so do ``nnUNetv2_predict`` and ``nnunet_ext_predict`` by default;
``-chk checkpoint_best.pth`` predicts with the best diagnosis EMA, and ``nnUNetv2_train ... --val --val_best``
validates it.
"""

import math
from typing import List, Sequence

import numpy as np

from nnunet_ext.trainers.diagnosis.epoch_score import epoch_score_name

EMA_DECAY = 0.9  # nnU-Net's for its pseudo Dice


def diagnosis_score_ema(scores: Sequence[float]) -> List[float]:
    """``[ema_0, ..., ema_{n-1}]`` of the epoch scores: ``ema_t = 0.9 ema_{t-1} + 0.1 score_t``, the first defined
    score starting it; NaN scores keep the EMA (NaN until a score is defined)."""
    emas, ema = [], math.nan
    for score in scores:
        if score is not None and not math.isnan(score):
            ema = score if math.isnan(ema) else EMA_DECAY * ema + (1 - EMA_DECAY) * score
        emas.append(ema)
    return emas


class DiagnosisBestCheckpoint:

    @property
    def _ema_score_name(self) -> str:
        return "ema_" + epoch_score_name(len(self.diagnosis_labels.classes))

    def on_train_start(self):
        super().on_train_start()
        self.logger.local_logger.my_fantastic_logging.setdefault(self._ema_score_name, [])

    def on_epoch_end(self):
        scores = self.logger.get_value(epoch_score_name(len(self.diagnosis_labels.classes)), step=None)
        emas = diagnosis_score_ema(scores[:self.current_epoch + 1])
        self.logger.log(self._ema_score_name, emas[-1], self.current_epoch)
        earlier = [e for e in emas[:-1] if not math.isnan(e)]
        improved = not math.isnan(emas[-1]) and (not earlier or emas[-1] > max(earlier))
        if improved:
            self.print_to_log_file(f"New best {self._ema_score_name}: {np.round(emas[-1], decimals=4)}, "
                                   f"checkpoint_best.pth follows it")
        self._best_ema = None if improved else math.inf  # nnU-Net's comparison then saves iff improved
        super().on_epoch_end()
