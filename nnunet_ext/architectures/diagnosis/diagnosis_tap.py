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
``DiagnosisPredictor.diagnosis_from_mirrors`` every mirror too) and the tile's foreground weight
(:func:`foreground_mass`, which the ``"foreground_weighted"`` tile pooling of
:mod:`nnunet_ext.diagnosis.aggregation` uses). The tap also notes where each model's (fold's) passes start
(:meth:`DiagnosisTap.start_model`), and a model's passes can be dropped to run its sliding window again
(:meth:`DiagnosisTap.restart_model`, after nnU-Net's retry on the CPU).
"""

from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from nnunet_ext.core.network_wrappers import inner_network

SegmentationOutput = Union[torch.Tensor, List[torch.Tensor]]


class DiagnosisTap:
    """Collects, per forward pass, the ``[B, num_outputs]`` diagnosis logits and the ``[B]`` foreground weights of
    the pass's segmentation (None where not measured); the batch's targets; and the index of each model's (fold's)
    first pass (``model_starts``)."""

    def __init__(self):
        self.clear()

    def record(self, logits: torch.Tensor, weight: Optional[torch.Tensor] = None) -> None:
        self.logits.append(logits)
        self.weights.append(weight)

    def latest(self) -> torch.Tensor:
        """The logits of the last forward pass; a clear error when there was none."""
        if not self.logits:
            raise RuntimeError("No diagnosis logits were recorded: the network ran no forward pass with its "
                               "diagnosis output on (set_diagnosis_output) since the tap was cleared.")
        return self.logits[-1]

    def start_model(self) -> None:
        """The passes recorded from now on belong to the next model (fold) of an ensemble."""
        self.model_starts.append(len(self.logits))

    def restart_model(self) -> None:
        """Drop the passes of the current model (those since the last :meth:`start_model`; all when there was
        none), so that its sliding window can run again without counting a tile twice."""
        self.truncate(self.model_starts[-1] if self.model_starts else 0)

    def truncate(self, length: int) -> None:
        """Keep the first ``length`` passes."""
        del self.logits[length:], self.weights[length:]
        self.model_starts = [start for start in self.model_starts if start <= length]

    def clear(self) -> None:
        self.logits: List[torch.Tensor] = []
        self.weights: List[Optional[torch.Tensor]] = []
        self.targets: Optional[torch.Tensor] = None
        self.model_starts: List[int] = []


def foreground_mass(segmentation_logits: torch.Tensor, softmax: bool) -> torch.Tensor:
    """``[B, K, *S]`` segmentation logits -> ``[B]`` foreground probability mass, in float32: the sum over voxels of
    1 - P(background) (softmax over the K classes of a label map, channel 0 background) or, for region-based
    plans (``softmax`` False, one sigmoid per region), of the largest region probability."""
    logits = segmentation_logits.detach().float()
    if softmax:
        per_voxel = 1 - torch.softmax(logits, 1)[:, 0]
    else:
        per_voxel = torch.sigmoid(logits).amax(1)
    return per_voxel.flatten(1).sum(1)


def segmentation_is_softmax(network: nn.Module) -> Optional[bool]:
    """The ``softmax`` flag of a diagnosis network (through nnU-Net's wrappers): True for label maps, False for
    regions; None when the network does not say."""
    softmax = getattr(inner_network(network), "softmax", None)
    return None if softmax is None else bool(softmax)


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
    logits of its calls in ``tap``, each with the foreground weight of its segmentation (:func:`foreground_mass`;
    None when the network has no ``softmax`` flag). The network must have its diagnosis output on and deep
    supervision off (as the predictor builds it). It sits outside the (possibly compiled) network, so the recording
    is plain Python.

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
        self.softmax = segmentation_is_softmax(network)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calls_to_record is not None and self.recorded_calls >= self.calls_to_record:
            return self.network(x)
        segmentation, diagnosis_logits = split_diagnosis_output(self.network(x), deep_supervision=False)
        weight = None if self.softmax is None else foreground_mass(segmentation, self.softmax)
        self.tap.record(diagnosis_logits, weight)
        self.recorded_calls += 1
        if self.calls_to_record is not None and self.recorded_calls >= self.calls_to_record:
            set_diagnosis_output(self.network, False)
        return segmentation
