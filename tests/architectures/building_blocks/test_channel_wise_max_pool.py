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


def test_values_on_a_hand_made_input_and_the_learned_blocks_contract():
    """Lesion 0 fills the top-left cell (1.0); lesion 1 the bottom-right (0.5) and one pixel of the top-right (0.8):
    the pixel-wise max, then the mean of each 2x2 cell, is [[1.0, 0.2], [0.0, 0.5]] for every feature channel."""
    probabilities = torch.zeros(1, 2, 4, 4)
    probabilities[0, 0, :2, :2] = 1.0
    probabilities[0, 1, 2:, 2:] = 0.5
    probabilities[0, 1, 0, 2] = 0.8
    probabilities[0, 0, 2:, 2:] = 0.25  # below lesion 1 there: the max keeps 0.5
    weights = ChannelWiseMaxPoolWeightMap(num_feature_channels=3)(probabilities, (2, 2))
    expected = torch.tensor([[1.0, 0.2], [0.0, 0.5]])
    assert weights.shape == (1, 3, 2, 2)
    assert all(torch.allclose(weights[0, channel], expected) for channel in range(3))
    learned = SideAttentionWeightMap(nn.Conv2d, num_lesion_channels=2, num_feature_channels=3)(probabilities, (2, 2))
    assert learned.shape == weights.shape  # the two are interchangeable in SiAN's branch


def test_values_on_a_hand_made_volume():
    """3D: lesion 0 has 0.8 at one voxel of the left 2x2x2 cell; at one voxel of the right cell lesion 1 has 0.4 over
    lesion 0's 0.1. Max over lesions, then the mean over the 8 voxels of each cell: [0.1, 0.05]."""
    probabilities = torch.zeros(1, 2, 2, 2, 4)
    probabilities[0, 0, 0, 0, 0] = 0.8
    probabilities[0, 1, 1, 1, 3] = 0.4
    probabilities[0, 0, 1, 1, 3] = 0.1
    weights = ChannelWiseMaxPoolWeightMap(num_feature_channels=2)(probabilities, (1, 1, 2))
    assert weights.shape == (1, 2, 1, 1, 2)
    assert torch.allclose(weights, torch.tensor([0.1, 0.05]).reshape(1, 1, 1, 1, 2).expand(1, 2, 1, 1, 2))
