"""One Div-attention junction (eq. 1-5): shapes in 2D and 3D, gradients, and that it uses what the paper says."""

import pytest
import torch
from torch import nn

from nnunet_ext.architectures.building_blocks.div_attention_junction import DivAttentionJunction

OPS = {2: (nn.Conv2d, nn.InstanceNorm2d), 3: (nn.Conv3d, nn.InstanceNorm3d)}


def make_junction(dim, num_classes, num_input_channels=2, stride=2):
    conv_op, norm_op = OPS[dim]
    return DivAttentionJunction(conv_op, num_classes, num_input_channels, upsample_stride=[stride] * dim,
                                kernel_size=[3] * dim, fusion_channels=8, conv_bias=True, norm_op=norm_op,
                                norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=nn.LeakyReLU,
                                nonlin_kwargs={"inplace": True})


# 1 output (binary sigmoid-style), 3 classes with background (softmax datasets), 3 overlapping regions (BraTS-style)
CLASS_COUNTS = {"one_output": 1, "three_classes": 3, "three_regions": 3}


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("num_classes", CLASS_COUNTS.values(), ids=CLASS_COUNTS.keys())
def test_output_has_the_upper_paths_shape(dim, num_classes):
    junction = make_junction(dim, num_classes)
    upper = torch.randn(2, num_classes, *[8] * dim)
    lower = torch.randn(2, num_classes, *[4] * dim)
    image = torch.randn(2, 2, *[16] * dim)  # the network input, twice the upper path's size
    assert junction(upper, lower, image).shape == upper.shape
    assert junction.align_lower(lower).shape == upper.shape


@pytest.mark.parametrize("dim", [2, 3])
def test_gradients_reach_every_parameter_and_every_input(dim):
    junction = make_junction(dim, 3)
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


def test_attention_map_peaks_where_the_logits_of_the_two_paths_disagree():
    junction = make_junction(2, 1)
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
