"""The papers' learning-rate schedules: SiAN's step down after 4 validations without a better score, SeATrans'
constant rate, both driven as nnU-Net drives its scheduler (``step(current_epoch)`` at each epoch's start)."""

import math

import pytest
import torch

from nnunet_ext.trainers.diagnosis.lr_schedules import (ConstantLRScheduler, PlateauLRScheduler,
                                                        plateau_learning_rate)


@pytest.mark.parametrize("scores, expected", [
    ([], 1e-3),
    ([0.5, 0.6, 0.7, 0.8, 0.9], 1e-3),  # always improving
    ([0.5, 0.5, 0.4, 0.5, 0.3], 1e-4),  # 4 validations without a better one
    ([0.5, 0.5, 0.4, 0.5], 1e-3),  # only 3
    ([0.5, math.nan, math.nan, math.nan, math.nan], 1e-4),  # undefined scores do not improve
    ([0.5] + [0.4] * 8, 1e-5),  # the count starts again after each reduction
    ([0.5, 0.4, 0.4, 0.4, 0.6, 0.4, 0.4, 0.4], 1e-3),  # an improvement resets it
])
def test_plateau_learning_rate(scores, expected):
    assert plateau_learning_rate(1e-3, scores, patience=4, factor=0.1) == pytest.approx(expected)


def test_the_plateau_scheduler_sets_the_rate_from_the_scores_before_the_epoch():
    scores = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = PlateauLRScheduler(optimizer, 1e-3, lambda epoch: scores[:epoch], patience=4)
    rates = []
    for epoch in range(7):
        scheduler.step(epoch)
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([1e-3] * 5 + [1e-4] * 2)
    fresh = PlateauLRScheduler(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), 1e-3,
                               lambda epoch: scores[:epoch], patience=4)
    fresh.step(6)  # a continued run: the same rate from the logged history alone
    assert fresh.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_the_constant_scheduler_keeps_the_rate():
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    scheduler = ConstantLRScheduler(optimizer, 1e-4)
    for epoch in range(3):
        scheduler.step(epoch)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
