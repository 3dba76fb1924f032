"""L-Net's dual loss (Wei et al., *Learn to Segment Retinal Lesions and Beyond*, sec. 3.1, eq. 2, 3 and the one after).

``loss_dual = lambda * loss_seg + (1 - lambda) * loss_clf``                                   eq. (2)

* ``loss_seg = 1 - 2 sum_ij p_ij t_ij / (sum_ij p_ij^2 + sum_ij t_ij^2)``                      eq. (3)
  over every voxel ``i`` of the whole batch and every class ``j`` (one batch Dice, not a mean of per-class Dice).
* ``loss_clf = 1 - 2 sum_ij P_ij T_ij / (sum_ij P_ij^2 + sum_ij T_ij^2)``                      (the one after)
  over every image ``i`` of the batch and class ``j``, where ``P_ij`` is the global max over all voxels of class
  ``j``'s probability map in image ``i`` (the image-level presence probability) and ``T_ij`` whether class ``j`` is
  present in the ground-truth patch. Both are invariant to the lesion's size: a missed small lesion costs as much as
  a missed large one.

Probabilities: sigmoid per channel for region-based (multi-label) datasets; softmax over channels otherwise, with the
background channel left out (it is "present" in every patch and would only dilute the loss). Both sums carry a
smoothing term of ``1e-5`` in numerator and denominator, so a batch with no lesion at all and no predicted lesion
costs 0 instead of 0/0. Voxels of nnU-Net's ignore label count neither in the Dice nor in the max, nor in ``T``.
Under deep supervision ``T`` comes from the full-resolution target at every scale
(:mod:`nnunet_ext.losses.full_resolution_presence`): nnU-Net downsamples targets nearest-neighbour, so a lesion
smaller than a scale's stride can vanish from that scale's target while it is present in the image.

Shapes: logits ``(B, K, *S)``; target ``(B, 1, *S)`` integer labels, or ``(B, K, *S)`` region masks (as nnU-Net's
data loader produces them), optionally with the ignore label.
"""

from typing import Optional

import torch
from torch import nn

SMOOTH = 1e-5


def squared_dice_loss(probabilities: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``1 - (2 sum(p t) + s) / (sum(p^2) + sum(t^2) + s)`` over all elements (eq. 3)."""
    intersection = (probabilities * targets).sum()
    denominator = probabilities.square().sum() + targets.square().sum()
    return 1.0 - (2.0 * intersection + SMOOTH) / (denominator + SMOOTH)


class DualDiceLoss(nn.Module):
    """``lambda * loss_seg + (1 - lambda) * loss_clf``, or ``loss_seg`` alone until :attr:`dual` is switched on.

    :param weight_segmentation: ``lambda`` in [0, 1] (the paper's 0.8).
    :param regions: sigmoid per channel (region-based datasets) instead of softmax without background.
    :param ignore_label: nnU-Net's ignore label, if the dataset has one.
    :param dual: start with the dual loss (True) or with ``loss_seg`` alone (False, the paper's schedule).
    """

    def __init__(self, weight_segmentation: float = 0.8, regions: bool = False, ignore_label: Optional[int] = None,
                 dual: bool = True):
        super().__init__()
        if not 0.0 <= weight_segmentation <= 1.0:
            raise ValueError(f"the dual loss weight lambda must lie in [0, 1], got {weight_segmentation}")
        self.weight_segmentation, self.regions, self.ignore_label, self.dual = \
            weight_segmentation, regions, ignore_label, dual

    def targets(self, target: torch.Tensor, num_channels: int) -> tuple:
        """One-hot foreground targets ``(B, M, *S)`` with ignored voxels zeroed, and the mask of the voxels that are
        not ignored, ``(B, 1, *S)`` (None without ignore label); ``num_channels`` is ``K``, the logits' channels."""
        valid = None
        if self.regions:
            if self.ignore_label is not None:  # nnU-Net appends the ignore mask as the last target channel
                valid, target = (~target[:, -1:].bool()).float(), target[:, :-1]
            one_hot = target.float()
        else:
            labels = target.long()
            if self.ignore_label is not None:
                valid = (labels != self.ignore_label).float()
                labels = labels * (labels != self.ignore_label)
            shape = (labels.shape[0], num_channels, *labels.shape[2:])
            one_hot = torch.zeros(shape, device=labels.device).scatter_(1, labels, 1.0)[:, 1:]
        if valid is not None:
            one_hot = one_hot * valid
        return one_hot, valid

    def presence_targets(self, target: torch.Tensor, num_channels: int) -> torch.Tensor:
        """``T``, ``(B, M)``: whether foreground class ``j`` has a voxel in image ``i`` that is not ignored."""
        return self.targets(target, num_channels)[0].flatten(2).amax(dim=2)

    def probabilities_and_targets(self, logits: torch.Tensor, target: torch.Tensor) -> tuple:
        """Foreground probabilities and one-hot targets, both ``(B, M, *S)``, ignored voxels zeroed in both."""
        logits = logits.float()
        one_hot, valid = self.targets(target, logits.shape[1])
        probabilities = torch.sigmoid(logits) if self.regions else torch.softmax(logits, dim=1)[:, 1:]
        if valid is not None:
            probabilities = probabilities * valid
        return probabilities, one_hot

    def forward(self, logits: torch.Tensor, target: torch.Tensor,
                presence: Optional[torch.Tensor] = None) -> torch.Tensor:
        """:param presence: ``T``, ``(B, M)``, when it comes from elsewhere than ``target`` (under deep
            supervision, from the full-resolution target: :class:`~nnunet_ext.losses.full_resolution_presence.
            FullResolutionPresenceWrapper`); by default it is taken from ``target``."""
        probabilities, one_hot = self.probabilities_and_targets(logits, target)
        loss_segmentation = squared_dice_loss(probabilities, one_hot)
        if not self.dual or self.weight_segmentation == 1.0:
            return loss_segmentation
        presence_probability = probabilities.flatten(2).amax(dim=2)  # (B, M), global max pooling
        if presence is None:
            presence = one_hot.flatten(2).amax(dim=2)
        loss_classification = squared_dice_loss(presence_probability, presence.to(presence_probability))
        return self.weight_segmentation * loss_segmentation + (1.0 - self.weight_segmentation) * loss_classification
