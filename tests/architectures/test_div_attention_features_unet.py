"""The feature-level Div-attention U-Net (``DivAttentionFeaturesTrainer``) built from real nnU-Net plans (default
and ResEnc-M planners, 2d and 3d_fullres): nnU-Net's decoder with its names kept, the junctions wired in between its
stages, deep supervision on and off, gradients everywhere."""

import json

import numpy as np
import pytest
import torch

from dynamic_network_architectures.building_blocks.unet_decoder import UNetDecoder
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.architectures.building_blocks.div_attention_decoder import DivAttentionUNetDecoder
from nnunet_ext.core.errors import IncompatibleCheckpointError
from nnunet_ext.trainers import DivAttentionFeaturesTrainer, DivAttentionFeaturesTrainer_FeatureMasks

from .planned_networks import PLANS_AND_CONFIGURATIONS, nnunet_training_parts
from .planned_networks import build as build_network

TRAINERS = {"heads": DivAttentionFeaturesTrainer, "features": DivAttentionFeaturesTrainer_FeatureMasks}


def build(plans, dataset_json, configuration, deep_supervision=True, trainer=DivAttentionFeaturesTrainer):
    return build_network(plans, dataset_json, configuration, deep_supervision, trainer)


@pytest.fixture(params=PLANS_AND_CONFIGURATIONS, ids=["-".join(c) for c in PLANS_AND_CONFIGURATIONS])
def plans_case(request, planned_synthetic):
    plans_name, configuration = request.param
    plans_file, dataset_json = planned_synthetic[plans_name]
    return json.loads(plans_file.read_text()), dataset_json, configuration


def test_nnunets_decoder_keeps_every_name_module_and_shape(plans_case):
    plans, dataset_json, configuration = plans_case
    network, _, _ = build(plans, dataset_json, configuration, trainer=DivAttentionFeaturesTrainer)
    plain, _, _ = build(plans, dataset_json, configuration, trainer=nnUNetTrainer)
    assert isinstance(network.decoder, DivAttentionUNetDecoder) and isinstance(network.decoder, UNetDecoder)
    ours, theirs = network.state_dict(), plain.state_dict()
    assert set(theirs) < set(ours)
    assert all(key.startswith("decoder.div_attention.") for key in set(ours) - set(theirs))
    assert all(ours[key].shape == theirs[key].shape for key in theirs)
    plain_modules = {name: type(module) for name, module in plain.named_modules()}
    our_modules = {name: type(module) for name, module in network.named_modules()
                   if not name.startswith("decoder.div_attention")}
    assert our_modules.pop("") is not plain_modules.pop("") and our_modules.pop("decoder") is DivAttentionUNetDecoder
    assert plain_modules.pop("decoder") is UNetDecoder and our_modules == plain_modules
    assert [repr(m) for m in network.decoder.stages] == [repr(m) for m in plain.decoder.stages]  # norm, nonlin_first..
    assert len(network.decoder.div_attention) == len(network.decoder.stages) - 1
    assert type(network.decoder).forward is not UNetDecoder.forward
    assert type(network.decoder).compute_conv_feature_map_size is UNetDecoder.compute_conv_feature_map_size


@pytest.mark.parametrize("reading", TRAINERS)
def test_deep_supervision_outputs_fit_nnunets_loss_and_every_parameter_gets_a_gradient(plans_case, reading):
    plans, dataset_json, configuration = plans_case
    torch.manual_seed(0)
    network, configuration_manager, label_manager = build(plans, dataset_json, configuration,
                                                          trainer=TRAINERS[reading])
    plain, _, _ = build(plans, dataset_json, configuration, trainer=nnUNetTrainer)
    scales, loss = nnunet_training_parts(configuration_manager, label_manager)
    loss.weight_factors = tuple(w if w > 0 else 1e-6 for w in loss.weight_factors)  # nnU-Net's choice under DDP
    patch_size = configuration_manager.patch_size
    image = torch.randn(2, 1, *patch_size)
    outputs = network(image)
    assert isinstance(outputs, list) and len(outputs) == len(scales)
    targets = []
    for output, scale in zip(outputs, scales):
        size = [round(p * s) for p, s in zip(patch_size, scale)]
        assert output.shape == (2, label_manager.num_segmentation_heads, *size)
        targets.append(torch.randint(0, 3, (2, 1, *size)).to(torch.int16))
    loss(outputs, targets).backward()
    loss(plain(image), targets).backward()

    def without_gradient(model):
        return {name for name, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0}

    # nnU-Net's ResEnc initialisation zeroes each residual block's last norm, so at initialisation its first
    # convolution gets no gradient in nnU-Net's own network either; everything else must get one
    assert without_gradient(network) <= without_gradient(plain)
    assert not any(name.startswith("decoder.") for name in without_gradient(network))


@pytest.mark.parametrize("reading", TRAINERS)
def test_deep_supervision_on_and_off_share_keys_and_outputs(plans_case, reading):
    plans, dataset_json, configuration = plans_case
    torch.manual_seed(0)
    training, configuration_manager, _ = build(plans, dataset_json, configuration, True, TRAINERS[reading])
    predicting, _, _ = build(plans, dataset_json, configuration, False, TRAINERS[reading])
    assert list(training.state_dict()) == list(predicting.state_dict())
    predicting.load_state_dict(training.state_dict())
    image = torch.randn(1, 1, *configuration_manager.patch_size)
    with torch.no_grad():
        single, every_stage = predicting.eval()(image), training.eval()(image)
    assert isinstance(single, torch.Tensor) and single.shape[2:] == tuple(configuration_manager.patch_size)
    assert torch.allclose(single, every_stage[0], atol=1e-5)


def test_the_enhanced_map_feeds_the_next_stage_and_its_head(planned_synthetic):
    plans_file, dataset_json = planned_synthetic["nnUNetPlans"]
    network, configuration_manager, _ = build(json.loads(plans_file.read_text()), dataset_json, "3d_fullres")
    decoder = network.decoder.eval()
    seen = {}

    def record(name, take_input):
        def hook(module, args, output):
            seen.setdefault(name, []).append((args[0] if take_input else output).detach().clone())
        return hook

    for s, junction in enumerate(decoder.div_attention, start=1):
        junction.register_forward_hook(record(("junction", s), False))
        decoder.seg_layers[s].register_forward_hook(record(("head", s), True))
        if s + 1 < len(decoder.stages):
            decoder.transpconvs[s + 1].register_forward_hook(record(("next stage", s), True))
        junction.fusion.register_forward_hook(record(("fusion", s), False))
    with torch.no_grad():
        network(torch.randn(1, 1, *configuration_manager.patch_size))
    for s in range(1, len(decoder.stages)):
        enhanced = seen[("junction", s)][0]
        assert not torch.allclose(enhanced, enhanced - seen[("fusion", s)][0])  # the junction changed the features
        assert torch.equal(seen[("head", s)][-1], enhanced)  # the head's last call: the deep-supervision output
        if s + 1 < len(decoder.stages):
            assert torch.equal(seen[("next stage", s)][0], enhanced)


def test_plain_nnunet_weights_are_refused_with_a_clear_reason(planned_synthetic):
    plans_file, dataset_json = planned_synthetic["nnUNetPlans"]
    plans = json.loads(plans_file.read_text())
    network, _, _ = build(plans, dataset_json, "2d", False, DivAttentionFeaturesTrainer)
    plain, _, _ = build(plans, dataset_json, "2d", trainer=nnUNetTrainer)
    with pytest.raises(IncompatibleCheckpointError, match="no feature-level Div-attention parameters"):
        network.load_state_dict(plain.state_dict())


def test_feature_map_size_for_nnunets_planner_counts_the_junctions(plans_case):
    plans, dataset_json, configuration = plans_case
    network, configuration_manager, _ = build(plans, dataset_json, configuration, trainer=DivAttentionFeaturesTrainer)
    plain, _, _ = build(plans, dataset_json, configuration, trainer=nnUNetTrainer)
    patch_size = configuration_manager.patch_size
    ours, theirs = network.compute_conv_feature_map_size(patch_size), plain.compute_conv_feature_map_size(patch_size)
    assert isinstance(ours, (int, np.integer)) and theirs < ours < 3 * theirs
