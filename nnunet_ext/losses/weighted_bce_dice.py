"""Div-attention's loss: weighted binary cross-entropy plus Dice (Jiang et al., eq. 6-8).

``Loss = alpha * wBCE + beta * Dice`` with

* eq. (6) ``wBCE = -mean((1 - y) log(1 - p) + gamma * y * log(p))`` over every voxel and foreground channel; the
  paper "imposes more penalties on negative instances", i.e. ``gamma < 1`` down-weights the positive term, so a false
  positive costs ``1 / gamma`` times a false negative of equal confidence. For a softmax (label) dataset the
  background channel is left out, as in the Dice: its terms mirror the foreground's with ``gamma`` on the other side
  and would cancel the asymmetry (with two classes a false positive and a false negative would cost the same). The
  logs are computed from the logits (log-sigmoid, or log-softmax and ``log(1 - p) = log(-expm1(log p))``), never as
  ``log`` of a rounded probability.
* eq. (7) as printed, ``1 - 2 O*M / (O + M + O*M)``, would be 1/3 on a perfect prediction (2|G| / 3|G|); we read
  the extra ``O*M`` as a misprint and use the standard soft Dice ``1 - 2 sum(p y) / (sum(p) + sum(y))``, computed
  by nnU-Net's ``MemoryEfficientSoftDiceLoss`` (batch Dice as the plans say), which is 0 on a perfect prediction.

``p`` is a sigmoid per channel for region-based (multi-label) datasets and a softmax over channels otherwise, as in
nnU-Net. Shapes: logits ``(B, K, *S)``; target ``(B, 1, *S)`` integer labels, or ``(B, K, *S)`` region masks.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
from nnunetv2.utilities.helpers import softmax_helper_dim1


def log_one_minus_exp(log_p: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(log_p))`` for ``log_p <= 0``, accurate at both ends (Maechler's log1mexp).

    ``log_p`` is clamped below ``-1e-7`` so that a probability of exactly 1 costs ``log(1e-7)`` instead of ``-inf``.
    """
    log_p = log_p.clamp(max=-1e-7)
    return torch.where(log_p > -math.log(2.0), torch.log(-torch.expm1(log_p)), torch.log1p(-torch.exp(log_p)))


class WeightedBCEDiceLoss(nn.Module):
    """``alpha * wBCE + beta * (1 - Dice)``; see the module docstring for the equations and their reading.

    :param gamma: weight of the positive term of eq. (6).
    :param alpha: weight of wBCE in eq. (8).
    :param beta: weight of the Dice loss in eq. (8).
    :param regions: True for region-based datasets (sigmoid per channel, background channel absent), False for
        mutually exclusive classes (softmax; the background channel is left out of the Dice, as nnU-Net does).
    :param batch_dice: Dice over the whole batch instead of per sample (nnU-Net's plans decide).
    """

    def __init__(self, gamma: float, alpha: float, beta: float, regions: bool, batch_dice: bool,
                 smooth: float = 1e-5, ddp: bool = False):
        super().__init__()
        if gamma <= 0 or alpha < 0 or beta < 0 or alpha + beta == 0:
            raise ValueError(f"weighted BCE + Dice needs gamma > 0 and alpha, beta >= 0, not both 0; got gamma={gamma}, "
                             f"alpha={alpha}, beta={beta}")
        self.gamma, self.alpha, self.beta, self.regions = gamma, alpha, beta, regions
        self.dice = MemoryEfficientSoftDiceLoss(apply_nonlin=torch.sigmoid if regions else softmax_helper_dim1,
                                                batch_dice=batch_dice, do_bg=regions, smooth=smooth, ddp=ddp)

    def weighted_bce(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Eq. (6), a scalar: the mean over ``(B, M, *S)``, ``M`` the foreground channels (all ``K`` for regions,
        ``K - 1`` for labels, whose background channel is left out)."""
        logits = logits.float()
        if self.regions:
            positive = target.float()
            log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
        else:
            positive = torch.zeros_like(logits).scatter_(1, target.long(), 1.0)[:, 1:]
            log_p = torch.log_softmax(logits, dim=1)[:, 1:]
            log_not_p = log_one_minus_exp(log_p)
        return -((1.0 - positive) * log_not_p + self.gamma * positive * log_p).mean()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.alpha * self.weighted_bce(logits, target) + self.beta * (1.0 + self.dice(logits, target))
