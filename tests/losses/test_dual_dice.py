"""L-Net's dual loss (eq. 2, 3 and the one after it)."""

import pytest
import torch

from nnunet_ext.losses.dual_dice import DualDiceLoss, squared_dice_loss


def two_images_big_and_small_lesion():
    """Image 0 holds a large lesion (class 1), image 1 a single-voxel lesion (class 1): labels (2, 1, 16, 16)."""
    labels = torch.zeros(2, 1, 16, 16, dtype=torch.long)
    labels[0, 0, 2:12, 2:12] = 1
    labels[1, 0, 8, 8] = 1
    return labels


def confident_logits(labels, num_classes=2, scale=30.0):
    one_hot = torch.zeros(labels.shape[0], num_classes, *labels.shape[2:]).scatter_(1, labels, 1.0)
    return scale * (2 * one_hot - 1)


def test_zero_on_a_perfect_prediction_for_classes_and_regions():
    labels = two_images_big_and_small_lesion()
    assert DualDiceLoss(0.8)(confident_logits(labels), labels).item() == pytest.approx(0.0, abs=1e-5)
    regions = (labels > 0).float()
    region_logits = 30.0 * (2 * regions - 1)
    assert DualDiceLoss(0.8, regions=True)(region_logits, regions).item() == pytest.approx(0.0, abs=1e-5)


def test_missing_one_small_lesion_costs_the_dual_loss_much_more_than_the_dice_loss():
    """The paper's Table 2 point: the image-level term does not shrink with the lesion."""
    labels = two_images_big_and_small_lesion()
    perfect = confident_logits(labels)
    missed = perfect.clone()
    missed[1, :, 8, 8] = torch.tensor([30.0, -30.0])  # the small lesion is predicted as background
    dice_only, dual = DualDiceLoss(0.8, dual=False), DualDiceLoss(0.8)
    rise_dice = dice_only(missed, labels) - dice_only(perfect, labels)
    rise_dual = dual(missed, labels) - dual(perfect, labels)
    assert rise_dice.item() < 0.01  # 1 of 101 lesion voxels
    assert rise_dual.item() > 5 * rise_dice.item()
    assert rise_dual.item() == pytest.approx(0.8 * rise_dice.item() + 0.2 * (1 - 2 / 3), rel=1e-3)


def test_gradient_reaches_the_logits_through_the_global_max():
    labels = two_images_big_and_small_lesion()
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 16, 16, requires_grad=True)
    DualDiceLoss(weight_segmentation=0.0)(logits, labels).backward()  # the presence term alone
    gradient = logits.grad.abs().sum(dim=1).flatten(1)  # (B, voxels)
    lesion_probability = torch.softmax(logits.detach(), dim=1)[:, 1].flatten(1)
    assert (gradient != 0).sum(dim=1).tolist() == [1, 1]  # one voxel per image...
    assert torch.equal(gradient.argmax(dim=1), lesion_probability.argmax(dim=1))  # ...the one holding the max


def test_background_channel_is_left_out_for_softmax_datasets():
    """A 4-voxel lesion predicted as background: both terms are ~1 on the lesion channel alone; with the background
    channel in the sums (12 correct background voxels, background present and predicted) they would be 0.14 and
    1/3, about 0.18 in all."""
    labels = torch.zeros(1, 1, 4, 4, dtype=torch.long)
    labels[0, 0, 1:3, 1:3] = 1
    all_background = confident_logits(torch.zeros_like(labels))
    assert DualDiceLoss(0.8)(all_background, labels).item() == pytest.approx(1.0, abs=1e-4)
    assert DualDiceLoss(0.8)(all_background, torch.zeros_like(labels)).item() == pytest.approx(0.0, abs=1e-4)


def test_ignore_label_counts_neither_in_the_dice_nor_in_the_presence():
    """Image 0 holds a lesion and ignored voxels predicted as lesion; image 1's only lesion voxel is ignored (and
    predicted as lesion), so image 1 counts as lesion-free and predicted lesion-free: each term is 0."""
    labels = two_images_big_and_small_lesion()
    logits = confident_logits(labels)
    labels_with_ignore = labels.clone()
    labels_with_ignore[0, 0, 14:, 14:] = 2  # ignored voxels where the prediction says "lesion"
    logits[0, :, 14:, 14:] = torch.tensor([-30.0, 30.0]).view(2, 1, 1)
    labels_with_ignore[1, 0, 8, 8] = 2  # image 1's only lesion voxel, predicted "lesion", is ignored
    for weight in (0.0, 0.8, 1.0):  # the presence term alone, both, the Dice alone
        loss = DualDiceLoss(weight, ignore_label=2)
        assert loss(logits, labels_with_ignore).item() == pytest.approx(0.0, abs=1e-5), weight
    presence = DualDiceLoss(ignore_label=2).presence_targets(labels_with_ignore, 2)
    assert presence.tolist() == [[1.0], [0.0]]


def test_squared_dice_matches_eq_3():
    p, t = torch.tensor([0.5, 0.25, 1.0]), torch.tensor([1.0, 0.0, 1.0])
    assert squared_dice_loss(p, t).item() == pytest.approx(1 - 2 * 1.5 / (1.3125 + 2), rel=1e-4)


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_lambda_outside_zero_one_is_refused(weight):
    with pytest.raises(ValueError, match=r"lambda must lie in \[0, 1\]"):
        DualDiceLoss(weight)
