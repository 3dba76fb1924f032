"""One Div-attention junction (eq. 1-5): shapes in 2D and 3D, gradients, and that it uses what the paper says."""

import pytest
import torch
from torch import nn

from nnunet_ext.architectures.building_blocks.div_attention_junction import DivAttentionJunction

OPS = {2: (nn.Conv2d, nn.InstanceNorm2d), 3: (nn.Conv3d, nn.InstanceNorm3d)}


def make_junction(dim, num_classes, num_input_channels=2, stride=2, **options):
    conv_op, norm_op = OPS[dim]
    return DivAttentionJunction(conv_op, num_classes, num_input_channels, upsample_stride=[stride] * dim,
                                kernel_size=[3] * dim, fusion_channels=8, conv_bias=True, norm_op=norm_op,
                                norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=nn.LeakyReLU,
                                nonlin_kwargs={"inplace": True}, **options)


# the readings of issue 11 (one option changed each), beside the default
OPTIONS = {"default": {}, "softmax_map": {"attention": "softmax"}, "softmax_masks": {"masks": "softmax"},
           "no_residual": {"residual": False}}


# 1 output (binary sigmoid-style), 3 classes with background (softmax datasets), 3 overlapping regions (BraTS-style)
CLASS_COUNTS = {"one_output": 1, "three_classes": 3, "three_regions": 3}


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("num_classes", CLASS_COUNTS.values(), ids=CLASS_COUNTS.keys())
def test_output_has_the_upper_paths_shape(dim, num_classes, options):
    junction = make_junction(dim, num_classes, **options)
    upper = torch.randn(2, num_classes, *[8] * dim)
    lower = torch.randn(2, num_classes, *[4] * dim)
    image = torch.randn(2, 2, *[16] * dim)  # the network input, twice the upper path's size
    assert junction(upper, lower, image).shape == upper.shape
    assert junction.align_lower(lower).shape == upper.shape


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
@pytest.mark.parametrize("dim", [2, 3])
def test_gradients_reach_every_parameter_and_every_input(dim, options):
    torch.manual_seed(0)
    junction = make_junction(dim, 3, **options)
    upper = torch.randn(2, 3, *[8] * dim, requires_grad=True)
    lower = torch.randn(2, 3, *[4] * dim, requires_grad=True)
    image = torch.randn(2, 2, *[8] * dim, requires_grad=True)
    junction(upper, lower, image).square().mean().backward()
    for name, parameter in junction.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    for tensor in (upper, lower, image):
        assert tensor.grad.abs().sum() > 0


def test_output_is_the_upper_prediction_refined_by_attention_weighted_image_features():
    """Eq. (5): the image enters as attn * F_i, so it changes the output, and the attention is the divergence map."""
    torch.manual_seed(0)
    junction = make_junction(3, 2).eval()
    upper, lower = torch.randn(1, 2, 8, 8, 8), torch.randn(1, 2, 4, 4, 4)
    image = torch.randn(1, 2, 8, 8, 8)
    reference = junction(upper, lower, image)
    assert not torch.allclose(reference, junction(upper, lower, image + torch.randn_like(image)))
    recorded = {}

    def record(name):
        def hook(module, args, output):
            recorded[name] = (args[0], output)
        return hook

    junction.input_features.register_forward_hook(record("side branch"))
    junction.fusion.register_forward_hook(record("fusion"))
    output = junction(upper, lower, image)
    aligned = junction.align_lower(lower)
    side_features = recorded["side branch"][1]
    expected_fusion_input = upper + aligned + junction.attention_map(upper, aligned) * side_features
    assert torch.allclose(recorded["fusion"][0], expected_fusion_input, atol=1e-6)
    # the fused map refines the upper path's own prediction (residual "adding")
    assert torch.allclose(output, upper + junction.prediction(recorded["fusion"][1]), atol=1e-6)


def test_softmax_attention_map_peaks_where_the_logits_of_the_two_paths_disagree_and_has_mean_1():
    junction = make_junction(2, 1, attention="softmax")
    upper = torch.full((1, 1, 8, 8), 4.0)
    aligned_lower = upper.clone()
    aligned_lower[..., 2:4, 5:7] = -4.0
    attention = junction.attention_map(upper, aligned_lower)
    assert attention[..., 2:4, 5:7].min() > attention.flatten()[0] * 2
    assert torch.isclose(attention.mean(), torch.tensor(1.0), atol=1e-5)


def test_anisotropic_stride_upsamples_each_axis_by_its_own_factor():
    conv_op, norm_op = OPS[3]
    junction = DivAttentionJunction(conv_op, 2, 1, upsample_stride=[1, 2, 2], kernel_size=[1, 3, 3],
                                    fusion_channels=8, norm_op=norm_op, nonlin=nn.LeakyReLU)
    out = junction(torch.randn(1, 2, 5, 8, 8), torch.randn(1, 2, 5, 4, 4), torch.randn(1, 1, 5, 8, 8))
    assert out.shape == (1, 2, 5, 8, 8)


@pytest.mark.parametrize("dim", [2, 3])
def test_divergence_attention_is_zero_where_the_paths_agree_and_largest_where_they_disagree(dim):
    junction = make_junction(dim, 2, attention="divergence")
    upper = torch.full((1, 2, *[8] * dim), 4.0)
    aligned_lower = upper.clone()
    region = (slice(None), slice(None), *[slice(2, 4)] * dim)
    aligned_lower[region] = -4.0
    attention = junction.attention_map(upper, aligned_lower)
    inside = torch.zeros_like(upper, dtype=torch.bool)
    inside[region] = True
    assert attention[~inside].abs().max() < 1e-6
    assert attention[inside].min() > 0.9 and attention.max() <= 1.0


def test_divergence_attention_is_float32_under_autocast():
    junction = make_junction(3, 2, attention="divergence")
    upper, aligned_lower = torch.randn(1, 2, 6, 6, 6), torch.randn(1, 2, 6, 6, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        attention = junction.attention_map(upper.bfloat16(), aligned_lower.bfloat16())
    assert attention.dtype == torch.float32


@pytest.mark.parametrize("masks, invariant", [("softmax", True), ("sigmoid", False)])
def test_softmax_masks_make_the_attention_ignore_a_constant_added_to_every_class(masks, invariant):
    """A label dataset's prediction does not change when a constant is added to every class of a voxel; with the
    softmax masks neither do the masks nor the junction's attention (in both readings of eq. 4), with sigmoid they do."""
    torch.manual_seed(0)
    upper, aligned_lower = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    for attention in ("softmax", "divergence"):
        junction = make_junction(2, 3, masks=masks, attention=attention)
        reference = junction.attention_map(upper, aligned_lower)
        shifted = junction.attention_map(upper + 4 * torch.randn(2, 1, 8, 8),
                                         aligned_lower + 4 * torch.randn(2, 1, 8, 8))
        assert torch.allclose(reference, shifted, atol=1e-5) == invariant, attention


def test_softmax_masks_reach_the_attention_inside_the_forward_pass():
    """The attention the forward pass multiplies the side branch with is the softmax-mask attention (eq. 5)."""
    torch.manual_seed(0)
    junction = make_junction(2, 3, masks="softmax").eval()
    upper, lower, image = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 4, 4), torch.randn(1, 2, 8, 8)
    recorded = {}
    junction.input_features.register_forward_hook(lambda m, a, o: recorded.__setitem__("side", o))
    junction.fusion.register_forward_hook(lambda m, a, o: recorded.__setitem__("fusion_input", a[0]))
    junction(upper, lower, image)
    aligned = junction.align_lower(lower)
    attention = junction.attention_map(upper, aligned)
    sigmoid_attention = make_junction(2, 3).attention_map(upper, aligned)
    assert not torch.allclose(attention, sigmoid_attention, atol=1e-3)
    assert torch.allclose(recorded["fusion_input"], upper + aligned + attention * recorded["side"], atol=1e-6)


@pytest.mark.parametrize("residual", [True, False])
def test_the_residual_flag_adds_the_upper_prediction_or_not(residual):
    torch.manual_seed(0)
    junction = make_junction(3, 2, residual=residual).eval()
    upper, lower, image = torch.randn(1, 2, 8, 8, 8), torch.randn(1, 2, 4, 4, 4), torch.randn(1, 2, 8, 8, 8)
    recorded = {}
    junction.fusion.register_forward_hook(lambda m, a, o: recorded.__setitem__("fused", o))
    output = junction(upper, lower, image)
    prediction = junction.prediction(recorded["fused"])
    assert torch.allclose(output, upper + prediction if residual else prediction, atol=1e-6)
    assert not torch.allclose(output, upper + prediction if not residual else prediction, atol=1e-3)


def test_the_options_are_shown_and_unknown_ones_refused():
    assert "attention='divergence', masks='sigmoid', residual=True" in repr(make_junction(2, 2))
    assert "attention='softmax'" in repr(make_junction(2, 2, attention="softmax"))
    with pytest.raises(ValueError, match="attention must be one of"):
        make_junction(2, 2, attention="sqrt")
    with pytest.raises(ValueError, match="masks must be one of"):
        make_junction(2, 2, masks="tanh")
