"""A segmentation U-Net planned by nnU-Net with a diagnosis branch fed by its segmentation.

``forward(x [B, C, *S])`` returns exactly what the planned U-Net returns (the segmentation logits ``[B, K, *S]``, or
the deep-supervision list), because nnU-Net's trainer and predictor call ``network(x)``. With ``diagnosis_output``
set (from outside ``forward``), the diagnosis branch also runs and its logits ``[B, num_outputs]`` follow the
segmentation outputs in one list (:mod:`~nnunet_ext.architectures.diagnosis.diagnosis_tap`).

The segmentation part keeps the planned network's module names (``encoder.*``, ``decoder.*``), so the weights of a
segmentation model trained with the same plans fill it by name; the diagnosis branch lives under ``diagnosis.*``.
With ``segmentation_frozen`` the segmentation part runs without gradients (the papers' setting: a trained
segmentation model, frozen); otherwise both parts train together.
"""

from contextlib import nullcontext
from typing import List, Union

import torch
from torch import nn

from nnunet_ext.architectures.diagnosis.diagnosis_tap import diagnosis_in_output
from nnunet_ext.core.weights_check import check_weights_fit

ADDED_MODULE = {"prefix": "diagnosis.", "name": "diagnosis branch"}


def segmentation_probabilities(logits: torch.Tensor, softmax: bool) -> torch.Tensor:
    """``[B, K, *S]`` logits -> probabilities: softmax over classes, or per-region sigmoid."""
    return torch.softmax(logits, 1) if softmax else torch.sigmoid(logits)


class SegmentationAssistedDiagnosisNetwork(nn.Module):
    """:param unet: nnU-Net's planned network (``PlainConvUNet``, ``ResidualEncoderUNet``: an ``encoder`` returning
        its stage outputs and a ``decoder`` turning them into segmentation logits).
    :param diagnosis: a diagnosis branch (see ``diagnosis_branch.py`` for what it receives).
    :param softmax: whether the segmentation logits are read by softmax (label maps) or sigmoid (regions).
    """

    def __init__(self, unet: nn.Module, diagnosis: nn.Module, softmax: bool):
        super().__init__()
        self.encoder = unet.encoder
        self.decoder = unet.decoder
        self.diagnosis = diagnosis
        self.softmax = softmax
        self.segmentation_frozen = False
        self.diagnosis_output = False  # also return the diagnosis logits (see diagnosis_tap.py)

    def freeze_segmentation(self) -> None:
        """Stop training the segmentation part (its parameters get ``requires_grad = False``)."""
        self.segmentation_frozen = True
        for parameter in [*self.encoder.parameters(), *self.decoder.parameters()]:
            parameter.requires_grad_(False)

    def segmentation_state_dict_keys(self) -> List[str]:
        return [k for k in self.state_dict() if not k.startswith("diagnosis.")]

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, List[torch.Tensor]]:
        """``x [B, C, *S]`` -> the segmentation output; with ``diagnosis_output``, ``[*segmentation outputs,
        diagnosis logits [B, num_outputs]]``."""
        with torch.no_grad() if self.segmentation_frozen else nullcontext():
            features = self.encoder(x)
            segmentation = self.decoder(features)
        if not self.diagnosis_output:
            return segmentation
        full_resolution = segmentation[0] if isinstance(segmentation, (list, tuple)) else segmentation
        probabilities = segmentation_probabilities(full_resolution, self.softmax)
        return diagnosis_in_output(segmentation, self.diagnosis(x, features, probabilities))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict`` with an error that says what the weights are instead."""
        if strict:
            check_weights_fit(self.state_dict(), state_dict, "this segmentation-assisted diagnosis network",
                              added_module=ADDED_MODULE,
                              other_architecture="another diagnosis method, other plans or another number of "
                                                 "channels or classes")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
