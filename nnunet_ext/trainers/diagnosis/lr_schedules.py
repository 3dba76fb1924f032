"""Learning-rate schedules for the papers' optimisers, with the interface nnU-Net's trainer uses
(``lr_scheduler.step(current_epoch)`` at the start of every epoch, as for its ``PolyLRScheduler``).

Neither keeps state of its own: the learning rate of an epoch follows from the epoch (constant) or from the scores
logged before it (plateau), which nnU-Net's logger saves in every checkpoint, so a run continued with ``--c`` goes
on with the learning rate it had.
"""

import math
from typing import Callable, Sequence

from torch.optim.lr_scheduler import _LRScheduler


class ConstantLRScheduler(_LRScheduler):
    """``initial_lr`` at every epoch (SeATrans: "The learning rate is initially set to 1e-4", no schedule named)."""

    def __init__(self, optimizer, initial_lr: float):
        self.initial_lr = initial_lr
        super().__init__(optimizer, -1)

    def get_lr(self):
        return [self.initial_lr for _ in self.optimizer.param_groups]

    def step(self, current_step=None):
        for group in self.optimizer.param_groups:
            group["lr"] = self.initial_lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


def plateau_learning_rate(initial_lr: float, scores: Sequence[float], patience: int, factor: float) -> float:
    """The learning rate after the validations ``scores`` (higher is better, NaN counts as no improvement): divided
    by ``1 / factor`` each time ``patience`` consecutive validations do not improve on the best so far, the count
    starting again after each reduction (SiAN sec. 4.1: "If the validation performance does not improve in 4
    consecutive validations, the learning rate will be divided by 10")."""
    lr, best, without_improvement = initial_lr, -math.inf, 0
    for score in scores:
        if score is not None and not math.isnan(score) and score > best:
            best, without_improvement = score, 0
            continue
        without_improvement += 1
        if without_improvement >= patience:
            lr, without_improvement = lr * factor, 0
    return lr


class PlateauLRScheduler(_LRScheduler):
    """:func:`plateau_learning_rate` over the scores that ``scores_before`` returns (one per epoch validated)."""

    def __init__(self, optimizer, initial_lr: float, scores_before: Callable[[int], Sequence[float]],
                 patience: int = 4, factor: float = 0.1):
        self.initial_lr, self.scores_before = initial_lr, scores_before
        self.patience, self.factor = patience, factor
        super().__init__(optimizer, -1)

    def get_lr(self):
        return [self.initial_lr for _ in self.optimizer.param_groups]

    def step(self, current_step=None):
        scores = [] if current_step is None or current_step < 1 else list(self.scores_before(current_step))
        lr = plateau_learning_rate(self.initial_lr, scores, self.patience, self.factor)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
