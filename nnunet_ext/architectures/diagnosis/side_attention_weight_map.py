"""SiAN's learned side-attention (Wei et al., *Learn to Segment Retinal Lesions and Beyond*, sec. 3.2, eq. 7):
a light convolutional block that turns the lesion probability maps into the weight maps that multiply the diagnosis
network's last feature maps element-wise (eq. 5).

Readings of the paper this module commits to:

* **One weight map per feature channel.** Eq. 5 multiplies every feature map ``f_i`` by its own ``w_i``, and eq. 7
  produces ``{w_1, ..., w_k} := Conv({s_1, ..., s_m})`` with ``k`` the number of feature maps (2,048 for
  Inception-v3). The block therefore outputs ``F`` channels, ``[B, F, *s]`` (CW-MaxPool, eq. 6, is the special case
  where all ``k`` maps are the same).
* **Sigmoid output.** The weights replace, in eq. 7, the CW-MaxPool of probabilities (eq. 6), which lie in
  ``[0, 1]``. A sigmoid keeps the learned weights in the same range: they gate the features (they never flip a
  feature's sign nor scale it up without bound), so the pooled features keep the scale the classifier sees in the
  plain network. The convolutions' biases let a lesion-free region still get a weight strictly above 0, which is the
  paper's reason for learning the weights at all: "a region deemed to be negative with respect to the lesions does
  not necessarily mean it is useless for DR grading".
* **Replicate padding.** The two 3x3 convolutions pad by repeating the border, so a spatially constant input (in
  particular a map with no lesion anywhere) gives a spatially constant weight per channel, ``sigmoid(b)`` with ``b``
  learned; with zero padding the image border alone would change the weights.
* **Width.** The paper gives neither the hidden width nor the nonlinearity; the block is "lightweight", so the
  hidden layer is narrow (``hidden_channels``, 32 by default) with a LeakyReLU between the convolutions (no norm).
* **Resizing.** The probability maps come at the image's resolution ``*S``; the feature maps are smaller, ``*s``.
  :func:`resize_to_feature_size` shrinks them by area interpolation, the mean over each feature cell, rather than by
  (bi/tri)linear interpolation: at a stride of 16 or 32 linear interpolation reads only 2 pixels per axis of each
  cell, so a small lesion lying between those pixels (a microaneurysm) would vanish from the weights and get no
  gradient; the cell mean keeps every pixel's share. A map that must grow is (bi/tri)linearly interpolated.
"""

from typing import Optional, Sequence, Type

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.conv import _ConvNd

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
        self.first_conv = conv_op(num_lesion_channels, hidden_channels, kernel_size=3, padding=1,
                                  padding_mode="replicate")
        self.nonlin = nonlin(**(nonlin_kwargs or {}))
        self.second_conv = conv_op(hidden_channels, num_feature_channels, kernel_size=3, padding=1,
                                   padding_mode="replicate")

    def forward(self, lesion_probabilities: torch.Tensor, feature_size: Sequence[int]) -> torch.Tensor:
        """``lesion_probabilities`` ``[B, m, *S]``, ``feature_size`` ``*s`` -> weights ``[B, F, *s]``."""
        if lesion_probabilities.shape[1] != self.num_lesion_channels:
            raise ValueError(f"expected {self.num_lesion_channels} lesion channels, got "
                             f"{lesion_probabilities.shape[1]}")
        resized = resize_to_feature_size(lesion_probabilities, feature_size)
        return torch.sigmoid(self.second_conv(self.nonlin(self.first_conv(resized))))
