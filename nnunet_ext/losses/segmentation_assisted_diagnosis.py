"""The loss of a segmentation-assisted diagnosis trainer: the segmentation loss plus the weighted diagnosis loss
(BCE for a binary diagnosis, cross-entropy for more classes), or the diagnosis loss alone when the segmentation is
frozen (the papers' setting)."""

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from nnunet_ext.architectures.diagnosis.diagnosis_tap import DiagnosisTap


def diagnosis_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``logits [B, 1]`` (binary: BCE with logits) or ``[B, N]`` (N > 2 classes: cross-entropy); ``targets [B]``
    class indices."""
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0].float(), targets.float())
    return F.cross_entropy(logits.float(), targets)


class SegmentationAssistedDiagnosisLoss(nn.Module):
    """``forward(segmentation_output, segmentation_target)`` as nnU-Net calls its loss; the diagnosis logits and
    targets of the same batch come from ``tap`` (the network and the trainer put them there).

    :param segmentation_loss: nnU-Net's loss (with its deep supervision), or None when the segmentation is frozen.
    :param diagnosis_weight: the weight of the diagnosis loss next to the segmentation loss.
    """

    def __init__(self, segmentation_loss: Optional[nn.Module], tap: DiagnosisTap, diagnosis_weight: float = 1.0):
        super().__init__()
        self.segmentation_loss = segmentation_loss
        self.tap = tap
        self.diagnosis_weight = diagnosis_weight

    def forward(self, output, target) -> torch.Tensor:
        loss = diagnosis_loss(self.tap.latest(), self.tap.targets)
        if self.segmentation_loss is None:
            return loss
        return self.segmentation_loss(output, target) + self.diagnosis_weight * loss
