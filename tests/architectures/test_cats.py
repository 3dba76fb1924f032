"""CATS (Li et al. 2022) on nnU-Net's planned U-Net, built from small hand-written plans in 2D and 3D (anisotropic
strides, a stage deeper than the tokens' stride 16, PlainConv and ResEnc): the planned decoder's outputs with and
without deep supervision, fusion by addition, the hidden state each skip takes, and the shared upsampler."""

import pytest
import torch
from torch import nn


from nnunet_ext.architectures.building_blocks.hidden_state_upsampler import HiddenStateUpsampler, resampling_steps
from nnunet_ext.architectures.building_blocks.token_transformer import tokens_to_grid
from nnunet_ext.architectures.cats import cats_skip_blocks
from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.trainers.network_builders.cats import build_cats
from nnunet_ext.trainers.network_builders.planned_unet import build_planned_unet
from nnunet_ext.trainers.network_builders.transformer_size import TransformerSize

from .planned_networks import small_unet_plans

SMALL = TransformerSize(width=32, depth=3, heads=2, mlp_ratio=2.0)
CLASSES = 3
# name: (patch size, per-stage strides)
CASES = {
    "2d": ((32, 32), [[1, 1], [2, 2], [2, 2], [2, 2], [2, 2]]),
    "2d_stride32": ((64, 64), [[1, 1], [2, 2], [2, 2], [2, 2], [2, 2], [2, 2]]),
    "3d": ((32, 32, 32), [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2]]),
    "3d_anisotropic": ((16, 32, 32), [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]]),
}


def build(case, size=SMALL, deep_supervision=True, network="PlainConvUNet", patch_size=None):
    patch, strides = CASES[case]
    plans_manager = small_unet_plans(patch_size or patch, strides, network)
    configuration_manager = plans_manager.get_configuration("c")
    torch.manual_seed(0)
    cats = build_cats(plans_manager, configuration_manager, 1, CLASSES, deep_supervision, size)
    planned = build_planned_unet(configuration_manager, 1, CLASSES, deep_supervision)
    return cats, planned, patch_size or patch


def as_list(output):
    return list(output) if isinstance(output, (list, tuple)) else [output]


def zero_transformer_skips(cats):
    """Forward hooks that replace every upsampler's output by zeros (handles, to remove)."""
    return [u.register_forward_hook(lambda module, args, output: torch.zeros_like(output))
            for u in cats.skip_upsamplers]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("network", ["PlainConvUNet", "ResidualEncoderUNet"])
def test_outputs_are_the_planned_unets_with_and_without_deep_supervision(case, network):
    for deep_supervision in (True, False):
        cats, planned, patch = build(case, deep_supervision=deep_supervision, network=network)
        x = torch.randn(2, 1, *patch)
        ours, theirs = cats(x), planned(x)
        assert type(ours) is type(theirs), deep_supervision
        assert [o.shape for o in as_list(ours)] == [t.shape for t in as_list(theirs)], deep_supervision
        assert as_list(ours)[0].shape == (2, CLASSES, *patch)
        if deep_supervision:
            assert len(ours) == len(CASES[case][1]) - 1  # one per decoder stage, as nnU-Net's loss expects
        else:
            assert isinstance(ours, torch.Tensor)


def test_nnunets_toggle_switches_deep_supervision():
    """nnU-Net's trainer sets ``network.decoder.deep_supervision`` (off for its final validation)."""
    cats, _, patch = build("2d", deep_supervision=True)
    cats.decoder.deep_supervision = False
    assert isinstance(cats(torch.randn(1, 1, *patch)), torch.Tensor)


@pytest.mark.parametrize("case", list(CASES))
def test_fusion_adds_the_transformer_path_to_each_cnn_skip(case):
    cats, planned, patch = build(case, deep_supervision=False)
    cats.eval(), planned.eval()
    x = torch.randn(1, 1, *patch)
    planned.load_state_dict({k: v for k, v in cats.state_dict().items() if k.split(".")[0] in ("encoder", "decoder")})
    # with the ViT path's contribution zeroed, CATS is the planned U-Net
    handles = zero_transformer_skips(cats)
    assert torch.allclose(cats(x), planned(x), atol=1e-6)
    for handle in handles:
        handle.remove()
    assert not torch.allclose(cats(x), planned(x), atol=1e-3)  # ... and the ViT path does change it
    # the decoder receives exactly CNN skip + upsampled hidden state
    decoder_inputs = []
    cats.decoder.register_forward_pre_hook(lambda module, args: decoder_inputs.append(args[0]))
    cats(x)
    expected = [cnn + vit for cnn, vit in zip(cats.encoder(x), cats.transformer_skips(x))]
    assert len(decoder_inputs[0]) == len(expected)
    assert all(torch.allclose(got, want, atol=1e-6) for got, want in zip(decoder_inputs[0], expected))


@pytest.mark.parametrize("case", ["2d", "3d_anisotropic"])
def test_each_skip_takes_its_block_and_the_deepest_the_final_output(case):
    cats, _, patch = build(case, deep_supervision=False)
    n_skips = len(CASES[case][1])
    assert cats.skip_blocks == cats_skip_blocks(3, n_skips) == (1, 1, 2, 2)
    block_outputs, upsampler_inputs, final = [], [], []
    for block in cats.transformer.blocks:
        block.register_forward_hook(lambda module, args, output: block_outputs.append(output))
    for upsampler in cats.skip_upsamplers:
        upsampler.register_forward_pre_hook(lambda module, args: upsampler_inputs.append(args[0]))
    cats.transformer.norm.register_forward_hook(lambda module, args, output: final.append(output))
    cats.eval()(torch.randn(1, 1, *patch))
    grid = cats.token_grid
    expected = [block_outputs[b - 1] for b in cats.skip_blocks] + final
    assert len(upsampler_inputs) == n_skips
    assert all(torch.equal(tokens_to_grid(e, grid), i) for e, i in zip(expected, upsampler_inputs))


def test_skip_blocks_follow_unetr_for_twelve_blocks_and_the_embedding_without_blocks():
    assert cats_skip_blocks(12, 4) == (3, 6, 9)
    assert cats_skip_blocks(0, 5) == (0, 0, 0, 0)
    cats, _, patch = build("2d", size=TransformerSize(width=32, depth=0, heads=2), deep_supervision=False)
    assert cats(torch.randn(1, 1, *patch)).shape == (1, CLASSES, *patch)


@pytest.mark.parametrize("case", ["2d", "3d"])
def test_gradients_reach_every_block_and_the_embedding(case):
    cats, _, patch = build(case, deep_supervision=True)
    outputs = cats(torch.randn(2, 1, *patch))
    sum(o.square().mean() for o in outputs).backward()
    for name, parameter in [*cats.transformer.blocks.named_parameters(), *cats.embedding.named_parameters(),
                            *cats.skip_upsamplers.named_parameters()]:
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_resampling_steps_per_axis():
    assert resampling_steps((16, 16), (2, 2)) == ([(2, 2)] * 3, [])
    assert resampling_steps((16, 16, 16), (4, 16, 16)) == ([(2, 1, 1)] * 2, [])
    assert resampling_steps((16, 16, 16), (1, 2, 2)) == ([(2, 2, 2)] * 3 + [(2, 1, 1)], [])
    assert resampling_steps((16, 16), (64, 32)) == ([], [(2, 2), (2, 1)])
    assert resampling_steps((16, 16), (16, 16)) == ([], [])
    with pytest.raises(ValueError, match="multiple"):
        resampling_steps((16,), (24,))


@pytest.mark.parametrize("target_stride, steps", [((4, 16, 16), 2), ((16, 16, 16), 1), ((8, 32, 32), 2)])
def test_upsampler_reaches_the_skips_resolution_and_width(target_stride, steps):
    kwargs = {"conv_bias": True, "norm_op": nn.InstanceNorm3d, "norm_op_kwargs": {"affine": True},
              "dropout_op": None, "dropout_op_kwargs": None, "nonlin": nn.LeakyReLU, "nonlin_kwargs": None}
    upsampler = HiddenStateUpsampler(nn.Conv3d, 32, 8, (16, 16, 16), target_stride, kwargs)
    assert len(upsampler.steps) == steps
    if target_stride == (16, 16, 16):
        assert isinstance(upsampler.steps[0], nn.Conv3d) and upsampler.steps[0].kernel_size == (1, 1, 1)
    grid = (2, 4, 4)
    output = upsampler(torch.randn(1, 32, *grid))
    assert output.shape == (1, 8, *(g * 16 // s for g, s in zip(grid, target_stride)))


@pytest.mark.parametrize("patch_size, working", [((40, 32), "48x32"), ((32, 56), "32x64")])
def test_a_patch_the_tokens_do_not_divide_is_refused_naming_one_that_works(patch_size, working):
    with pytest.raises(UnsupportedConfigurationError, match=f"CATS.*token size 16.*use a patch size of {working}"):
        build("2d", patch_size=patch_size)


@pytest.mark.parametrize("case", ["2d", "3d_anisotropic"])
def test_state_dict_is_the_same_with_deep_supervision_on_and_off_and_holds_the_planned_unet(case):
    """nnU-Net's predictor builds the network with deep supervision off and loads the trained weights; the planned
    part keeps nnU-Net's names."""
    (on, planned, _), (off, _, _) = build(case, deep_supervision=True), build(case, deep_supervision=False)
    on_state, off_state = on.state_dict(), off.state_dict()
    assert list(on_state) == list(off_state)
    assert all(on_state[k].shape == off_state[k].shape for k in on_state)
    off.load_state_dict(on_state)
    planned_state = planned.state_dict()
    assert all(k in on_state and on_state[k].shape == v.shape for k, v in planned_state.items())
