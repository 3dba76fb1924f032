"""SiAN's learned side-attention (eq. 7): one weight map per feature channel, in (0, 1), differentiable, constant
where there is no lesion; probabilities shrunk by the cell mean."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from nnunet_ext.architectures.building_blocks.side_attention_weight_map import (SideAttentionWeightMap,
                                                                          resize_to_feature_size)

IMAGE_AND_FEATURE_SIZES = {nn.Conv2d: ((32, 32), (4, 4)), nn.Conv3d: ((16, 32, 32), (4, 8, 8))}


def lesion_probabilities(batch, channels, size):
    return torch.sigmoid(3 * torch.randn(batch, channels, *size))


@pytest.mark.parametrize("conv_op", [nn.Conv2d, nn.Conv3d])
def test_one_weight_map_per_feature_channel_within_zero_and_one(conv_op):
    torch.manual_seed(0)
    image_size, feature_size = IMAGE_AND_FEATURE_SIZES[conv_op]
    block = SideAttentionWeightMap(conv_op, num_lesion_channels=3, num_feature_channels=16)
    weights = block(lesion_probabilities(2, 3, image_size), feature_size)
    assert weights.shape == (2, 16, *feature_size)
    assert torch.all(weights > 0) and torch.all(weights < 1)
    assert not torch.allclose(weights[:, :1], weights[:, 1:2])  # the F maps are learned separately


@pytest.mark.parametrize("conv_op", [nn.Conv2d, nn.Conv3d])
def test_gradient_reaches_both_convolutions_and_the_probabilities(conv_op):
    torch.manual_seed(0)
    image_size, feature_size = IMAGE_AND_FEATURE_SIZES[conv_op]
    block = SideAttentionWeightMap(conv_op, num_lesion_channels=2, num_feature_channels=8)
    probabilities = lesion_probabilities(2, 2, image_size).requires_grad_()
    block(probabilities, feature_size).square().mean().backward()
    for conv in (block.first_conv, block.second_conv):
        assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    assert probabilities.grad.abs().sum() > 0
    assert torch.all(probabilities.grad.abs().flatten(2).amax(-1) > 0)  # every lesion channel is read


@pytest.mark.parametrize("conv_op", [nn.Conv2d, nn.Conv3d])
def test_no_lesion_gives_a_constant_nonzero_weight_per_channel(conv_op):
    torch.manual_seed(0)
    image_size, feature_size = IMAGE_AND_FEATURE_SIZES[conv_op]
    block = SideAttentionWeightMap(conv_op, num_lesion_channels=2, num_feature_channels=8)
    with torch.no_grad():  # biases far from 0 so a border effect would show
        block.first_conv.bias.uniform_(-2, 2)
        block.second_conv.bias.uniform_(-2, 2)
    weights = block(torch.zeros(1, 2, *image_size), feature_size)
    flat = weights.flatten(2)
    assert torch.allclose(flat, flat[..., :1].expand_as(flat), atol=1e-6)  # no border effect
    assert torch.all(weights > 0) and torch.all(weights < 1)


@pytest.mark.parametrize("conv_op", [nn.Conv2d, nn.Conv3d])
def test_shrinking_takes_the_mean_over_each_feature_cell(conv_op):
    torch.manual_seed(0)
    image_size, feature_size = IMAGE_AND_FEATURE_SIZES[conv_op]
    probabilities = lesion_probabilities(2, 3, image_size)
    pool = F.adaptive_avg_pool2d if conv_op is nn.Conv2d else F.adaptive_avg_pool3d
    assert torch.allclose(resize_to_feature_size(probabilities, feature_size), pool(probabilities, feature_size))


def test_a_small_lesion_that_linear_interpolation_misses_is_kept():
    probabilities = torch.zeros(1, 1, 32, 32)
    probabilities[0, 0, 2, 2] = 1.0  # one pixel, between the pixels bilinear downsampling by 8 reads
    assert F.interpolate(probabilities, size=(4, 4), mode="bilinear", align_corners=False).abs().max() == 0
    resized = resize_to_feature_size(probabilities, (4, 4))
    assert resized[0, 0, 0, 0] == pytest.approx(1 / 64) and resized.sum() == pytest.approx(1 / 64)


def test_growing_interpolates_linearly_and_equal_sizes_are_untouched():
    torch.manual_seed(0)
    probabilities = torch.rand(1, 2, 4, 8, 8)
    grown = resize_to_feature_size(probabilities, (8, 8, 8))
    assert torch.allclose(grown, F.interpolate(probabilities, size=(8, 8, 8), mode="trilinear", align_corners=False))
    assert resize_to_feature_size(probabilities, (4, 8, 8)) is probabilities


def test_wrong_number_of_lesion_channels_is_refused():
    block = SideAttentionWeightMap(nn.Conv2d, num_lesion_channels=2, num_feature_channels=8)
    with pytest.raises(ValueError, match="lesion channels"):
        block(torch.rand(1, 3, 16, 16), (4, 4))
