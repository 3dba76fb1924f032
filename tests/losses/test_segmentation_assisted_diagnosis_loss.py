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
    tap.targets = torch.tensor([0, 1, 0, 1])
    output = [torch.zeros(4, 3, 8, 8), torch.zeros(4, 3, 4, 4), torch.zeros(4, 1)]  # deep supervision, diagnosis
    bce_of_zero_logits = torch.log(torch.tensor(2.0)).item()
    frozen = SegmentationAssistedDiagnosisLoss(None, tap, diagnosis_weight=0.5)
    joint = SegmentationAssistedDiagnosisLoss(ConstantLoss(), tap, diagnosis_weight=0.5)
    assert frozen(output, None).item() == pytest.approx(bce_of_zero_logits)
    assert joint(output, None).item() == pytest.approx(2.0 + 0.5 * bce_of_zero_logits)
    assert len(tap.logits) == 2 and tap.latest() is output[-1]  # left for the trainer's validation metrics


def test_the_segmentation_loss_gets_the_segmentation_outputs_only():
    received = []

    class Recording(torch.nn.Module):
        def forward(self, output, target):
            received.append(output)
            return torch.tensor(0.0)

    tap = DiagnosisTap()
    tap.targets = torch.tensor([1])
    full, lower, diagnosis = torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 4, 4), torch.zeros(1, 1)
    SegmentationAssistedDiagnosisLoss(Recording(), tap)([full, lower, diagnosis], None)
    SegmentationAssistedDiagnosisLoss(Recording(), tap, deep_supervision=False)([full, diagnosis], None)
    assert received[0] == [full, lower] and received[1] is full


def test_an_output_without_diagnosis_says_so():
    loss = SegmentationAssistedDiagnosisLoss(None, DiagnosisTap())
    with pytest.raises(TypeError, match="diagnosis output is off"):
        loss(torch.zeros(1, 3, 8, 8), None)
