"""A segmentation network planned by nnU-Net with a diagnosis branch fed by its segmentation.

``forward(x [B, C, *S])`` returns exactly what the segmentation network returns (the segmentation logits
``[B, K, *S]``, or the deep-supervision list), because nnU-Net's trainer and predictor call ``network(x)``. With
``diagnosis_output`` set (from outside ``forward``), the diagnosis branch also runs and its logits
``[B, num_outputs]`` follow the segmentation outputs in one list
(:mod:`~nnunet_ext.architectures.diagnosis.diagnosis_tap`).

The segmentation part keeps the segmentation network's module names (``encoder.*``, ``decoder.*``, and whatever
else it has), so the weights of a segmentation model trained with the same plans fill it by name; the diagnosis
branch lives under ``diagnosis.*``. With ``segmentation_frozen`` the segmentation part runs without gradients (the
papers' setting: a trained segmentation model, frozen); otherwise both parts train together.

What the branch receives (``diagnosis_branch.py``):

- ``segmentation_features`` from nnU-Net's own U-Net (``PlainConvUNet``, ``ResidualEncoderUNet``), either the
  decoder's stage outputs at the encoder's scales with the bottleneck last (``features_from="decoder"``, SeATrans'
  "multi-scale features in UNet decoder", :mod:`decoder_features`) or the encoder's skips
  (``features_from="encoder"``). Any other segmentation network (L-Net, Div-attention's U-Net) is run as a whole
  (``features_from=None``): the branch gets ``segmentation_features=None`` and must use the probabilities only.
- ``segmentation_probabilities``: softmax (labels) or sigmoid (regions) of the full-resolution logits. Detached
  from the segmentation unless ``probabilities_gradient``: the papers' Base-cat and SiAN read a trained
  segmentation's output and never train the segmentation through the diagnosis loss; with
  ``probabilities_gradient=True`` a jointly trained network lets the diagnosis loss reach the segmentation through
  the probabilities too (the coupled form).
"""

from contextlib import nullcontext
from typing import List, Optional, Union

import torch
from torch import nn

from nnunet_ext.architectures.diagnosis.decoder_features import decoder_output_and_features
from nnunet_ext.architectures.diagnosis.diagnosis_tap import diagnosis_in_output
from nnunet_ext.core.weights_check import check_weights_fit

ADDED_MODULE = {"prefix": "diagnosis.", "name": "diagnosis branch"}
FEATURE_SOURCES = ("decoder", "encoder", None)


def segmentation_probabilities(logits: torch.Tensor, softmax: bool) -> torch.Tensor:
    """``[B, K, *S]`` logits -> probabilities: softmax over classes, or per-region sigmoid."""
    return torch.softmax(logits, 1) if softmax else torch.sigmoid(logits)


class SegmentationAssistedDiagnosisNetwork(nn.Module):
    """:param segmentation_network: the segmentation network (nnU-Net's planned U-Net, or one of ours); its modules
        become this network's modules under their own names.
    :param diagnosis: a diagnosis branch (see ``diagnosis_branch.py`` for what it receives).
    :param softmax: whether the segmentation logits are read by softmax (label maps) or sigmoid (regions).
    :param features_from: ``"decoder"``, ``"encoder"`` (nnU-Net's U-Net: an ``encoder`` returning its stage outputs
        and a ``UNetDecoder``) or None (any segmentation network, run through its own ``forward``).
    :param probabilities_gradient: let the diagnosis loss reach the segmentation through the probabilities.
    """

    def __init__(self, segmentation_network: nn.Module, diagnosis: nn.Module, softmax: bool,
                 features_from: Optional[str] = "decoder", probabilities_gradient: bool = False):
        super().__init__()
        if features_from not in FEATURE_SOURCES:
            raise ValueError(f"features_from must be one of {FEATURE_SOURCES}, got {features_from!r}")
        for name, module in segmentation_network.named_children():
            self.add_module(name, module)
        # the segmentation network's own forward, on the same (shared) modules; a bound method is not a submodule,
        # so its parameters appear once, under the names above
        self._segmentation_forward = segmentation_network.forward
        self.diagnosis = diagnosis
        self.softmax = softmax
        self.features_from = features_from
        self.probabilities_gradient = bool(probabilities_gradient)
        self.segmentation_frozen = False
        self.diagnosis_output = False  # also return the diagnosis logits (see diagnosis_tap.py)

    def segmentation_parameters(self) -> List[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith(ADDED_MODULE["prefix"])]

    def freeze_segmentation(self) -> None:
        """Stop training the segmentation part (its parameters get ``requires_grad = False``)."""
        self.segmentation_frozen = True
        for parameter in self.segmentation_parameters():
            parameter.requires_grad_(False)

    def segmentation_state_dict_keys(self) -> List[str]:
        return [k for k in self.state_dict() if not k.startswith(ADDED_MODULE["prefix"])]

    def _segment(self, x: torch.Tensor, with_features: bool):
        """(segmentation output, the branch's segmentation features or None)."""
        if self.features_from is None:
            return self._segmentation_forward(x), None
        skips = self.encoder(x)
        if self.features_from == "decoder" and with_features:
            return decoder_output_and_features(self.decoder, skips)
        return self.decoder(skips), skips

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, List[torch.Tensor]]:
        """``x [B, C, *S]`` -> the segmentation output; with ``diagnosis_output``, ``[*segmentation outputs,
        diagnosis logits [B, num_outputs]]``."""
        with torch.no_grad() if self.segmentation_frozen else nullcontext():
            segmentation, features = self._segment(x, with_features=self.diagnosis_output)
        if not self.diagnosis_output:
            return segmentation
        full_resolution = segmentation[0] if isinstance(segmentation, (list, tuple)) else segmentation
        probabilities = segmentation_probabilities(full_resolution, self.softmax)
        if not self.probabilities_gradient:
            probabilities = probabilities.detach()
        return diagnosis_in_output(segmentation, self.diagnosis(x, features, probabilities))

    def segmentation_network(self) -> Optional[nn.Module]:
        """The segmentation network whose ``forward`` the segmentation part runs, when it is not nnU-Net's U-Net
        (``features_from=None``: L-Net, Div-attention's U-Net); None otherwise."""
        return self._segmentation_forward.__self__ if self.features_from is None else None

    def forward_with_attention(self, x: torch.Tensor):
        """For exporting the maps (never called in training): ``(segmentation output, diagnosis logits [B,
        num_outputs], attention)``. ``attention`` holds what the branch attended to (a branch whose ``forward``
        takes ``return_attention``: SeATrans' ``{"stage_<i>/<path>": InteractionAttention}``, SiAN's
        ``{"weight_map": [B, F, *s]}``) and, under ``"segmentation"``, the segmentation part's own maps when it
        has any (a Div-attention U-Net's junction maps)."""
        segmentation_network = self.segmentation_network()
        attention = {}
        if segmentation_network is not None and hasattr(segmentation_network, "forward_with_attention"):
            segmentation, attention["segmentation"] = segmentation_network.forward_with_attention(x)
            features = None
        else:
            segmentation, features = self._segment(x, with_features=True)
        full_resolution = segmentation[0] if isinstance(segmentation, (list, tuple)) else segmentation
        probabilities = segmentation_probabilities(full_resolution, self.softmax)
        if getattr(self.diagnosis, "returns_attention", False):
            diagnosis, branch_attention = self.diagnosis(x, features, probabilities, return_attention=True)
            attention.update(branch_attention)
        else:
            diagnosis = self.diagnosis(x, features, probabilities)
        return segmentation, diagnosis, attention

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict`` with an error that says what the weights are instead."""
        if strict:
            check_weights_fit(self.state_dict(), state_dict, "this segmentation-assisted diagnosis network",
                              added_module=ADDED_MODULE,
                              other_architecture="another diagnosis method, other plans or another number of "
                                                 "channels or classes")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
