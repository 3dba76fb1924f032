"""The diagnosis loss: BCE for binary, cross-entropy for more classes, near zero when right and confident, added to
the segmentation loss with its weight, alone when the segmentation is frozen."""

import pytest
import torch

from nnunet_ext.architectures.diagnosis.diagnosis_tap import DiagnosisTap
from nnunet_ext.losses.segmentation_assisted_diagnosis import SegmentationAssistedDiagnosisLoss, diagnosis_loss


def test_confident_correct_predictions_cost_nearly_nothing():
    targets = torch.tensor([0, 1, 1])
    assert diagnosis_loss(torch.tensor([[-30.0], [30.0], [30.0]]), targets) < 1e-6
    assert diagnosis_loss(torch.tensor([[30.0], [-30.0], [30.0]]), targets) > 10
    three = torch.tensor([[30.0, 0, 0], [0, 30.0, 0], [0, 0, 30.0]])
    assert diagnosis_loss(three, torch.tensor([0, 1, 2])) < 1e-6
    assert diagnosis_loss(three, torch.tensor([2, 0, 1])) > 10


class ConstantLoss(torch.nn.Module):
    def forward(self, output, target):
        return torch.tensor(2.0)


def test_weighting_and_frozen_segmentation():
    tap = DiagnosisTap()
    tap.record(torch.zeros(4, 1))
    tap.targets = torch.tensor([0, 1, 0, 1])
    bce_of_zero_logits = torch.log(torch.tensor(2.0)).item()
    frozen = SegmentationAssistedDiagnosisLoss(None, tap, diagnosis_weight=0.5)
    joint = SegmentationAssistedDiagnosisLoss(ConstantLoss(), tap, diagnosis_weight=0.5)
    assert frozen(None, None).item() == pytest.approx(bce_of_zero_logits)
    assert joint(None, None).item() == pytest.approx(2.0 + 0.5 * bce_of_zero_logits)


def test_a_loss_without_a_forward_pass_says_so():
    loss = SegmentationAssistedDiagnosisLoss(None, DiagnosisTap())
    with pytest.raises(RuntimeError, match="No diagnosis logits"):
        loss(None, None)
