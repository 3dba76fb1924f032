"""TransFuse on nnU-Net's plans (2D and 3D): two branches, BiFusion at three scales, the gated decoder, three heads at
full resolution for the three losses (weights 0.5 / 0.3 / 0.2 of the authors' script), the final head alone for
prediction; the trainer rounds the patch up to the token size and trains with UNETR-style targets at scale 1."""

import json

import pytest
import torch

from nnunet_ext.architectures.building_blocks.attention_gate import AttentionGate
from nnunet_ext.architectures.building_blocks.bifusion import BiFusion, ChannelAttention, SpatialAttention
from nnunet_ext.reliability.tiny_plans import tiny_plans
from nnunet_ext.trainers import TransFuseTrainer_Tiny

from .planned_networks import build

BLOCK_KWARGS = {"conv_bias": True, "norm_op": torch.nn.InstanceNorm2d, "norm_op_kwargs": {"affine": True},
                "dropout_op": None, "dropout_op_kwargs": None, "nonlin": torch.nn.LeakyReLU,
                "nonlin_kwargs": {"inplace": True}}


def tiny_for_transfuse(planned_synthetic):
    plans_file, dataset_json = planned_synthetic["nnUNetPlans"]
    return tiny_plans(json.loads(plans_file.read_text())), dataset_json


@pytest.mark.parametrize("configuration", ["2d", "3d_fullres"])
def test_three_full_resolution_heads_in_training_and_the_final_one_for_prediction(planned_synthetic, configuration):
    plans, dataset_json = tiny_for_transfuse(planned_synthetic)
    plans = TransFuseTrainer_Tiny.plans_for_training(plans, configuration)
    training, configuration_manager, label_manager = build(plans, dataset_json, configuration,
                                                           trainer=TransFuseTrainer_Tiny)
    predicting, _, _ = build(plans, dataset_json, configuration, deep_supervision=False, trainer=TransFuseTrainer_Tiny)
    patch = configuration_manager.patch_size
    assert all(p % 16 == 0 for p in patch)
    predicting.load_state_dict(training.state_dict(), strict=True)
    x = torch.randn(2, 1, *patch)
    outputs = training(x)
    assert len(outputs) == 3
    assert all(o.shape == (2, label_manager.num_segmentation_heads, *patch) for o in outputs)
    sum(o.square().mean() for o in outputs).backward()
    assert training.transformer.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in training.decoder.fusions.parameters())
    training.eval(), predicting.eval()
    with torch.no_grad():
        assert torch.allclose(predicting(x), training(x)[0], atol=1e-5)


def test_the_trainer_weighs_the_three_losses_as_the_authors(planned_synthetic, tmp_path, monkeypatch):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, str(tmp_path / name))
    plans, dataset_json = tiny_for_transfuse(planned_synthetic)
    plans = dict(plans, continue_training=False)
    trainer = TransFuseTrainer_Tiny(plans, "2d", 0, dataset_json, torch.device("cpu"))
    assert trainer._get_deep_supervision_scales() == [[1.0, 1.0]] * 3
    assert tuple(trainer._build_loss().weight_factors) == (0.5, 0.3, 0.2)


def test_channel_attention_scales_whole_channels_and_spatial_attention_whole_positions():
    x = torch.randn(2, 6, 5, 7).abs() + 0.1
    channel = ChannelAttention(torch.nn.Conv2d, 6, 2, BLOCK_KWARGS)(x) / x
    assert torch.allclose(channel, channel[..., :1, :1].expand_as(channel), atol=1e-6)  # one weight per channel
    spatial = SpatialAttention(torch.nn.Conv2d, BLOCK_KWARGS)(x) / x
    assert torch.allclose(spatial, spatial[:, :1].expand_as(spatial), atol=1e-6)  # one weight per position
    assert not torch.allclose(spatial[0, 0, 0, 0], spatial[0, 0, 4, 6])
    assert ((channel > 0) & (channel < 1)).all() and ((spatial > 0) & (spatial < 1)).all()


@pytest.mark.parametrize("conv_op, norm, shape", [(torch.nn.Conv2d, torch.nn.InstanceNorm2d, (6, 8)),
                                                  (torch.nn.Conv3d, torch.nn.InstanceNorm3d, (4, 6, 8))])
def test_bifusion_fuses_both_branches(conv_op, norm, shape):
    kwargs = dict(BLOCK_KWARGS, norm_op=norm)
    fusion = BiFusion(conv_op, 8, 12, 8, 10, 4, kwargs)
    g = torch.randn(2, 8, *shape, requires_grad=True)
    t = torch.randn(2, 12, *shape, requires_grad=True)
    out = fusion(g, t)
    assert out.shape == (2, 10, *shape)
    out.square().mean().backward()
    assert g.grad.abs().sum() > 0 and t.grad.abs().sum() > 0
    other_t = fusion(g, torch.randn_like(t))
    other_g = fusion(torch.randn_like(g), t)
    assert not torch.allclose(other_t, out) and not torch.allclose(other_g, out)


def test_the_attention_gate_weighs_the_skip_by_one_value_per_position():
    gate = AttentionGate(torch.nn.Conv2d, 4, 6, 3, BLOCK_KWARGS)
    x, g = torch.randn(1, 6, 5, 5).abs() + 0.1, torch.randn(1, 4, 5, 5)
    ratio = gate(x, g) / x
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-6)
    assert ((ratio > 0) & (ratio < 1)).all()
    assert not torch.allclose(gate(x, torch.randn(1, 4, 5, 5)), gate(x, g))
