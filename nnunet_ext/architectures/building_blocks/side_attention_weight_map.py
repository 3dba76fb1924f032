"""SiAN's learned side-attention (Wei et al., *Learn to Segment Retinal Lesions and Beyond*, sec. 3.2, eq. 7):
a light convolutional block that turns the lesion probability maps into the weight maps that multiply the diagnosis
network's last feature maps element-wise (eq. 5).

Readings of the paper this module commits to (the reasons: docs/decisions.md, "SiAN: the weight maps"):

* **One weight map per feature channel**: eq. 7 produces ``{w_1, ..., w_k}``, ``k`` the number of feature maps, so
  the block outputs ``[B, F, *s]`` (CW-MaxPool, eq. 6, is the case where all ``k`` maps are the same).
* **Sigmoid output**: the weights stay in ``[0, 1]`` like the probabilities of eq. 6 they replace; the biases let a
  lesion-free region keep a weight above 0.
* **Replicate padding**: a map with no lesion anywhere gives a spatially constant weight ``sigmoid(b)`` per channel.
* **Width**: unspecified by the paper; a narrow hidden layer (``hidden_channels``, 32) with a LeakyReLU, no norm.
* **Resizing**: :func:`resize_to_feature_size` shrinks the maps to the feature size ``*s`` by the mean over each
  feature cell (area interpolation), so a lesion smaller than a cell keeps its share and its gradient; a map that
  must grow is (bi/tri)linearly interpolated.
"""

from typing import Optional, Sequence, Type

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.conv import _ConvNd

from nnunet_ext.architectures.building_blocks.edge_padding import replicate_pad

LINEAR_MODE_BY_TENSOR_RANK = {3: "linear", 4: "bilinear", 5: "trilinear"}


def resize_to_feature_size(maps: torch.Tensor, feature_size: Sequence[int]) -> torch.Tensor:
    """``[B, C, *S]`` -> ``[B, C, *feature_size]``: the mean over each feature cell (area interpolation) when no axis
    grows, (bi/tri)linear interpolation otherwise; unchanged when the sizes already match."""
    feature_size = tuple(int(size) for size in feature_size)
    if tuple(maps.shape[2:]) == feature_size:
        return maps
    if all(new <= old for new, old in zip(feature_size, maps.shape[2:])):
        return F.interpolate(maps, size=feature_size, mode="area")
    return F.interpolate(maps, size=feature_size, mode=LINEAR_MODE_BY_TENSOR_RANK[maps.ndim], align_corners=False)


class SideAttentionWeightMap(nn.Module):
    """Eq. 7: lesion probabilities ``[B, m, *S]`` -> weight maps ``[B, F, *s]`` in ``(0, 1)``.

    The probabilities are resized to ``*s`` (:func:`resize_to_feature_size`), then go through
    ``conv_op(m -> hidden, 3) -> nonlin -> conv_op(hidden -> F, 3) -> sigmoid`` (replicate padding, so ``*s`` is
    kept). With no lesion anywhere the weights are a constant in ``(0, 1)`` per channel: the features are rescaled,
    not erased (see the module docstring).

    :param conv_op: ``nn.Conv2d`` or ``nn.Conv3d``, as the plans give it.
    :param num_lesion_channels: ``m``, the probability channels the block reads (lesions, background excluded).
    :param num_feature_channels: ``F``, the channels of the diagnosis feature maps to weigh.
    :param hidden_channels: width of the layer between the two convolutions.
    """

    def __init__(self, conv_op: Type[_ConvNd], num_lesion_channels: int, num_feature_channels: int,
                 hidden_channels: int = 32, nonlin: Type[nn.Module] = nn.LeakyReLU,
                 nonlin_kwargs: Optional[dict] = None):
        super().__init__()
        self.num_lesion_channels = num_lesion_channels
        self.num_feature_channels = num_feature_channels
        # unpadded convolutions after replicate_pad (edge_padding.py: compiles with inductor, padding_mode does not)
        self.first_conv = conv_op(num_lesion_channels, hidden_channels, kernel_size=3, padding=0)
        self.nonlin = nonlin(**(nonlin_kwargs or {}))
        self.second_conv = conv_op(hidden_channels, num_feature_channels, kernel_size=3, padding=0)

    def forward(self, lesion_probabilities: torch.Tensor, feature_size: Sequence[int]) -> torch.Tensor:
        """``lesion_probabilities`` ``[B, m, *S]``, ``feature_size`` ``*s`` -> weights ``[B, F, *s]``."""
        if lesion_probabilities.shape[1] != self.num_lesion_channels:
            raise ValueError(f"expected {self.num_lesion_channels} lesion channels, got "
                             f"{lesion_probabilities.shape[1]}")
        resized = resize_to_feature_size(lesion_probabilities, feature_size)
        hidden = self.nonlin(self.first_conv(replicate_pad(resized, 1)))
        return torch.sigmoid(self.second_conv(replicate_pad(hidden, 1)))
