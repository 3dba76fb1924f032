"""SiAN's parameter-free side-attention (Wei et al., *Learn to Segment Retinal Lesions and Beyond*, sec. 3.2, eq. 6):
channel-wise max pooling (CW-MaxPool) of the lesion probability maps, so the diagnosis network attends to "regions
with maximal lesion response".

Eq. 6 sets every one of the ``k`` weight maps to the same map, ``w_i := CW-MaxPool({s_1, ..., s_m})``. Reading
chosen: the max is taken pixel by pixel over the ``m`` lesion maps at the resolution they come in (``*S``), and the
one resulting map is then shrunk to the feature maps' size by the mean over each feature cell
(:func:`~nnunet_ext.architectures.building_blocks.side_attention_weight_map.resize_to_feature_size`, which explains why
the mean rather than linear interpolation). The map is returned once per feature channel, ``[B, F, *s]`` (a view, no
copy), the output contract of
:class:`~nnunet_ext.architectures.building_blocks.side_attention_weight_map.SideAttentionWeightMap`, so the two are
interchangeable. The weights lie in ``[0, 1]``; where no lesion is predicted they are 0, so a lesion-free image has
all its features erased, which is the limitation eq. 7 addresses (Table 7).
"""

from typing import Sequence

import torch
from torch import nn

from nnunet_ext.architectures.building_blocks.side_attention_weight_map import resize_to_feature_size


class ChannelWiseMaxPoolWeightMap(nn.Module):
    """Eq. 6: lesion probabilities ``[B, m, *S]`` -> weight maps ``[B, F, *s]``, every channel the cell mean of
    ``max_j s_j``. No parameters.

    :param num_feature_channels: ``F``, the channels of the diagnosis feature maps to weigh.
    """

    def __init__(self, num_feature_channels: int):
        super().__init__()
        self.num_feature_channels = num_feature_channels

    def forward(self, lesion_probabilities: torch.Tensor, feature_size: Sequence[int]) -> torch.Tensor:
        """``lesion_probabilities`` ``[B, m, *S]``, ``feature_size`` ``*s`` -> weights ``[B, F, *s]``."""
        maximal_response = lesion_probabilities.amax(dim=1, keepdim=True)
        weights = resize_to_feature_size(maximal_response, feature_size)
        return weights.expand(-1, self.num_feature_channels, *weights.shape[2:])
