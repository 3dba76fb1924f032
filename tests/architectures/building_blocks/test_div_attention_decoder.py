"""The feature-level Div-attention junction (building_blocks/div_attention_decoder.py): shapes in 2D and 3D,
gradients, the two readings of the masks (the stage's head's predictions vs the features), the attention forms and
the residual."""

import pytest
import torch
from torch import nn

from nnunet_ext.architectures.building_blocks.div_attention_decoder import FeatureDivAttentionJunction

OPS = {2: (nn.Conv2d, nn.InstanceNorm2d), 3: (nn.Conv3d, nn.InstanceNorm3d)}
CHANNELS, CLASSES = 6, 3


def make_junction(dim, channels=CHANNELS, num_input_channels=2, **options):
    conv_op, norm_op = OPS[dim]
    return FeatureDivAttentionJunction(conv_op, channels, num_input_channels, [3] * dim, conv_bias=True,
                                       norm_op=norm_op, norm_op_kwargs={"eps": 1e-5, "affine": True},
                                       nonlin=nn.LeakyReLU, nonlin_kwargs={"inplace": True}, **options)


def make_head(dim, channels=CHANNELS, classes=CLASSES):
    return OPS[dim][0](channels, classes, 1)


OPTIONS = {"heads": {}, "features": {"feature_masks": "features"}, "heads_softmax_map": {"attention": "softmax"},
           "features_softmax_map": {"feature_masks": "features", "attention": "softmax"},
           "heads_softmax_masks": {"masks": "softmax"}, "no_residual": {"residual": False}}


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
@pytest.mark.parametrize("dim", [2, 3])
def test_enhanced_features_have_the_stages_shape_and_every_parameter_gets_a_gradient(dim, options):
    torch.manual_seed(0)
    junction, head = make_junction(dim, **options), make_head(dim)
    upper = torch.randn(2, CHANNELS, *[8] * dim, requires_grad=True)
    upsampled = torch.randn(2, CHANNELS, *[8] * dim, requires_grad=True)
    image = torch.randn(2, 2, *[16] * dim, requires_grad=True)
    enhanced = junction(upper, upsampled, image, head)
    assert enhanced.shape == upper.shape
    (head(enhanced).square().mean() + enhanced.square().mean()).backward()
    for name, parameter in [*junction.named_parameters(), *(("head." + n, p) for n, p in head.named_parameters())]:
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    for tensor in (upper, upsampled, image):
        assert tensor.grad.abs().sum() > 0


def head_reading_channel_one_only(dim):
    """A head that looks at feature channel 0 only: features that differ in the other channels predict the same."""
    head = make_head(dim, classes=2)
    with torch.no_grad():
        head.weight.zero_()
        head.weight[:, 0] = torch.tensor([1.0, -1.0]).view(2, *[1] * dim)
        head.bias.zero_()
    return head


@pytest.mark.parametrize("dim", [2, 3])
def test_heads_masks_see_disagreeing_predictions_and_feature_masks_see_disagreeing_features(dim):
    """The two readings differ exactly here: features that disagree only where the head does not look."""
    torch.manual_seed(0)
    head = head_reading_channel_one_only(dim)
    upper = torch.randn(1, CHANNELS, *[8] * dim)
    aligned = upper.clone()
    aligned[:, 1:] += 3.0  # disagree in channels the head ignores
    heads = make_junction(dim, attention="divergence").attention_map(upper, aligned, head)
    features = make_junction(dim, feature_masks="features", attention="divergence").attention_map(upper, aligned,
                                                                                                   head)
    assert heads.shape == (1, 1, *[8] * dim) and features.shape == upper.shape
    assert heads.abs().max() < 1e-6  # same predictions: no divergence
    assert features[:, 1:].min() > 0 and features[:, 0].abs().max() < 1e-6
    assert torch.allclose(features, (torch.sigmoid(upper) - torch.sigmoid(aligned)).abs())
    aligned[:, 0] -= 6.0  # now the predictions disagree too
    heads = make_junction(dim, attention="divergence").attention_map(upper, aligned, head)
    assert heads.min() > 0 and heads.max() <= 1


@pytest.mark.parametrize("dim", [2, 3])
def test_divergence_attention_is_near_zero_where_the_stages_agree_and_largest_where_they_disagree(dim):
    head = head_reading_channel_one_only(dim)
    upper = torch.full((1, CHANNELS, *[8] * dim), 2.0)
    aligned = upper.clone()
    region = (slice(None), slice(None), *[slice(2, 5)] * dim)
    aligned[region] = -2.0
    inside = torch.zeros(1, 1, *[8] * dim, dtype=torch.bool)
    inside[region] = True
    for feature_masks in ("heads", "features"):
        attention = make_junction(dim, feature_masks=feature_masks, attention="divergence").attention_map(
            upper, aligned, head)
        inside_c = inside.expand_as(attention)
        assert attention[~inside_c].abs().max() < 1e-6, feature_masks
        assert attention[inside_c].min() > 0.5 and attention.max() <= 1.0, feature_masks
        softmax_form = make_junction(dim, feature_masks=feature_masks, attention="softmax").attention_map(
            upper, aligned, head)
        assert softmax_form[inside_c].min() > softmax_form[~inside_c].max() >= 1 / torch.e - 1e-6, feature_masks


def test_attention_is_float32_under_autocast():
    head = make_head(3)
    upper, aligned = torch.randn(1, CHANNELS, 6, 6, 6), torch.randn(1, CHANNELS, 6, 6, 6)
    for feature_masks in ("heads", "features"):
        for attention in ("softmax", "divergence"):
            junction = make_junction(3, feature_masks=feature_masks, attention=attention)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                assert junction.attention_map(upper, aligned, head).dtype == torch.float32


def test_softmax_masks_of_the_heads_ignore_a_constant_added_to_every_class():
    torch.manual_seed(0)
    upper, aligned = torch.randn(2, CHANNELS, 8, 8), torch.randn(2, CHANNELS, 8, 8)
    head, shifted_head = make_head(2), make_head(2)
    shifted_head.load_state_dict(head.state_dict())
    with torch.no_grad():  # the same head plus a constant for every class: the same label prediction
        shifted_head.weight += torch.randn(1, CHANNELS, 1, 1)
        shifted_head.bias += 3.0
    for masks, invariant in (("softmax", True), ("sigmoid", False)):
        junction = make_junction(2, masks=masks)
        same = torch.allclose(junction.attention_map(upper, aligned, head),
                              junction.attention_map(upper, aligned, shifted_head), atol=1e-5)
        assert same == invariant, masks


@pytest.mark.parametrize("residual", [True, False])
def test_the_residual_flag_adds_the_stages_features_or_not(residual):
    torch.manual_seed(0)
    junction, head = make_junction(3, residual=residual).eval(), make_head(3)
    upper, upsampled, image = torch.randn(1, CHANNELS, 8, 8, 8), torch.randn(1, CHANNELS, 8, 8, 8), \
        torch.randn(1, 2, 8, 8, 8)
    recorded = {}
    junction.fusion.register_forward_hook(lambda m, a, o: recorded.update(fused=o.clone(), fusion_input=a[0]))
    junction.input_features.register_forward_hook(lambda m, a, o: recorded.update(side=o.clone()))
    enhanced = junction(upper, upsampled, image, head)
    aligned = junction.align(upsampled)
    attention = junction.attention_map(upper, aligned, head)
    assert torch.allclose(recorded["fusion_input"], upper + aligned + attention * recorded["side"], atol=1e-5)
    assert torch.allclose(enhanced, upper + recorded["fused"] if residual else recorded["fused"], atol=1e-6)


def test_softmax_masks_of_features_and_unknown_readings_are_refused():
    with pytest.raises(ValueError, match="softmax masks are masks of class predictions"):
        make_junction(2, feature_masks="features", masks="softmax")
    with pytest.raises(ValueError, match="feature_masks must be one of"):
        make_junction(2, feature_masks="logits")
    assert "feature_masks='heads', attention='divergence', masks='sigmoid', residual=True" in repr(make_junction(2))
