"""SeATrans's diagnosis branch: SeA-blocks with the asymmetric multi-scale interaction (sec. 2.1, 2.2)."""

import numpy as np
import pytest
import torch
from torch import nn

from dynamic_network_architectures.architectures.unet import PlainConvUNet
from dynamic_network_architectures.building_blocks.helper import get_matching_instancenorm

from nnunet_ext.architectures.diagnosis.diagnosis_methods import build_diagnosis_branch
from nnunet_ext.architectures.diagnosis.seatrans_branch import (
    SeATransDiagnosisBranch, default_interaction_stages, match_spatial_size, pooled_token_grid, total_strides)

PLANS = {
    nn.Conv2d: ((32, 32), [1, 2, 2, 2]),
    nn.Conv3d: ((16, 32, 32), [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]]),
}
# six-stage plans like nnU-Net's (total strides 1..32 on the most-downsampled axis), small patches; the 3D one is
# anisotropic (z downsampled from stage 3 on) and its stage-5 features (32 channels) do not fill the 4x4x4 block
DEEP_PLANS = {
    nn.Conv2d: ((64, 64), [1, 2, 2, 2, 2, 2]),
    nn.Conv3d: ((16, 64, 64), [[1, 1, 1], [1, 2, 2], [1, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2]]),
}
DEEP_FEATURES = (4, 8, 16, 16, 32, 32)


def segmentation_unet(conv_op, features=(8, 16, 32, 32), plans=PLANS):
    _, strides = plans[conv_op]
    return PlainConvUNet(1, len(features), list(features), conv_op, 3, strides, 2, 2, 1, conv_bias=True,
                         norm_op=get_matching_instancenorm(conv_op), norm_op_kwargs={"eps": 1e-5, "affine": True},
                         nonlin=nn.LeakyReLU, nonlin_kwargs={"inplace": True})


def branch_and_inputs(conv_op, batch=2, features=(8, 16, 32, 32), plans=PLANS, **kwargs):
    torch.manual_seed(0)
    patch, _ = plans[conv_op]
    unet = segmentation_unet(conv_op, features, plans)
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
def test_logits_shape_and_the_former_placement_on_the_last_two_stages(conv_op, num_outputs):
    branch, image, skips = branch_and_inputs(conv_op, num_outputs=num_outputs, interaction_stages=(-2, -1))
    logits, attention = branch(image, skips, None, return_attention=True)
    assert logits.shape == (2, num_outputs)
    assert branch.interaction_stages == [2, 3]
    # the deepest stage has no lower-resolution segmentation feature, so only its coarse interaction runs
    assert sorted(attention) == ["stage_2/coarse", "stage_2/fine", "stage_3/coarse"]
    assert torch.allclose(branch(image, skips, None), logits, atol=1e-5)


def test_total_strides_follow_the_most_downsampled_axis():
    assert total_strides([1, 2, 2, 2]) == [1, 2, 4, 8]
    assert total_strides([[1, 1, 1], [1, 2, 2], [1, 2, 2], [2, 2, 2], [2, 1, 1]]) == [1, 2, 4, 8, 8]
    assert total_strides([[1, 1], [2, 1], [2, 1], [1, 2]]) == [1, 2, 4, 4]


@pytest.mark.parametrize("strides, expected", [
    ([1] + [2] * 7, (3, 4)),  # nnU-Net's 2D plan of a 512x512 image: total strides 8 and 16, three stages after
    ([1] + [2] * 6, (3, 4)),  # 256x256, the paper's input size
    ([[1, 1, 1]] + [[2, 2, 2]] * 5, (3, 4)),  # 3D 128^3
    ([[1, 1, 1], [1, 2, 2], [1, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2]], (3, 4)),  # anisotropic: in-plane 8, 16
    ([1, 2, 2, 2, 2], (2, 3)),  # shallow plans fall back, keeping a stage after and two features in the fine path
    ([1, 2, 2, 2], (1, 2)),
    ([[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]], (1, 2)),  # the synthetic 3D plan
    ([1, 2, 2], (0, 1)),
    ([1, 2], (0,)),
    # prostate-like 20x320x256: z is downsampled at stages 3 and 4 only; in plane 8 and 16 at stages 3 and 4
    ([[1, 1, 1], [1, 2, 2], [1, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2], [1, 2, 2]], (3, 4)),
])
def test_the_default_placement_follows_the_papers_strides(strides, expected):
    assert default_interaction_stages(strides) == expected
    with pytest.raises(ValueError, match="no valid placement"):
        default_interaction_stages([1])


@pytest.mark.parametrize("conv_op", [nn.Conv2d, nn.Conv3d])
def test_the_default_placement_fuses_several_deeper_features_and_a_stage_follows(conv_op):
    branch, image, skips = branch_and_inputs(conv_op)  # 4 stages
    first, last = branch.interaction_stages[0], branch.interaction_stages[-1]
    assert last < len(branch.encoder.stages) - 1  # a diagnosis stage runs after the last interaction
    interaction = branch.interactions[str(first)]
    assert len(interaction.fine_sources) >= 2
    shuffled = interaction.smaller_scale_features(skips, skips[first].shape[2:])
    assert shuffled.shape[1] == sum(interaction.shuffled_channels) > max(interaction.shuffled_channels)
    logits, attention = branch(image, skips, None, return_attention=True)
    assert f"stage_{first}/fine" in attention and f"stage_{last}/fine" in attention


def call_order(branch, image, skips):
    """The modules the branch runs, in order: ``("stage", i)`` for encoder stage ``i``, ``("interaction", i)``."""
    order, handles = [], []
    for index, stage in enumerate(branch.encoder.stages):
        handles.append(stage.register_forward_hook(lambda *_, i=index: order.append(("stage", i))))
    for index, interaction in branch.interactions.items():
        handles.append(interaction.register_forward_hook(lambda *_, i=int(index): order.append(("interaction", i))))
    try:
        logits = branch(image, skips, None)
    finally:
        for handle in handles:
            handle.remove()
    return order, logits


@pytest.mark.parametrize("conv_op", [nn.Conv2d, nn.Conv3d])
def test_on_six_stage_plans_the_default_placement_is_strides_8_and_16_with_a_stage_after(conv_op):
    branch, image, skips = branch_and_inputs(conv_op, batch=1, features=DEEP_FEATURES, plans=DEEP_PLANS)
    assert branch.interaction_stages == [3, 4]
    first = branch.interactions["3"]
    # the fine path of stage 3 concatenates stages 4 and 5 voxel-shuffled by 2 and 4 per (in-plane) axis:
    # 2D: 32 / 2^2 + 32 / 4^2 = 8 + 2; 3D (both anisotropic stages stride 2 on every axis): 32 / 2^3 + ceil(32 / 4^3)
    assert first.fine_sources == [4, 5]
    expected_channels = [8, 2] if conv_op is nn.Conv2d else [4, 1]
    assert first.shuffled_channels == expected_channels
    fine_input = first.smaller_scale_features(skips, skips[3].shape[2:])
    assert fine_input.shape == (1, sum(expected_channels), *skips[3].shape[2:])
    assert first.fine.segmentation_projection.in_channels == sum(expected_channels)
    # each source fills its own channel block: changing stage j's feature changes that block and no other
    for block, source in enumerate(first.fine_sources):
        changed = list(skips)
        changed[source] = skips[source] + torch.randn_like(skips[source])
        difference = (first.smaller_scale_features(changed, skips[3].shape[2:]) - fine_input).abs()
        start = sum(expected_channels[:block])
        inside = difference[:, start:start + expected_channels[block]]
        assert inside.max() > 1e-3 and (difference.sum() - inside.sum()).abs() < 1e-6
    order, logits = call_order(branch, image, skips)
    assert logits.shape == (1, 1)
    last_interaction = max(i for i, (kind, _) in enumerate(order) if kind == "interaction")
    assert ("stage", 5) in order[last_interaction + 1:]  # the diagnosis encoder goes on after the interactions
    assert order == [("stage", 0), ("stage", 1), ("stage", 2), ("stage", 3), ("interaction", 3), ("stage", 4),
                     ("interaction", 4), ("stage", 5)]


def test_the_former_placement_stays_selectable_and_ends_the_encoder():
    branch, image, skips = branch_and_inputs(nn.Conv2d, batch=1, features=DEEP_FEATURES, plans=DEEP_PLANS,
                                             interaction_stages=(-2, -1))
    assert branch.interaction_stages == [4, 5]
    assert branch.interactions["4"].fine_sources == [5] and branch.interactions["5"].fine is None
    order, _ = call_order(branch, image, skips)
    assert order[-1] == ("interaction", 5)


def test_the_vitalised_feature_is_the_fused_output_unless_residual():
    outputs = {}
    for residual in (False, True):
        branch, image, skips = branch_and_inputs(nn.Conv2d, interaction_stages=(1,), residual=residual)
        features = branch.encoder.stages[1](branch.encoder.stages[0](image))
        with torch.no_grad():
            outputs[residual] = branch.interactions["1"](features, skips)
    assert torch.allclose(outputs[True] - outputs[False], features, atol=1e-5)


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
    projections = [getattr(branch.interactions[str(stage)], path).segmentation_projection
                   for stage in branch.interaction_stages for path in ("coarse", "fine")]
    for projection in projections:
        assert projection.weight.grad is not None and projection.weight.grad.abs().sum() > 0
    first_conv = branch.encoder.stages[0][0].convs[0].conv
    assert first_conv.weight.grad.abs().sum() > 0
    first = branch.interaction_stages[0]
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in skips[first:])


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


def test_build_diagnosis_branch_forwards_the_seatrans_options_and_rejects_others():
    unet = segmentation_unet(nn.Conv2d)
    args = (unet.encoder, 1, 4, 1, (32, 32), True)
    default = build_diagnosis_branch("seatrans", *args)
    assert default.interaction_stages == [1, 2] and default.max_tokens == 256 and default.residual is False
    chosen = build_diagnosis_branch("seatrans", *args, interaction_stages=(-2, -1), max_tokens=16, residual=True)
    assert chosen.interaction_stages == [2, 3] and chosen.max_tokens == 16 and chosen.residual is True
    assert all(i.residual and i.coarse.max_tokens == 16 for i in chosen.interactions.values())
    kept = build_diagnosis_branch("seatrans", *args, interaction_stages=None, max_tokens=None, residual=None)
    assert kept.interaction_stages == [1, 2] and kept.max_tokens == 256 and kept.residual is False
    with pytest.raises(ValueError, match=r"'seatrans' takes no option\(s\) \['embed'\].*interaction_stages"):
        build_diagnosis_branch("seatrans", *args, embed=8)
    with pytest.raises(ValueError, match=r"'sian' takes no option\(s\) \['max_tokens'\]; its options are none"):
        build_diagnosis_branch("sian", *args, max_tokens=16)
    assert build_diagnosis_branch("sian", *args).weight_map is not None  # calls without options keep working
