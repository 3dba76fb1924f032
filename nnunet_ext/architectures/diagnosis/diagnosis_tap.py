"""How a segmentation-assisted diagnosis network hands out its diagnosis logits.

nnU-Net's training step, validation step and sliding-window predictor all call ``network(x)`` and expect the
segmentation output back. A diagnosis network therefore returns the segmentation output only, unless its flag
``diagnosis_output`` is set (:func:`set_diagnosis_output`, from outside ``forward``, as nnU-Net sets
``decoder.deep_supervision``); then it also returns the diagnosis logits (:func:`diagnosis_in_output`, read back by
:func:`split_diagnosis_output`). Without the flag the branch does not run, so the stock ``nnUNetv2_predict`` costs
what a segmentation network costs.

``forward`` itself changes no state: ``torch.compile`` (which nnU-Net applies on a GPU) traces it as one graph per
flag setting. What outlives a forward pass is collected outside the network, in a :class:`DiagnosisTap`: by the
trainer's loss during training, and by :class:`DiagnosisRecorder` (which wraps the network for nnU-Net's predictor)
during prediction, where every sliding-window tile and fold adds its logits (the unmirrored pass; with
``DiagnosisPredictor.diagnosis_from_mirrors`` every mirror too).
"""

from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from nnunet_ext.core.network_wrappers import inner_network

SegmentationOutput = Union[torch.Tensor, List[torch.Tensor]]


class DiagnosisTap:
    """Collects ``[B, num_outputs]`` diagnosis logits, one tensor per forward pass, and the batch's targets."""

    def __init__(self):
        self.logits: List[torch.Tensor] = []
        self.targets: Optional[torch.Tensor] = None

    def record(self, logits: torch.Tensor) -> None:
        self.logits.append(logits)

    def latest(self) -> torch.Tensor:
        """The logits of the last forward pass; a clear error when there was none."""
        if not self.logits:
            raise RuntimeError("No diagnosis logits were recorded: the network ran no forward pass with its "
                               "diagnosis output on (set_diagnosis_output) since the tap was cleared.")
        return self.logits[-1]

    def clear(self) -> None:
        self.logits = []
        self.targets = None


def set_diagnosis_output(network: nn.Module, enabled: bool) -> bool:
    """Switch a diagnosis network's diagnosis output on or off, through nnU-Net's wrappers (DDP, compile). Returns
    False, and does nothing, for a network without a diagnosis branch."""
    network = inner_network(network)
    if not hasattr(network, "diagnosis_output"):
        return False
    network.diagnosis_output = bool(enabled)
    return True


def diagnosis_in_output(segmentation: SegmentationOutput, diagnosis_logits: torch.Tensor) -> List[torch.Tensor]:
    """The network's output with the diagnosis on: the segmentation outputs (one tensor, or nnU-Net's deep-supervision
    list, full resolution first), then ``[B, num_outputs]`` diagnosis logits, as one list. With deep supervision on,
    ``output[0]`` stays the full-resolution segmentation, which nnU-Net's validation step reads."""
    outputs = list(segmentation) if isinstance(segmentation, (list, tuple)) else [segmentation]
    return [*outputs, diagnosis_logits]


def split_diagnosis_output(output: Sequence[torch.Tensor], deep_supervision: bool
                           ) -> Tuple[SegmentationOutput, torch.Tensor]:
    """Inverse of :func:`diagnosis_in_output`: (segmentation output as the network gives it without the diagnosis,
    diagnosis logits)."""
    if not isinstance(output, (list, tuple)) or len(output) < 2:
        raise TypeError("expected the segmentation outputs followed by the diagnosis logits; the network's "
                        "diagnosis output is off (set_diagnosis_output(network, True))")
    segmentation = list(output[:-1]) if deep_supervision else output[0]
    return segmentation, output[-1]


class DiagnosisRecorder(nn.Module):
    """``network`` as nnU-Net's predictor wants it (``forward(x)`` -> segmentation logits), leaving the diagnosis
    logits of its calls in ``tap``. The network must have its diagnosis output on and deep supervision off (as the
    predictor builds it). It sits outside the (possibly compiled) network, so the recording is plain Python.

    :param calls_to_record: record the first ``calls_to_record`` calls, then switch the network's diagnosis output
        off, so that later calls run the segmentation alone (None: record every call). The caller switches it on
        again.
    """

    def __init__(self, network: nn.Module, tap: DiagnosisTap, calls_to_record: Optional[int] = None):
        super().__init__()
        self.network = network
        self.tap = tap
        self.calls_to_record = calls_to_record
        self.recorded_calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calls_to_record is not None and self.recorded_calls >= self.calls_to_record:
            return self.network(x)
        segmentation, diagnosis_logits = split_diagnosis_output(self.network(x), deep_supervision=False)
        self.tap.record(diagnosis_logits)
        self.recorded_calls += 1
        if self.calls_to_record is not None and self.recorded_calls >= self.calls_to_record:
            set_diagnosis_output(self.network, False)
        return segmentation
