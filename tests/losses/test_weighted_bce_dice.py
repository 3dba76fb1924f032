"""Div-attention's weighted BCE + Dice loss (eq. 6-8, read as in nnunet_ext.losses.weighted_bce_dice)."""

import math

import pytest
import torch

from nnunet_ext.losses.weighted_bce_dice import WeightedBCEDiceLoss, log_one_minus_exp


def labels_and_perfect_logits(num_classes=3, spatial=(6, 8, 8)):
    torch.manual_seed(0)
    labels = torch.randint(0, num_classes, (2, 1, *spatial))
    one_hot = torch.zeros(2, num_classes, *spatial).scatter_(1, labels, 1.0)
    return labels, one_hot, 40.0 * (2 * one_hot - 1)  # a confident, correct prediction


@pytest.mark.parametrize("regions", [False, True], ids=["softmax_classes", "sigmoid_regions"])
@pytest.mark.parametrize("batch_dice", [False, True])
def test_loss_is_zero_on_a_perfect_prediction(regions, batch_dice):
    labels, one_hot, logits = labels_and_perfect_logits()
    loss = WeightedBCEDiceLoss(gamma=0.5, alpha=1.0, beta=1.0, regions=regions, batch_dice=batch_dice)
    target = one_hot if regions else labels
    assert loss(logits, target).item() == pytest.approx(0.0, abs=1e-5)
    assert loss(-logits, target).item() > 1.0  # and large on the opposite prediction


def test_gamma_below_one_penalises_a_false_positive_more_than_a_false_negative():
    """Eq. (6) with gamma < 1: 'more penalties on negative instances'."""
    loss = WeightedBCEDiceLoss(gamma=0.5, alpha=1.0, beta=0.0, regions=True, batch_dice=False)
    target = torch.tensor([[[0.0, 1.0]]])
    false_positive = loss(torch.tensor([[[2.0, 10.0]]]), target)  # voxel 0 wrongly positive
    false_negative = loss(torch.tensor([[[-10.0, -2.0]]]), target)  # voxel 1 wrongly negative, same confidence
    assert false_positive.item() == pytest.approx(2 * false_negative.item(), rel=1e-3)


def one_voxel_logits(num_classes, background, lesion):
    """``(1, K, 1)`` logits: ``background`` for class 0, ``lesion`` for class 1, any further class far below."""
    logits = torch.full((1, num_classes, 1), -30.0)
    logits[0, 0, 0], logits[0, 1, 0] = background, lesion
    return logits


@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize("gamma", [0.5, 0.25])
def test_gamma_sets_the_false_positive_to_false_negative_ratio_on_label_datasets(num_classes, gamma):
    """Softmax (``regions=False``): a background voxel called lesion with logits (-2, +2) must cost 1/gamma times a
    lesion voxel called background with (+2, -2), as on the region path. With the background channel in eq. (6),
    its terms mirror the lesion's with gamma swapped and both cost the same (3.014 at gamma 0.5, two classes)."""
    loss = WeightedBCEDiceLoss(gamma=gamma, alpha=1.0, beta=0.0, regions=False, batch_dice=False)
    false_positive = loss(one_voxel_logits(num_classes, -2.0, 2.0), torch.zeros(1, 1, 1))
    false_negative = loss(one_voxel_logits(num_classes, 2.0, -2.0), torch.ones(1, 1, 1))
    assert false_positive.item() == pytest.approx(false_negative.item() / gamma, rel=1e-4)
    p = torch.sigmoid(torch.tensor(4.0)).item()  # the confident probability, p_lesion of the false positive
    assert false_negative.item() == pytest.approx(-gamma * math.log(1 - p) / (num_classes - 1), rel=1e-4)


def test_weighted_bce_matches_the_formula_for_sigmoid_outputs():
    torch.manual_seed(1)
    logits, target = torch.randn(2, 2, 5, 5), (torch.rand(2, 2, 5, 5) > 0.5).float()
    loss = WeightedBCEDiceLoss(gamma=0.3, alpha=1.0, beta=0.0, regions=True, batch_dice=False)
    p = torch.sigmoid(logits)
    expected = -((1 - target) * torch.log(1 - p) + 0.3 * target * torch.log(p)).mean()
    assert loss(logits, target).item() == pytest.approx(expected.item(), rel=1e-5)


def test_alpha_and_beta_weight_the_two_terms():
    labels, _, logits = labels_and_perfect_logits()
    logits = logits * 0.01
    bce_only = WeightedBCEDiceLoss(0.5, 1.0, 0.0, regions=False, batch_dice=False)(logits, labels)
    dice_only = WeightedBCEDiceLoss(0.5, 0.0, 1.0, regions=False, batch_dice=False)(logits, labels)
    both = WeightedBCEDiceLoss(0.5, 2.0, 3.0, regions=False, batch_dice=False)(logits, labels)
    assert both.item() == pytest.approx(2 * bce_only.item() + 3 * dice_only.item(), rel=1e-5)


def test_gradient_reaches_the_logits():
    labels, _, logits = labels_and_perfect_logits()
    logits = (logits * 0.01).requires_grad_()
    WeightedBCEDiceLoss(0.5, 1.0, 1.0, regions=False, batch_dice=True)(logits, labels).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_log_one_minus_exp_is_accurate_at_both_ends_and_finite_at_zero():
    log_p = torch.tensor([-50.0, -5.0, -math.log(2.0), -1e-3, -1e-6], dtype=torch.float64)
    expected = torch.log(1 - torch.exp(log_p))
    assert torch.allclose(log_one_minus_exp(log_p), expected, rtol=1e-4)
    assert torch.isfinite(log_one_minus_exp(torch.zeros(1))).all()


@pytest.mark.parametrize("gamma, alpha, beta", [(0.0, 1, 1), (0.5, -1, 1), (0.5, 0, 0)])
def test_invalid_weights_are_refused(gamma, alpha, beta):
    with pytest.raises(ValueError, match="gamma > 0"):
        WeightedBCEDiceLoss(gamma, alpha, beta, regions=True, batch_dice=False)
