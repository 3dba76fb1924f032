"""The Div-attention U-Net built from real nnU-Net plans (default and ResEnc-M planners, 2d and 3d_fullres)."""

import copy
import json

import numpy as np
import pytest
import torch

from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform
from dynamic_network_architectures.building_blocks.plain_conv_encoder import PlainConvEncoder
from dynamic_network_architectures.building_blocks.residual_encoders import ResidualEncoder
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.core.errors import IncompatibleCheckpointError, UnsupportedConfigurationError
from nnunet_ext.trainers import DivAttentionTrainer

from .planned_networks import PLANS_AND_CONFIGURATIONS, nnunet_training_parts
from .planned_networks import build as build_network

ENCODER_CLASS = {"nnUNetPlans": PlainConvEncoder, "nnUNetResEncUNetMPlans": ResidualEncoder}


def build(plans, dataset_json, configuration, deep_supervision=True, trainer=DivAttentionTrainer):
    return build_network(plans, dataset_json, configuration, deep_supervision, trainer)


@pytest.fixture(params=PLANS_AND_CONFIGURATIONS, ids=["-".join(c) for c in PLANS_AND_CONFIGURATIONS])
def plans_case(request, planned_synthetic):
    plans_name, configuration = request.param
    plans_file, dataset_json = planned_synthetic[plans_name]
    return plans_name, json.loads(plans_file.read_text()), dataset_json, configuration


def test_encoder_and_decoder_are_the_ones_the_plans_describe(plans_case):
    plans_name, plans, dataset_json, configuration = plans_case
    network, _, _ = build(plans, dataset_json, configuration)
    plain, _, _ = build(plans, dataset_json, configuration, trainer=nnUNetTrainer)
    assert isinstance(network.encoder, ENCODER_CLASS[plans_name])
    div_keys, plain_keys = set(network.state_dict()), set(plain.state_dict())
    assert plain_keys < div_keys  # nnU-Net's parameters keep their names...
    assert all(key.startswith("div_attention.") for key in div_keys - plain_keys)  # ...we only add junctions
    assert len(network.div_attention) == len(network.decoder.stages) - 1


def test_deep_supervision_outputs_fit_nnunets_targets_and_loss(plans_case):
    _, plans, dataset_json, configuration = plans_case
    network, configuration_manager, label_manager = build(plans, dataset_json, configuration)
    scales, loss = nnunet_training_parts(configuration_manager, label_manager)
    patch_size = configuration_manager.patch_size
    torch.manual_seed(0)
    image = torch.randn(2, 1, *patch_size)
    segmentation = torch.randint(0, 3, (2, 1, *patch_size)).to(torch.int16)
    downsample = DownsampleSegForDSTransform(ds_scales=scales)
    per_case = [downsample(segmentation=s)["segmentation"] for s in segmentation]
    targets = [torch.stack([case[i] for case in per_case]) for i in range(len(scales))]
    outputs = network(image)
    assert isinstance(outputs, list) and len(outputs) == len(scales) == len(targets)
    for output, target in zip(outputs, targets):
        assert output.shape == (2, label_manager.num_segmentation_heads, *target.shape[2:])
    value = loss(outputs, targets)
    assert torch.isfinite(value)
    value.backward()
    assert all(p.grad is not None for p in network.div_attention.parameters())


def test_state_dict_loads_across_the_deep_supervision_flag(plans_case):
    _, plans, dataset_json, configuration = plans_case
    torch.manual_seed(0)
    training_network, configuration_manager, _ = build(plans, dataset_json, configuration, deep_supervision=True)
    prediction_network, _, _ = build(plans, dataset_json, configuration, deep_supervision=False)
    prediction_network.load_state_dict(training_network.state_dict())
    training_network.eval(), prediction_network.eval()
    image = torch.randn(1, 1, *configuration_manager.patch_size)
    with torch.no_grad():
        full_resolution = prediction_network(image)
        every_path = training_network(image)
    assert isinstance(full_resolution, torch.Tensor)
    assert torch.allclose(full_resolution, every_path[0], atol=1e-5)
    training_network.load_state_dict(prediction_network.state_dict())  # and back


def test_feature_map_size_for_nnunets_planner_counts_the_junctions(plans_case):
    _, plans, dataset_json, configuration = plans_case
    network, configuration_manager, _ = build(plans, dataset_json, configuration)
    plain, _, _ = build(plans, dataset_json, configuration, trainer=nnUNetTrainer)
    patch_size = configuration_manager.patch_size
    ours, theirs = network.compute_conv_feature_map_size(patch_size), plain.compute_conv_feature_map_size(patch_size)
    assert isinstance(ours, (int, np.integer)) and theirs < ours < 1.5 * theirs


def test_region_based_dataset_gets_one_output_per_region(planned_synthetic):
    plans_file, dataset_json = planned_synthetic["nnUNetPlans"]
    regions = dict(copy.deepcopy(dataset_json), labels={"background": 0, "organ_or_lesion": [1, 2], "lesion": 2},
                   regions_class_order=[1, 2])
    network, configuration_manager, label_manager = build(json.loads(plans_file.read_text()), regions, "3d_fullres",
                                                          deep_supervision=False)
    assert label_manager.has_regions and label_manager.num_segmentation_heads == 2
    output = network(torch.randn(1, 1, *configuration_manager.patch_size))
    assert output.shape == (1, 2, *configuration_manager.patch_size)


def test_plain_nnunet_weights_are_refused_with_a_clear_reason(planned_synthetic):
    plans_file, dataset_json = planned_synthetic["nnUNetPlans"]
    plans = json.loads(plans_file.read_text())
    network, _, _ = build(plans, dataset_json, "2d", deep_supervision=False)
    plain, _, _ = build(plans, dataset_json, "2d", trainer=nnUNetTrainer)
    with pytest.raises(IncompatibleCheckpointError, match="no Div-attention parameters.*trainer_name"):
        network.load_state_dict(plain.state_dict())


def test_weights_of_other_plans_are_refused_naming_the_parameter(planned_synthetic):
    plans_file, dataset_json = planned_synthetic["nnUNetPlans"]
    plans = json.loads(plans_file.read_text())
    network, _, _ = build(plans, dataset_json, "2d")
    three_outputs = dict(dataset_json, labels={"background": 0, "organ": 1, "lesion": 2, "cyst": 3})
    other, _, _ = build(plans, three_outputs, "2d")
    with pytest.raises(IncompatibleCheckpointError, match="has shape .* other plans"):
        network.load_state_dict(other.state_dict())


def test_a_single_decoder_path_is_refused_before_training(planned_synthetic):
    plans_file, dataset_json = planned_synthetic["nnUNetPlans"]
    plans = json.loads(plans_file.read_text())
    arch = plans["configurations"]["2d"]["architecture"]["arch_kwargs"]
    arch.update(n_stages=2, features_per_stage=arch["features_per_stage"][:2], kernel_sizes=arch["kernel_sizes"][:2],
                strides=arch["strides"][:2], n_conv_per_stage=arch["n_conv_per_stage"][:2],
                n_conv_per_stage_decoder=arch["n_conv_per_stage_decoder"][:1])
    with pytest.raises(UnsupportedConfigurationError, match="single decoder path"):
        build(plans, dataset_json, "2d")
