"""What the transformer trainers share: AdamW with a linear warm-up then nnU-Net's poly decay (stateless, so --c
resumes it), and the plans' patch rounded up to the token size, said in the log and kept in the saved plans."""

import json

import pytest
import torch

from nnunet_ext.trainers.transformers.token_patch import plans_with_token_patch
from nnunet_ext.trainers.transformers.warmup_poly_schedule import WarmupPolyLRScheduler, warmup_poly_learning_rate


def test_warmup_rises_linearly_then_decays_as_nnunets_poly():
    rates = [warmup_poly_learning_rate(1e-4, epoch, 100, 5) for epoch in range(100)]
    assert rates[:5] == pytest.approx([2e-5, 4e-5, 6e-5, 8e-5, 1e-4])
    assert rates[5] == pytest.approx(1e-4)
    assert rates[50] == pytest.approx(1e-4 * (1 - 45 / 95) ** 0.9)
    assert all(a >= b for a, b in zip(rates[5:], rates[6:]))


def test_the_scheduler_sets_the_epochs_rate_whatever_came_before():
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = WarmupPolyLRScheduler(optimizer, 1e-4, 10, 2)
    scheduler.step(7)  # as nnU-Net's on_train_epoch_start after --c at epoch 7
    assert optimizer.param_groups[0]["lr"] == pytest.approx(warmup_poly_learning_rate(1e-4, 7, 10, 2))


@pytest.fixture
def plans(planned_synthetic):
    """nnU-Net's 3D plans of the synthetic dataset with the configuration's patch set, and a configuration that
    inherits from it."""
    real = json.loads(planned_synthetic["nnUNetPlans"][0].read_text())

    def with_patch(patch):
        configurations = dict(real["configurations"], **{"3d_fullres": dict(real["configurations"]["3d_fullres"],
                                                                           patch_size=patch),
                                                        "3d_child": {"inherits_from": "3d_fullres"}})
        return dict(real, configurations=configurations)
    return with_patch


def test_a_patch_not_divisible_by_the_token_size_is_rounded_up_and_said(plans):
    original = plans([56, 64, 56])
    adjusted, message = plans_with_token_patch(original, "3d_fullres", 16)
    assert adjusted["configurations"]["3d_fullres"]["patch_size"] == [64, 64, 64]
    assert original["configurations"]["3d_fullres"]["patch_size"] == [56, 64, 56]  # the caller's plans untouched
    assert "56x64x56" in message and "64x64x64" in message
    inherited, _ = plans_with_token_patch(original, "3d_child", 16)
    assert inherited["configurations"]["3d_child"]["patch_size"] == [64, 64, 64]
    same, none = plans_with_token_patch(plans([32, 64, 48]), "3d_fullres", 16)
    assert none is None and json.dumps(same) == json.dumps(plans([32, 64, 48]))
