"""What every diagnosis branch takes and returns, and the classifier that ends most of them.

A diagnosis branch is an ``nn.Module`` whose ``forward`` is::

    forward(image, segmentation_features, segmentation_probabilities) -> logits

- ``image``: the network input, ``[B, C, *S]`` (``*S`` is 2 or 3 spatial sizes, the plans' patch size in training).
- ``segmentation_features``: the segmentation encoder's stage outputs (its skips), highest resolution first,
  ``[B, F_s, *S_s]`` each; the last one is the bottleneck.
- ``segmentation_probabilities``: softmax (or, for region-based plans, sigmoid) of the segmentation logits at full
  resolution, ``[B, K, *S]``.
- ``logits``: ``[B, num_diagnosis_outputs]``; 1 output for a binary diagnosis (BCE), one per class otherwise (CE).

A branch uses what its method needs and ignores the rest.
"""

import torch
from torch import nn


def num_diagnosis_outputs(num_classes: int) -> int:
    """Logits a branch produces for ``num_classes`` diagnosis classes: 1 for binary (BCE), ``num_classes`` else."""
    if num_classes < 2:
        raise ValueError(f"a diagnosis needs at least two classes, got {num_classes}")
    return 1 if num_classes == 2 else num_classes


def global_average_pool(features: torch.Tensor) -> torch.Tensor:
    """``[B, F, *S]`` -> ``[B, F]``, the mean over every spatial axis."""
    return features.mean(dim=tuple(range(2, features.ndim)))


class DiagnosisBranch(nn.Module):
    """Base class of the diagnosis branches (see the module docstring for the shapes)."""

    def forward(self, image: torch.Tensor, segmentation_features: list,
                segmentation_probabilities: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class PooledClassifier(nn.Module):
    """Global average pooling, then a linear layer: ``[B, F, *S]`` -> ``[B, num_outputs]``."""

    def __init__(self, in_channels: int, num_outputs: int):
        super().__init__()
        self.linear = nn.Linear(in_channels, num_outputs)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(global_average_pool(features))
