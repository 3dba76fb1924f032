"""UNETR (Hatamizadeh et al. 2022, Fig. 2) built from small hand-written nnU-Net plans, in 2D and 3D: logits at full
resolution, a skip from every block of a 3-block transformer, gradients to the ViT, the plans' layers, and a clear
error for a patch the 16-voxel tokens do not divide."""

import pytest
import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd

from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_ext.architectures.building_blocks.token_transformer import tokens_to_grid
from nnunet_ext.architectures.unetr import unetr_skip_blocks
from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.trainers.network_builders.transformer_size import TransformerSize
from nnunet_ext.trainers.network_builders.unetr import build_unetr

from .planned_networks import small_unet_plans

SMALL = TransformerSize(width=32, depth=3, heads=2, mlp_ratio=2.0)
CLASSES = 3


def small_plans(patch_size, network="PlainConvUNet") -> PlansManager:
    """:func:`planned_networks.small_unet_plans` of a 5-stage U-Net (stride 2 after the first stage) on ``patch_size``."""
    ndim = len(patch_size)
    return small_unet_plans(patch_size, [[1] * ndim] + [[2] * ndim] * 4, network)


def build(patch_size, size=SMALL, deep_supervision=False, network="PlainConvUNet", feature_size=4):
    plans_manager = small_plans(patch_size, network)
    torch.manual_seed(0)
    return build_unetr(plans_manager, plans_manager.get_configuration("c"), 1, CLASSES, deep_supervision, size,
                       feature_size=feature_size)


PATCHES = [(32, 32), (32, 32, 32)]


@pytest.mark.parametrize("patch_size", PATCHES, ids=["2d", "3d"])
@pytest.mark.parametrize("deep_supervision", [True, False])
def test_logits_at_full_resolution_without_deep_supervision(patch_size, deep_supervision):
    network = build(patch_size, deep_supervision=deep_supervision)
    output = network(torch.randn(2, 1, *patch_size))
    assert isinstance(output, torch.Tensor)  # no deep-supervision list, whatever the flag
    assert output.shape == (2, CLASSES, *patch_size)


@pytest.mark.parametrize("patch_size", PATCHES, ids=["2d", "3d"])
def test_layers_come_from_the_plans_conv_op_and_encoder_settings(patch_size):
    network = build(patch_size, network="ResidualEncoderUNet")
    ndim = len(patch_size)
    convs = [m for m in network.modules() if isinstance(m, _ConvNd) and not isinstance(m, _ConvTransposeNd)]
    transposed = [m for m in network.modules() if isinstance(m, _ConvTransposeNd)]
    norms = [m for m in network.modules() if isinstance(m, nn.modules.instancenorm._InstanceNorm)]
    assert convs and all(type(m) is getattr(nn, f"Conv{ndim}d") for m in convs)
    # 3 + 2 + 1 steps of the skip chains and 4 decoder stages, each a x2 transposed convolution
    assert len(transposed) == 10 and all(type(m) is getattr(nn, f"ConvTranspose{ndim}d") for m in transposed)
    assert all(tuple(m.stride) == (2,) * ndim for m in transposed)
    assert norms and all(type(m) is getattr(nn, f"InstanceNorm{ndim}d") and m.affine for m in norms)
    assert any(isinstance(m, nn.LeakyReLU) for m in network.modules())
    assert network.segmentation_head.kernel_size == (1,) * ndim and network.segmentation_head.out_channels == CLASSES


def test_skip_blocks_are_unetrs_and_every_block_of_three():
    assert unetr_skip_blocks(12) == (3, 6, 9)
    assert unetr_skip_blocks(3) == (1, 2, 3)
    assert unetr_skip_blocks(0) == (0, 0, 0)


@pytest.mark.parametrize("patch_size", PATCHES, ids=["2d", "3d"])
def test_with_three_blocks_each_block_feeds_a_skip_and_the_final_output_the_bottleneck(patch_size):
    network = build(patch_size).eval()
    block_outputs, upsampler_inputs, bottleneck = [], [], []
    for block in network.transformer.blocks:
        block.register_forward_hook(lambda module, args, output: block_outputs.append(output))
    for upsampler in network.skip_upsamplers:
        upsampler.register_forward_pre_hook(lambda module, args: upsampler_inputs.append(args[0]))
    network.transformer.norm.register_forward_hook(lambda module, args, output: bottleneck.append(output))
    network.decoder_stages[0].register_forward_pre_hook(lambda module, args: bottleneck.append(args[0]))
    network(torch.randn(1, 1, *patch_size))
    grid = network.token_grid
    assert len(block_outputs) == 3 and len(upsampler_inputs) == 3
    for block_output, upsampler_input in zip(block_outputs, upsampler_inputs):  # block i -> skip i (1/2, 1/4, 1/8)
        assert torch.equal(tokens_to_grid(block_output, grid), upsampler_input)
    assert torch.equal(tokens_to_grid(bottleneck[0], grid), bottleneck[1])  # after the LayerNorm, at 1/16
    resolutions = [tuple(u(i).shape[2:]) for u, i in zip(network.skip_upsamplers, upsampler_inputs)]
    assert resolutions == [tuple(p // s for p in patch_size) for s in (2, 4, 8)]


@pytest.mark.parametrize("patch_size", PATCHES, ids=["2d", "3d"])
def test_gradients_reach_every_block_and_the_embedding(patch_size):
    network = build(patch_size)
    network(torch.randn(2, 1, *patch_size)).square().mean().backward()
    for name, parameter in [*network.transformer.blocks.named_parameters(),
                            *network.embedding.named_parameters(), ("position", network.transformer.position)]:
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_the_skip_of_block_one_reaches_the_output():
    """Changing the first block's state only where the 1/2 skip reads it changes the logits."""
    network = build((32, 32)).eval()
    x = torch.randn(1, 1, 32, 32)
    reference = network(x)
    handle = network.skip_upsamplers[0].register_forward_pre_hook(lambda module, args: (args[0] + 1.0,))
    changed = network(x)
    handle.remove()
    assert not torch.allclose(reference, changed)
    assert torch.equal(network(x), reference)


def test_without_blocks_the_skips_come_from_the_embedding():
    network = build((32, 32), size=TransformerSize(width=32, depth=0, heads=2))
    assert len(network.transformer.blocks) == 0
    output = network(torch.randn(2, 1, 32, 32))
    assert output.shape == (2, CLASSES, 32, 32)
    output.mean().backward()
    assert network.embedding.projection.weight.grad.abs().sum() > 0


def test_twelve_blocks_take_skips_from_blocks_3_6_9():
    network = build((32, 32), size=TransformerSize(width=32, depth=12, heads=2, mlp_ratio=1.0))
    assert network.skip_blocks == (3, 6, 9)
    assert network(torch.randn(1, 1, 32, 32)).shape == (1, CLASSES, 32, 32)


@pytest.mark.parametrize("patch_size, working", [((40, 32), "48x32"), ((32, 32, 24), "32x32x32")])
def test_a_patch_the_tokens_do_not_divide_is_refused_naming_one_that_works(patch_size, working):
    with pytest.raises(UnsupportedConfigurationError, match=f"UNETR.*token size 16.*use a patch size of {working}"):
        build(patch_size)


def test_too_many_tokens_are_refused():
    with pytest.raises(UnsupportedConfigurationError, match="more than the 3 allowed"):
        build((32, 32), size=TransformerSize(width=32, depth=1, heads=2, max_tokens=3))


@pytest.mark.parametrize("patch_size", PATCHES, ids=["2d", "3d"])
def test_state_dict_is_the_same_with_deep_supervision_on_and_off(patch_size):
    """nnU-Net's predictor builds the network with deep supervision off and loads the trained weights."""
    on, off = build(patch_size, deep_supervision=True), build(patch_size, deep_supervision=False)
    on_state, off_state = on.state_dict(), off.state_dict()
    assert list(on_state) == list(off_state)
    assert all(on_state[k].shape == off_state[k].shape for k in on_state)
    off.load_state_dict(on_state)


def test_initialisation_is_vit_for_the_transformer_and_he_for_convolutions():
    network = build((32, 32), size=TransformerSize(width=64, depth=1, heads=2), feature_size=16)
    qkv = network.transformer.blocks[0].attn.qkv
    assert abs(qkv.weight.std().item() - 0.02) < 0.004 and torch.count_nonzero(qkv.bias) == 0
    head_conv = network.decoder_stages[-1].conv_blocks.convs[0].conv  # 32 -> 16 channels, 3x3: He std ~ 0.083
    assert head_conv.weight.std().item() == pytest.approx((2 / (32 * 9)) ** 0.5, rel=0.15)


@pytest.mark.parametrize("configuration", ["2d", "3d_fullres"])
def test_div_attention_unetr_refines_every_path_and_supervises_them(planned_synthetic, configuration):
    """DivAttentionUNETRTrainer: four refined paths at 1, 1/2, 1/4, 1/8 with deep supervision (nnU-Net's targets
    from the trainer's scales), the full-resolution one alone for prediction, the same state dict either way; the
    junctions change the output."""
    import json

    from nnunet_ext.reliability.tiny_plans import tiny_plans
    from nnunet_ext.trainers import DivAttentionUNETRTrainer_Tiny

    from .planned_networks import build

    plans_file, dataset_json = planned_synthetic["nnUNetPlans"]
    plans = DivAttentionUNETRTrainer_Tiny.plans_for_training(tiny_plans(json.loads(plans_file.read_text())),
                                                             configuration)
    training, configuration_manager, _ = build(plans, dataset_json, configuration,
                                               trainer=DivAttentionUNETRTrainer_Tiny)
    predicting, _, _ = build(plans, dataset_json, configuration, deep_supervision=False,
                             trainer=DivAttentionUNETRTrainer_Tiny)
    predicting.load_state_dict(training.state_dict(), strict=True)
    patch = list(configuration_manager.patch_size)
    x = torch.randn(1, 1, *patch)
    training.eval(), predicting.eval()
    with torch.no_grad():
        paths = training(x)
        assert [list(p.shape[2:]) for p in paths] == [[s // f for s in patch] for f in (1, 2, 4, 8)]
        state = type("State", (), {"enable_deep_supervision": True, "configuration_manager": configuration_manager})()
        scales = DivAttentionUNETRTrainer_Tiny._get_deep_supervision_scales(state)
        assert [[round(p * s) for p, s in zip(patch, scale)] for scale in scales] == \
            [list(p.shape[2:]) for p in paths]
        final = predicting(x)
        assert torch.allclose(final, paths[0], atol=1e-5)
        unrefined = predicting.segmentation_head(predicting.decoder_features(x)[-1])
        assert not torch.allclose(final, unrefined)
