"""SiAN's diagnosis branch (eq. 5-7): shapes in 2D and 3D, the probabilities steer the logits (lesion channels only),
gradients reach the side-attention, and a lesion-free map erases (CW-MaxPool) or rescales (learned) the features."""

import pytest
import torch
from torch import nn

from dynamic_network_architectures.architectures.unet import PlainConvUNet
from dynamic_network_architectures.building_blocks.helper import get_matching_instancenorm

from nnunet_ext.architectures.diagnosis.diagnosis_branch import global_average_pool
from nnunet_ext.architectures.diagnosis.sian_branch import SiANDiagnosisBranch

PATCHES = {nn.Conv2d: (32, 32), nn.Conv3d: (16, 32, 32)}
STAGES = {nn.Conv2d: ([8, 16, 32, 32], [1, 2, 2, 2]), nn.Conv3d: ([8, 16, 32], [1, 2, 2])}
NUM_CLASSES = 3  # background + 2 lesions


def segmentation_encoder(conv_op):
    features, strides = STAGES[conv_op]
    unet = PlainConvUNet(1, len(features), features, conv_op, 3, strides, 2, NUM_CLASSES, 2, conv_bias=True,
                         norm_op=get_matching_instancenorm(conv_op), norm_op_kwargs={"eps": 1e-5, "affine": True},
                         nonlin=nn.LeakyReLU, nonlin_kwargs={"inplace": True})
    return unet.encoder


def feature_size(conv_op):
    total_stride = 1
    for stride in STAGES[conv_op][1]:
        total_stride *= stride
    return tuple(size // total_stride for size in PATCHES[conv_op])


def branch(conv_op, weight_map="learned", num_outputs=1, **kwargs):
    return SiANDiagnosisBranch(segmentation_encoder(conv_op), 1, NUM_CLASSES, num_outputs, weight_map=weight_map,
                               **kwargs)


def inputs(conv_op, batch=2):
    image = torch.randn(batch, 1, *PATCHES[conv_op])
    probabilities = torch.softmax(3 * torch.randn(batch, NUM_CLASSES, *PATCHES[conv_op]), dim=1)
    return image, probabilities


@pytest.mark.parametrize("conv_op", [nn.Conv2d, nn.Conv3d])
@pytest.mark.parametrize("weight_map", ["learned", "cw_maxpool"])
@pytest.mark.parametrize("num_outputs", [1, 5])
def test_logits_and_weight_map_shapes(conv_op, weight_map, num_outputs):
    torch.manual_seed(0)
    network = branch(conv_op, weight_map, num_outputs)
    image, probabilities = inputs(conv_op)
    logits = network(image, [], probabilities)
    assert logits.shape == (2, num_outputs) and torch.all(torch.isfinite(logits))
    last_features = network.encoder(image)[-1]
    assert tuple(last_features.shape[2:]) == feature_size(conv_op)
    weights = network.weight_maps(probabilities, feature_size(conv_op))
    assert weights.shape == last_features.shape


@pytest.mark.parametrize("conv_op", [nn.Conv2d, nn.Conv3d])
@pytest.mark.parametrize("weight_map", ["learned", "cw_maxpool"])
def test_lesion_probabilities_change_the_logits_and_background_does_not(conv_op, weight_map):
    torch.manual_seed(0)
    network = branch(conv_op, weight_map).eval()
    image, probabilities = inputs(conv_op)
    with torch.no_grad():
        logits = network(image, [], probabilities)
        other_lesions = probabilities.clone()
        other_lesions[:, 1:] = torch.rand_like(other_lesions[:, 1:])
        assert not torch.allclose(network(image, [], other_lesions), logits)
        other_background = probabilities.clone()
        other_background[:, 0] = torch.rand_like(other_background[:, 0])
        assert torch.equal(network(image, [], other_background), logits)


def test_background_is_read_when_not_excluded():
    torch.manual_seed(0)
    network = branch(nn.Conv2d, "cw_maxpool", exclude_background=False).eval()
    image, probabilities = inputs(nn.Conv2d)
    other_background = probabilities.clone()
    other_background[:, 0] = 1.0  # the max over all channels becomes 1 everywhere
    with torch.no_grad():
        assert not torch.allclose(network(image, [], other_background), network(image, [], probabilities))


@pytest.mark.parametrize("conv_op", [nn.Conv2d, nn.Conv3d])
def test_gradient_reaches_side_attention_probabilities_and_encoder(conv_op):
    torch.manual_seed(0)
    network = branch(conv_op, "learned", num_outputs=5)
    image, probabilities = inputs(conv_op)
    probabilities.requires_grad_()
    logits = network(image, [], probabilities)
    nn.functional.cross_entropy(logits, torch.tensor([0, 3])).backward()
    for conv in (network.weight_map.first_conv, network.weight_map.second_conv):
        assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    assert probabilities.grad[:, 1:].abs().sum() > 0
    assert torch.count_nonzero(probabilities.grad[:, 0]) == 0  # background excluded
    assert all(p.grad is not None for p in network.encoder.parameters())


@pytest.mark.parametrize("conv_op", [nn.Conv2d, nn.Conv3d])
def test_no_lesion_with_cw_maxpool_erases_the_image(conv_op):
    torch.manual_seed(0)
    network = branch(conv_op, "cw_maxpool", num_outputs=3).eval()
    no_lesion = torch.zeros(2, NUM_CLASSES, *PATCHES[conv_op])
    no_lesion[:, 0] = 1.0
    with torch.no_grad():
        logits = network(torch.randn(2, 1, *PATCHES[conv_op]), [], no_lesion)
    assert torch.allclose(logits, network.classifier.linear.bias.expand_as(logits))


@pytest.mark.parametrize("conv_op", [nn.Conv2d, nn.Conv3d])
def test_no_lesion_with_learned_weights_rescales_each_feature_channel(conv_op):
    torch.manual_seed(0)
    network = branch(conv_op, "learned", num_outputs=3).eval()
    image = torch.randn(2, 1, *PATCHES[conv_op])
    no_lesion = torch.zeros(2, NUM_CLASSES, *PATCHES[conv_op])
    no_lesion[:, 0] = 1.0
    with torch.no_grad():
        weights = network.weight_maps(no_lesion, feature_size(conv_op))
        per_channel = weights.flatten(2)[..., 0]  # [B, F], constant over space
        pooled = global_average_pool(network.encoder(image)[-1])
        expected = network.classifier.linear(pooled * per_channel)
        logits = network(image, [], no_lesion)
    assert torch.all(per_channel > 0)
    assert torch.allclose(logits, expected, atol=1e-5)
    assert not torch.allclose(logits[0], logits[1])  # the image still decides


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="weight_map"):
        branch(nn.Conv2d, "attention")
    network = branch(nn.Conv2d)
    image, probabilities = inputs(nn.Conv2d)
    with pytest.raises(ValueError, match="probability channels"):
        network(image, [], probabilities[:, 1:])
