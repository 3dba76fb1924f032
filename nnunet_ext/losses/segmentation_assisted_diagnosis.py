"""The loss of a segmentation-assisted diagnosis trainer: the segmentation loss plus the weighted diagnosis loss
(BCE for a binary diagnosis, cross-entropy for more classes), or the diagnosis loss alone when the segmentation is
frozen (the papers' setting)."""

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from nnunet_ext.architectures.diagnosis.diagnosis_tap import DiagnosisTap, split_diagnosis_output


def diagnosis_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``logits [B, 1]`` (binary: BCE with logits) or ``[B, N]`` (N > 2 classes: cross-entropy); ``targets [B]``
    class indices."""
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0].float(), targets.float())
    return F.cross_entropy(logits.float(), targets)


class SegmentationAssistedDiagnosisLoss(nn.Module):
    """``forward(output, segmentation_target)`` as nnU-Net calls its loss, ``output`` being the network's output
    with its diagnosis on (the segmentation outputs, then the diagnosis logits). The diagnosis logits are left in
    ``tap`` (for the trainer's validation metrics); the batch's diagnosis targets come from it (the trainer puts them
    there before each step).

    :param segmentation_loss: nnU-Net's loss (with its deep supervision), or None when the segmentation is frozen.
    :param diagnosis_weight: the weight of the diagnosis loss next to the segmentation loss.
    :param deep_supervision: whether the segmentation output is nnU-Net's deep-supervision list.
    """

    def __init__(self, segmentation_loss: Optional[nn.Module], tap: DiagnosisTap, diagnosis_weight: float = 1.0,
                 deep_supervision: bool = True):
        super().__init__()
        self.segmentation_loss = segmentation_loss
        self.tap = tap
        self.diagnosis_weight = diagnosis_weight
        self.deep_supervision = deep_supervision

    def forward(self, output, target) -> torch.Tensor:
        segmentation, diagnosis_logits = split_diagnosis_output(output, self.deep_supervision)
        self.tap.record(diagnosis_logits)
        loss = diagnosis_loss(diagnosis_logits, self.tap.targets)
        if self.segmentation_loss is None:
            return loss
        return self.segmentation_loss(segmentation, target) + self.diagnosis_weight * loss
