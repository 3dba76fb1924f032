"""Where a segmentation-assisted diagnosis network leaves its diagnosis logits.

nnU-Net's training step, validation step and sliding-window predictor all call ``network(x)`` and expect the
segmentation output back. A diagnosis network therefore returns the segmentation output only, and, while a
:class:`DiagnosisTap` is attached to it, also appends the diagnosis logits of every forward pass to the tap. The
trainer reads them for its loss and metrics; the predictor reads those of every sliding-window tile (and mirror, and
fold) of a case and aggregates them into one per-case prediction. Without a tap the diagnosis branch does not run,
so the stock ``nnUNetv2_predict`` costs what a segmentation network costs.
"""

from typing import List, Optional

import torch

from nnunet_ext.core.network_wrappers import inner_network


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
            raise RuntimeError("No diagnosis logits were recorded: the network ran no forward pass with this tap "
                               "attached (network.diagnosis_tap).")
        return self.logits[-1]

    def clear(self) -> None:
        self.logits = []
        self.targets = None


def attach_diagnosis_tap(network: torch.nn.Module, tap: Optional[DiagnosisTap]) -> bool:
    """Attach ``tap`` (None detaches) to a diagnosis network, through nnU-Net's wrappers. Returns False, and does
    nothing, for a network without a diagnosis branch."""
    network = inner_network(network)
    if not hasattr(network, "diagnosis_tap"):
        return False
    network.diagnosis_tap = tap
    return True
