"""SeATrans's diagnosis branch: SeA-blocks with the asymmetric multi-scale interaction (sec. 2.1, 2.2)."""

import numpy as np
import pytest
import torch
from torch import nn

from dynamic_network_architectures.architectures.unet import PlainConvUNet
from dynamic_network_architectures.building_blocks.helper import get_matching_instancenorm

from nnunet_ext.architectures.diagnosis.seatrans_branch import (
    SeATransDiagnosisBranch, match_spatial_size, pooled_token_grid)

PLANS = {
    nn.Conv2d: ((32, 32), [1, 2, 2, 2]),
    nn.Conv3d: ((16, 32, 32), [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]]),
}


def segmentation_unet(conv_op, features=(8, 16, 32, 32)):
    _, strides = PLANS[conv_op]
    return PlainConvUNet(1, 4, list(features), conv_op, 3, strides, 2, 2, 1, conv_bias=True,
                         norm_op=get_matching_instancenorm(conv_op), norm_op_kwargs={"eps": 1e-5, "affine": True},
                         nonlin=nn.LeakyReLU, nonlin_kwargs={"inplace": True})


def branch_and_inputs(conv_op, batch=2, features=(8, 16, 32, 32), **kwargs):
    torch.manual_seed(0)
    patch, _ = PLANS[conv_op]
    unet = segmentation_unet(conv_op, features)
    branch = SeATransDiagnosisBranch(unet.encoder, 1, patch, kwargs.pop("num_outputs", 1), embed_dim=16,
                                     num_heads=4, **kwargs)
    image = torch.randn(batch, 1, *patch)
    with torch.no_grad():
        skips = unet.encoder(image)
    return branch, image, skips


def test_token_grid_halves_the_longest_axis_until_the_bound_holds():
    assert pooled_token_grid([8, 8], 256) == [8, 8]
    assert pooled_token_grid([8, 8, 8], 256) == [4, 8, 8]
    assert pooled_token_grid([4, 64, 64], 256) == [4, 8, 8]
    assert pooled_token_grid([5, 7], 10) == [3, 2]
    for size in ([64, 64, 64], [3, 17, 33], [1, 1000]):
        assert int(np.prod(pooled_token_grid(size, 37))) <= 37


def test_match_spatial_size_crops_the_far_end_and_pads_with_zeros():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert torch.equal(match_spatial_size(x, (3, 3)), x[:, :, :3, :3])
    padded = match_spatial_size(x, (5, 4))
    assert padded.shape == (1, 1, 5, 4) and torch.equal(padded[:, :, :4], x) and padded[:, :, 4].abs().sum() == 0


@pytest.mark.parametrize("conv_op", [nn.Conv2d, nn.Conv3d])
@pytest.mark.parametrize("num_outputs", [1, 3])
def test_logits_shape_and_default_interaction_on_the_last_two_stages(conv_op, num_outputs):
    branch, image, skips = branch_and_inputs(conv_op, num_outputs=num_outputs)
    logits, attention = branch(image, skips, None, return_attention=True)
    assert logits.shape == (2, num_outputs)
    assert branch.interaction_stages == [2, 3]
    # the deepest stage has no lower-resolution segmentation feature, so only its coarse interaction runs
    assert sorted(attention) == ["stage_2/coarse", "stage_2/fine", "stage_3/coarse"]
    assert torch.allclose(branch(image, skips, None), logits, atol=1e-5)


@pytest.mark.parametrize("conv_op", [nn.Conv2d, nn.Conv3d])
def test_smaller_scale_features_are_shuffled_to_the_stage_scale(conv_op):
    # channels 24 and 20: 20 is not divisible by the 2D 4x4 block nor the 3D 4x4x4 one
    branch, image, skips = branch_and_inputs(conv_op, features=(8, 16, 24, 20), interaction_stages=(1, 2))
    interaction = branch.interactions["1"]
    smaller = interaction.smaller_scale_features(skips, skips[1].shape[2:])
    blocks = [int(np.prod(f)) for f in interaction.shuffle_factors]
    expected_channels = sum(-(-c // b) for c, b in zip((24, 20), blocks))
    assert smaller.shape == (2, expected_channels, *skips[1].shape[2:])
    assert not isinstance(interaction.shuffle_channel_maps[1], nn.Identity)
    assert branch(image, skips, None).shape == (2, 1)


@pytest.mark.parametrize("conv_op", [nn.Conv2d, nn.Conv3d])
def test_attention_maps_are_distributions_over_the_keys(conv_op):
    branch, image, skips = branch_and_inputs(conv_op)
    _, attention = branch(image, skips, None, return_attention=True)
    for maps in attention.values():
        tokens = int(np.prod(maps.token_grid))
        for weights in maps.weights.values():
            assert weights.shape == (2, 4, tokens, tokens)
            assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=1e-5)


def test_token_bound_is_respected_in_3d():
    # stage 1 of a 16x32x32 patch is 16x16x16 = 4096 voxels; stage 2 is 8x8x8 = 512
    branch, image, skips = branch_and_inputs(nn.Conv3d, interaction_stages=(1, 2), max_tokens=32)
    logits, attention = branch(image, skips, None, return_attention=True)
    assert logits.shape == (2, 1)
    assert sorted(attention) == ["stage_1/coarse", "stage_1/fine", "stage_2/coarse", "stage_2/fine"]
    for maps in attention.values():
        for weights in maps.weights.values():
            assert weights.shape[-2] <= 32 and weights.shape[-1] <= 32
    assert all(int(np.prod(p.shape[2:])) <= 32 for n, p in branch.named_parameters() if n.endswith("_position"))


@pytest.mark.parametrize("conv_op", [nn.Conv2d, nn.Conv3d])
def test_segmentation_features_change_the_logits(conv_op):
    branch, image, skips = branch_and_inputs(conv_op)
    logits = branch(image, skips, None)
    changed = [s + torch.randn_like(s) for s in skips]
    assert (branch(image, changed, None) - logits).abs().max() > 1e-4


def test_lower_resolution_features_reach_the_finer_stage_through_the_fine_interaction():
    # only stage 2 interacts; the stage-3 segmentation feature can reach it only shuffled into the fine path
    branch, image, skips = branch_and_inputs(nn.Conv2d, interaction_stages=(2,))
    logits = branch(image, skips, None)
    changed = skips[:3] + [skips[3] + torch.randn_like(skips[3])]
    assert (branch(image, changed, None) - logits).abs().max() > 1e-4


@pytest.mark.parametrize("conv_op", [nn.Conv2d, nn.Conv3d])
def test_gradients_reach_the_segmentation_projections_and_the_diagnosis_encoder(conv_op):
    branch, image, skips = branch_and_inputs(conv_op)
    skips = [s.clone().requires_grad_(True) for s in skips]
    logits = branch(image, skips, None)
    nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([[1.0], [0.0]])).backward()
    projections = [branch.interactions["2"].coarse.segmentation_projection,
                   branch.interactions["2"].fine.segmentation_projection,
                   branch.interactions["3"].coarse.segmentation_projection]
    for projection in projections:
        assert projection.weight.grad is not None and projection.weight.grad.abs().sum() > 0
    first_conv = branch.encoder.stages[0][0].convs[0].conv
    assert first_conv.weight.grad.abs().sum() > 0
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in skips[2:])


def test_other_input_sizes_interpolate_the_positional_encodings():
    # a 48x36 input instead of the 32x32 patch; 36 is not divisible by the total stride 8, so the strided
    # convolutions round up (36, 18, 9, 5) and the shuffled lower-resolution features are cropped to the stage size
    branch, _, _ = branch_and_inputs(nn.Conv2d, interaction_stages=(1, 2, 3), max_tokens=64)
    unet = segmentation_unet(nn.Conv2d)
    image = torch.randn(1, 1, 48, 36)
    with torch.no_grad():
        skips = unet.encoder(image)
    logits, attention = branch(image, skips, None, return_attention=True)
    assert logits.shape == (1, 1) and torch.isfinite(logits).all()
    assert attention["stage_3/coarse"].token_grid == (6, 5)  # the 36-wide input gives ceil(36 / 8) = 5 columns


def test_rejects_bad_interaction_stages_and_patch_sizes():
    unet = segmentation_unet(nn.Conv2d)
    with pytest.raises(ValueError):
        SeATransDiagnosisBranch(unet.encoder, 1, (32, 32), 1, interaction_stages=(4,))
    with pytest.raises(ValueError):
        SeATransDiagnosisBranch(unet.encoder, 1, (32, 32), 1, interaction_stages=(3, -1))
    with pytest.raises(ValueError):
        SeATransDiagnosisBranch(unet.encoder, 1, (16, 32, 32), 1)
