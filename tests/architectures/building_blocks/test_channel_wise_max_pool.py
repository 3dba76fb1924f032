"""SiAN's CW-MaxPool weights (eq. 6): the max over the lesion channels, shrunk to the feature size, the same map
for every feature channel; no parameters."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from nnunet_ext.architectures.building_blocks.channel_wise_max_pool import ChannelWiseMaxPoolWeightMap
from nnunet_ext.architectures.building_blocks.side_attention_weight_map import SideAttentionWeightMap

SIZES = {2: ((32, 32), (4, 4)), 3: ((16, 32, 32), (4, 8, 8))}
CELL_MEAN = {2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}


@pytest.mark.parametrize("dimension", [2, 3])
def test_every_channel_is_the_cell_mean_of_the_max_over_lesions(dimension):
    torch.manual_seed(0)
    image_size, feature_size = SIZES[dimension]
    probabilities = torch.rand(2, 3, *image_size)
    weights = ChannelWiseMaxPoolWeightMap(num_feature_channels=8)(probabilities, feature_size)
    assert weights.shape == (2, 8, *feature_size)
    expected = CELL_MEAN[dimension](probabilities.max(dim=1, keepdim=True).values, feature_size)
    assert torch.allclose(weights, expected.expand_as(weights))
    # the max, not the mean over lesions: differs from pooling the channel mean
    assert not torch.allclose(weights[:, :1], CELL_MEAN[dimension](probabilities.mean(1, keepdim=True), feature_size))


@pytest.mark.parametrize("dimension", [2, 3])
def test_no_lesion_gives_zero_weights(dimension):
    image_size, feature_size = SIZES[dimension]
    weights = ChannelWiseMaxPoolWeightMap(num_feature_channels=4)(torch.zeros(1, 2, *image_size), feature_size)
    assert torch.count_nonzero(weights) == 0


def test_gradient_reaches_only_the_maximal_lesion_channel():
    torch.manual_seed(0)
    probabilities = torch.rand(1, 3, 16, 16)
    probabilities[:, 1] += 1.0  # channel 1 is the maximum everywhere
    probabilities.requires_grad_()
    ChannelWiseMaxPoolWeightMap(num_feature_channels=4)(probabilities, (4, 4)).sum().backward()
    assert torch.all(probabilities.grad[:, 1] > 0)
    assert torch.count_nonzero(probabilities.grad[:, [0, 2]]) == 0


def test_has_no_parameters_and_does_not_copy_per_channel():
    block = ChannelWiseMaxPoolWeightMap(num_feature_channels=2048)
    assert len(list(block.parameters())) == 0
    weights = block(torch.rand(1, 2, 32, 32), (2, 2))
    assert weights.shape == (1, 2048, 2, 2) and weights.stride(1) == 0


def test_interchangeable_with_the_learned_block():
    torch.manual_seed(0)
    probabilities = torch.rand(2, 3, 16, 32, 32)
    learned = SideAttentionWeightMap(nn.Conv3d, num_lesion_channels=3, num_feature_channels=8)(
        probabilities, (4, 8, 8))
    pooled = ChannelWiseMaxPoolWeightMap(num_feature_channels=8)(probabilities, (4, 8, 8))
    assert learned.shape == pooled.shape
