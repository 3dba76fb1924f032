"""TransUNet on nnU-Net's plans (2D and 3D, PlainConv and ResEnc): the encoder cut at total stride 16, the transformer
on its features, the planned decoder with nnU-Net's deep supervision for the kept stages; block counts 12/3/1/0."""

import json

import numpy as np
import pytest
import torch

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.reliability.tiny_plans import tiny_plans
from nnunet_ext.trainers import (TransUNetTrainer, TransUNetTrainer_0b_Tiny, TransUNetTrainer_1b_Tiny,
                                 TransUNetTrainer_3b_Tiny, TransUNetTrainer_Tiny)
from nnunet_ext.trainers.network_builders.cut_planned_unet import stage_at_total_stride

from .planned_networks import PLANS_AND_CONFIGURATIONS, build


def tiny(planned_synthetic, plans_name):
    plans_file, dataset_json = planned_synthetic[plans_name]
    return tiny_plans(json.loads(plans_file.read_text())), dataset_json


def deep_supervision_scales(trainer, configuration_manager):
    state = type("State", (), {"enable_deep_supervision": True, "configuration_manager": configuration_manager})()
    return trainer._get_deep_supervision_scales(state)


@pytest.mark.parametrize("plans_name, configuration", PLANS_AND_CONFIGURATIONS)
def test_outputs_fit_the_deep_supervision_targets_of_the_kept_stages(planned_synthetic, plans_name, configuration):
    plans, dataset_json = tiny(planned_synthetic, plans_name)
    network, configuration_manager, label_manager = build(plans, dataset_json, configuration,
                                                          trainer=TransUNetTrainer_3b_Tiny)
    strides = configuration_manager.pool_op_kernel_sizes
    kept = stage_at_total_stride(strides, 16) + 1
    assert len(network.encoder.stages) == kept
    total = np.prod(np.vstack(strides), axis=0).max()
    assert np.prod(np.vstack(strides[:kept]), axis=0).max() == min(16, total)  # the deepest stage if less
    patch = configuration_manager.patch_size
    outputs = network(torch.randn(2, 1, *patch))
    scales = deep_supervision_scales(TransUNetTrainer_3b_Tiny, configuration_manager)
    assert len(outputs) == len(scales) == kept - 1
    for output, scale in zip(outputs, scales):
        assert list(output.shape) == [2, label_manager.num_segmentation_heads,
                                      *[round(p * s) for p, s in zip(patch, scale)]]
    network_for_prediction, _, _ = build(plans, dataset_json, configuration, deep_supervision=False,
                                         trainer=TransUNetTrainer_3b_Tiny)
    assert network_for_prediction(torch.randn(1, 1, *patch)).shape == (1, label_manager.num_segmentation_heads,
                                                                         *patch)
    assert {k: v.shape for k, v in network.state_dict().items()} == \
        {k: v.shape for k, v in network_for_prediction.state_dict().items()}


@pytest.mark.parametrize("configuration", ["2d", "3d_fullres"])
def test_block_counts_cut_parameters_and_zero_blocks_keep_only_the_embedding(planned_synthetic, configuration):
    plans, dataset_json = tiny(planned_synthetic, "nnUNetPlans")
    counts = {}
    for trainer, depth in ((TransUNetTrainer_Tiny, 12), (TransUNetTrainer_3b_Tiny, 3), (TransUNetTrainer_1b_Tiny, 1),
                           (TransUNetTrainer_0b_Tiny, 0)):
        network, _, _ = build(plans, dataset_json, configuration, trainer=trainer)
        assert len(network.transformer.blocks) == depth
        counts[depth] = sum(p.numel() for p in network.transformer.parameters())
    assert counts[12] > counts[3] > counts[1] > counts[0]
    per_block = (counts[3] - counts[1]) / 2
    assert counts[12] - counts[3] == pytest.approx(9 * per_block)


def test_full_width_is_vit_b():
    assert (TransUNetTrainer.transformer_width, TransUNetTrainer.transformer_depth,
            TransUNetTrainer.transformer_heads) == (768, 12, 12)


@pytest.mark.parametrize("configuration", ["2d", "3d_fullres"])
def test_gradients_reach_every_block_and_the_output_depends_on_them(planned_synthetic, configuration):
    plans, dataset_json = tiny(planned_synthetic, "nnUNetPlans")
    network, configuration_manager, _ = build(plans, dataset_json, configuration, deep_supervision=False,
                                              trainer=TransUNetTrainer_3b_Tiny)
    network.eval()
    x = torch.randn(1, 1, *configuration_manager.patch_size)
    output = network(x)
    output.square().mean().backward()
    for name, parameter in network.transformer.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert network.embedding.projection.weight.grad.abs().sum() > 0
    with torch.no_grad():
        network.transformer.blocks[1].mlp.fc2.weight.mul_(3.0)
        assert not torch.allclose(network(x), output)


def deeper_2d_plans(plans):
    """The 2D configuration with two more stages (total stride 32, patch 64 x 64), as nnU-Net plans larger images."""
    configuration = plans["configurations"]["2d"]
    arch = configuration["architecture"]["arch_kwargs"]
    for _ in range(2):
        arch["features_per_stage"].append(arch["features_per_stage"][-1])
        arch["strides"].append([2, 2])
        arch["kernel_sizes"].append([3, 3])
        arch["n_conv_per_stage"].append(2)
        arch["n_conv_per_stage_decoder"].append(2)
    arch["n_stages"] = len(arch["strides"])
    configuration["patch_size"] = [64, 64]
    return plans


def test_plans_deeper_than_stride_16_are_cut_there(planned_synthetic):
    plans, dataset_json = tiny(planned_synthetic, "nnUNetPlans")
    plans = deeper_2d_plans(plans)
    plain, _, _ = build(plans, dataset_json, "2d", trainer=nnUNetTrainer)
    ours, configuration_manager, _ = build(plans, dataset_json, "2d", trainer=TransUNetTrainer_1b_Tiny)
    assert len(plain.encoder.stages) == 6 and len(ours.encoder.stages) == 5  # strides 1, 2, 4, 8, 16 kept
    assert ours.token_grid == (4, 4) and ours.transformer.num_tokens == 16
    outputs = ours(torch.randn(2, 1, 64, 64))
    assert [tuple(o.shape[2:]) for o in outputs] == [(64, 64), (32, 32), (16, 16), (8, 8)]
    assert len(deep_supervision_scales(TransUNetTrainer_1b_Tiny, configuration_manager)) == 4
