"""The diagnosis logits on a compiled network, as nnU-Net leaves it on a GPU: compiled and run once before any
flag of ours is set (a forward hook registered then would never be called), then our predictor's recording
(diagnosis output on, :class:`DiagnosisRecorder` around the compiled module) gets every pass's diagnosis logits,
equal to eager."""

import pytest
import torch

from nnunet_ext.architectures.diagnosis.diagnosis_tap import DiagnosisRecorder, DiagnosisTap, set_diagnosis_output
from nnunet_ext.architectures.diagnosis.diagnosis_tap import split_diagnosis_output
from nnunet_ext.reliability.network_builds import build_network

# one network class carries every diagnosis branch: the branch that reads the segmentation encoder's bottleneck, and
# the one that reads every stage's features through cross-attention
DIAGNOSIS_TRAINERS = ["BaseMultiDiagnosisTrainer", "SeATransDiagnosisTrainer"]


@pytest.mark.parametrize("trainer", DIAGNOSIS_TRAINERS)
def test_the_diagnosis_reaches_the_tap_of_a_compiled_network(trainer, distinct_build):
    setting = distinct_build(trainer, "2d")
    network = build_network(trainer, setting, deep_supervision=False).eval()
    image = torch.randn(2, setting.num_input_channels, *setting.patch_size)
    compiled = torch.compile(network, backend="eager")
    torch._dynamo.reset()
    with torch.no_grad():
        segmentation_only = compiled(image)  # nnU-Net's own validation pass, before we ask for the diagnosis
        set_diagnosis_output(compiled, True)  # through the compile wrapper, as our predictor does
        _, eager_logits = split_diagnosis_output(network(image), deep_supervision=False)
        tap = DiagnosisTap()
        recorded = DiagnosisRecorder(compiled, tap)
        segmentations = [recorded(image), recorded(image)]
    assert len(tap.logits) == 2 and all(torch.allclose(t, eager_logits, atol=1e-5) for t in tap.logits)
    assert all(torch.allclose(s, segmentation_only, atol=1e-5) for s in segmentations)
