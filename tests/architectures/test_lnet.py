"""L-Net on nnU-Net's planned encoders: every cut in 2D and 3D, interpolation upsampling, deep supervision."""

import json
from types import SimpleNamespace

import pytest
import torch
from torch.nn import functional as F
from torch.nn.modules.conv import _ConvTransposeNd

from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_ext.architectures.building_blocks.lnet_decoder import supported_output_strides
from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.trainers import LNetTrainer, LNetTrainer_4s
from nnunet_ext.trainers.lnet_trainer import LNetArchitecture
from nnunet_ext.trainers.network_builders.lnet import build_lnet
from nnunet_ext.trainers.network_builders.planned_unet import build_planned_unet

PLANS_AND_CONFIGURATIONS = [("nnUNetPlans", "2d"), ("nnUNetPlans", "3d_fullres"), ("nnUNetResEncUNetMPlans", "3d_fullres")]


def managers(planned_synthetic, plans_name, configuration):
    plans_file, dataset_json = planned_synthetic[plans_name]
    plans_manager = PlansManager(json.loads(plans_file.read_text()))
    return plans_manager, plans_manager.get_configuration(configuration), plans_manager.get_label_manager(dataset_json)


@pytest.mark.parametrize("plans_name, configuration", PLANS_AND_CONFIGURATIONS)
def test_every_supported_cut_fits_nnunets_targets(planned_synthetic, plans_name, configuration):
    plans_manager, configuration_manager, label_manager = managers(planned_synthetic, plans_name, configuration)
    cuts = supported_output_strides(configuration_manager.pool_op_kernel_sizes)
    assert len(cuts) == len(configuration_manager.pool_op_kernel_sizes) and cuts[0] == 1
    patch = configuration_manager.patch_size
    image = torch.randn(2, 1, *patch)
    segmentation = torch.randint(0, 3, (1, *patch)).to(torch.int16)
    for cut in cuts:
        network = build_lnet(plans_manager, configuration_manager, 1, 3, True, output_stride=cut)
        state = SimpleNamespace(enable_deep_supervision=True, configuration_manager=configuration_manager,
                                output_stride=cut, label_manager=label_manager, is_ddp=False,
                                _do_i_compile=lambda: False)
        scales = LNetArchitecture._get_deep_supervision_scales(state)
        state._get_deep_supervision_scales = lambda: scales
        targets = DownsampleSegForDSTransform(ds_scales=scales)(segmentation=segmentation)["segmentation"]
        outputs = network(image)
        assert outputs[0].shape == (2, 3, *patch), cut  # full resolution
        assert [tuple(o.shape[2:]) for o in outputs] == [tuple(t.shape[1:]) for t in targets], cut
        assert max(p // s for p, s in zip(patch, outputs[1].shape[2:])) == cut  # logits at 1/N, then up by N
        loss = nnUNetTrainer._build_loss(state)  # nnU-Net's Dice+CE with its deep-supervision weights
        value = loss(outputs, [t[None].expand(2, *t.shape) for t in targets])
        assert torch.isfinite(value), cut


def test_shorter_paths_have_fewer_stages_and_parameters(planned_synthetic):
    plans_manager, configuration_manager, _ = managers(planned_synthetic, "nnUNetPlans", "3d_fullres")
    cuts = supported_output_strides(configuration_manager.pool_op_kernel_sizes)
    networks = [build_lnet(plans_manager, configuration_manager, 1, 3, True, output_stride=c) for c in cuts]
    stages = [len(n.decoder.stages) for n in networks]
    parameters = [sum(p.numel() for p in n.decoder.parameters()) for n in networks]
    assert stages == list(range(len(cuts) - 1, -1, -1))  # the bottleneck cut has no expansive stage
    assert parameters == sorted(parameters, reverse=True)


@pytest.mark.parametrize("configuration", ["2d", "3d_fullres"])
def test_upsampling_is_a_1x1_conv_and_parameter_free_interpolation(planned_synthetic, configuration):
    """Each expansive stage's input is ``[interpolate(conv1x1(below)), skip]`` with (bi/tri)linear interpolation to the
    skip's size, and the full-resolution output is the cut's logits interpolated the same way."""
    plans_manager, configuration_manager, _ = managers(planned_synthetic, "nnUNetPlans", configuration)
    network = build_lnet(plans_manager, configuration_manager, 1, 3, True, output_stride=2).eval()
    decoder = network.decoder
    assert not any(isinstance(module, _ConvTransposeNd) for module in decoder.modules())
    assert all(set(p.kernel_size) == {1} for p in decoder.upsample_projections)
    projected, stage_inputs = [], []
    for projection, stage in zip(decoder.upsample_projections, decoder.stages):
        projection.register_forward_hook(lambda module, args, output: projected.append(output))
        stage.register_forward_pre_hook(lambda module, args: stage_inputs.append(args[0]))
    image = torch.randn(1, 1, *configuration_manager.patch_size)
    mode = {4: "bilinear", 5: "trilinear"}[image.ndim]
    with torch.no_grad():
        skips = network.encoder(image)
        outputs = decoder(skips, image.shape[2:])
    assert len(stage_inputs) == len(decoder.stages) > 1
    for s, (low, merged) in enumerate(zip(projected, stage_inputs)):
        skip = skips[-(s + 2)]
        assert tuple(low.shape[2:]) != tuple(skip.shape[2:])  # the projection works at the lower resolution
        upsampled = F.interpolate(low, size=skip.shape[2:], mode=mode, align_corners=False)
        assert torch.allclose(merged[:, :skip.shape[1]], upsampled, atol=1e-6), s
        assert torch.equal(merged[:, skip.shape[1]:], skip), s
    full_resolution = F.interpolate(outputs[1], size=image.shape[2:], mode=mode, align_corners=False)
    assert torch.allclose(outputs[0], full_resolution, atol=1e-6)


def convolutions(module):
    """How many 2D or 3D convolutions ``module`` holds."""
    return sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)) for m in module.modules())


@pytest.mark.parametrize("configuration", ["2d", "3d_fullres"])
def test_decoder_conv_counts_follow_nnunets_order_for_a_non_uniform_list(planned_synthetic, configuration):
    """``n_conv_per_stage_decoder[s]`` is the number of convolutions of expansive stage ``s``, lowest first, as in
    nnU-Net's ``UNetDecoder``; a cut path has the lowest stages, hence the first entries."""
    plans_file, _ = planned_synthetic["nnUNetPlans"]
    plans = json.loads(plans_file.read_text())
    arch_kwargs = plans["configurations"][configuration]["architecture"]["arch_kwargs"]
    n_conv = [1 + s % 3 for s in range(arch_kwargs["n_stages"] - 1)]  # 1, 2, 3, 1, ...: not a palindrome
    assert n_conv != n_conv[::-1]
    arch_kwargs["n_conv_per_stage_decoder"] = n_conv
    plans_manager = PlansManager(plans)
    configuration_manager = plans_manager.get_configuration(configuration)
    nnunet_decoder = build_planned_unet(configuration_manager, 1, 3, True).decoder
    assert [convolutions(stage) for stage in nnunet_decoder.stages] == n_conv  # nnU-Net's own convention
    for cut in supported_output_strides(configuration_manager.pool_op_kernel_sizes):
        decoder = build_lnet(plans_manager, configuration_manager, 1, 3, True, output_stride=cut).decoder
        counts = [convolutions(stage) for stage in decoder.stages]
        assert counts == n_conv[:len(decoder.stages)], cut


def test_state_dict_loads_across_the_deep_supervision_flag(planned_synthetic):
    plans_manager, configuration_manager, _ = managers(planned_synthetic, "nnUNetPlans", "2d")
    training = LNetTrainer_4s.build_network_architecture(plans_manager, configuration_manager, 1, 3, True).eval()
    prediction = LNetTrainer_4s.build_network_architecture(plans_manager, configuration_manager, 1, 3, False).eval()
    prediction.load_state_dict(training.state_dict())
    image = torch.randn(1, 1, *configuration_manager.patch_size)
    with torch.no_grad():
        assert torch.allclose(prediction(image), training(image)[0], atol=1e-5)
    assert prediction.decoder.output_stride == 4 and training.decoder.output_stride == 4


def test_default_lnet_trainer_is_lnet_8s_when_the_plans_allow_it(planned_synthetic):
    plans_manager, configuration_manager, _ = managers(planned_synthetic, "nnUNetPlans", "3d_fullres")
    network = LNetTrainer.build_network_architecture(plans_manager, configuration_manager, 1, 3, False)
    assert network.decoder.output_stride == LNetTrainer.output_stride == 8


@pytest.mark.parametrize("cut, message", [(64, "total stride is only"), (3, "no stage of these plans")])
def test_a_cut_the_plans_cannot_give_is_refused_listing_the_supported_ones(planned_synthetic, cut, message):
    plans_manager, configuration_manager, _ = managers(planned_synthetic, "nnUNetPlans", "2d")
    supported = supported_output_strides(configuration_manager.pool_op_kernel_sizes)
    with pytest.raises(UnsupportedConfigurationError, match=f"{message}.*{supported}".replace("[", r"\[")):
        build_lnet(plans_manager, configuration_manager, 1, 3, True, output_stride=cut)
