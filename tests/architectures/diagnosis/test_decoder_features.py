"""The decoder's features for SeATrans: nnU-Net's decoder output unchanged, bit for bit, and one feature map per
encoder scale in the skips' shapes (decoder stage outputs, the bottleneck last), which a SeATrans branch reads and
trains the decoder through."""

import json

import pytest
import torch
from torch import nn

from dynamic_network_architectures.architectures.unet import ResidualUNet
from dynamic_network_architectures.building_blocks.unet_decoder import UNetDecoder
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_ext.architectures.diagnosis.decoder_features import decoder_output_and_features
from nnunet_ext.architectures.diagnosis.seatrans_branch import SeATransDiagnosisBranch
from nnunet_ext.trainers.network_builders.planned_unet import build_planned_unet


def planned_unet(planned_synthetic, configuration, deep_supervision, plans_name="nnUNetPlans"):
    plans_file, _ = planned_synthetic[plans_name]
    configuration_manager = PlansManager(json.loads(plans_file.read_text())).get_configuration(configuration)
    torch.manual_seed(0)
    return build_planned_unet(configuration_manager, 1, 3, deep_supervision), configuration_manager.patch_size


def assert_same_output(output, expected, deep_supervision):
    if deep_supervision:
        assert isinstance(output, list) and len(output) == len(expected)
        assert all(torch.equal(a, b) for a, b in zip(output, expected))
    else:
        assert torch.is_tensor(output) and torch.equal(output, expected)


@pytest.mark.parametrize("plans_name, configuration", [("nnUNetPlans", "2d"), ("nnUNetPlans", "3d_fullres"),
                                                       ("nnUNetResEncUNetMPlans", "2d")])
@pytest.mark.parametrize("deep_supervision", [True, False])
def test_the_decoder_output_is_nnunets_and_the_features_have_the_skips_shapes(planned_synthetic, plans_name,
                                                                             configuration, deep_supervision):
    unet, patch = planned_unet(planned_synthetic, configuration, deep_supervision, plans_name)
    unet.eval()
    image = torch.randn(1, 1, *patch)
    with torch.no_grad():
        skips = unet.encoder(image)
        expected = unet.decoder(skips)
        output, features = decoder_output_and_features(unet.decoder, skips)
    assert_same_output(output, expected, deep_supervision)
    assert [f.shape for f in features] == [s.shape for s in skips]
    assert features[-1] is skips[-1]
    assert not any(torch.equal(f, s) for f, s in zip(features[:-1], skips[:-1]))  # decoder outputs, not the skips
    # features[k] is what decoder stage N-2-k computed: its 1x1 segmentation layer gives that stage's logits
    num_stages = len(skips)
    with torch.no_grad():
        full_resolution = unet.decoder.seg_layers[num_stages - 2](features[0])
    assert torch.equal(full_resolution, expected[0] if deep_supervision else expected)


def test_the_deep_supervision_switch_is_read_at_call_time(planned_synthetic):
    unet, patch = planned_unet(planned_synthetic, "2d", deep_supervision=True)
    with torch.no_grad():
        skips = unet.encoder(torch.randn(1, 1, *patch))
        unet.decoder.deep_supervision = False  # what nnU-Net's set_deep_supervision_enabled does
        output, _ = decoder_output_and_features(unet.decoder, skips)
        assert_same_output(output, unet.decoder(skips), deep_supervision=False)


@pytest.mark.parametrize("deep_supervision", [True, False])
def test_the_residual_decoder_of_dynamic_network_architectures_too(deep_supervision):
    torch.manual_seed(0)
    unet = ResidualUNet(1, 4, [4, 8, 16, 16], nn.Conv3d, 3, [1, 2, 2, 2], 1, 2, 1, conv_bias=True,
                        norm_op=nn.InstanceNorm3d, norm_op_kwargs={"affine": True}, nonlin=nn.LeakyReLU,
                        deep_supervision=deep_supervision).eval()
    with torch.no_grad():
        skips = unet.encoder(torch.randn(1, 1, 16, 16, 16))
        output, features = decoder_output_and_features(unet.decoder, skips)
        assert_same_output(output, unet.decoder(skips), deep_supervision)
    assert [f.shape for f in features] == [s.shape for s in skips]


@pytest.mark.parametrize("configuration", ["2d", "3d_fullres"])
def test_a_seatrans_branch_reading_decoder_features_trains_the_decoder_stages_it_reads(planned_synthetic,
                                                                                      configuration):
    unet, patch = planned_unet(planned_synthetic, configuration, deep_supervision=True)
    branch = SeATransDiagnosisBranch(unet.encoder, 1, patch, 1, embed_dim=16, num_heads=4)
    assert branch.interaction_stages == [1, 2]  # four stages: scales 1 and 2, and 3 in their fine paths
    image = torch.randn(2, 1, *patch)
    _, features = decoder_output_and_features(unet.decoder, unet.encoder(image))
    logits = branch(image, features, None)
    nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([[1.0], [0.0]])).backward()
    # scale 2 is decoder stage 0's output, scale 1 decoder stage 1's; stage 2 (full resolution) is not read
    for read in (0, 1):
        for module in (unet.decoder.stages[read], unet.decoder.transpconvs[read]):
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    assert all(p.grad is None for p in unet.decoder.stages[2].parameters())
    assert all(p.grad is None for p in unet.decoder.seg_layers.parameters())
    assert unet.encoder.stages[0].parameters().__next__().grad.abs().sum() > 0  # through skips and bottleneck
    for interaction in branch.interactions.values():
        assert interaction.fine.segmentation_projection.weight.grad.abs().sum() > 0


def test_under_no_grad_the_features_are_constants_and_the_branch_still_trains(planned_synthetic):
    unet, patch = planned_unet(planned_synthetic, "2d", deep_supervision=False)
    branch = SeATransDiagnosisBranch(unet.encoder, 1, patch, 1, embed_dim=16, num_heads=4)
    image = torch.randn(2, 1, *patch)
    with torch.no_grad():  # the frozen segmentation's setting
        _, features = decoder_output_and_features(unet.decoder, unet.encoder(image))
    assert not any(f.requires_grad for f in features)
    branch(image, features, None).sum().backward()
    assert all(p.grad is None for p in unet.parameters())
    assert branch.interactions["1"].coarse.segmentation_projection.weight.grad.abs().sum() > 0


def test_compiles_in_one_graph_with_the_same_result(planned_synthetic):
    unet, patch = planned_unet(planned_synthetic, "2d", deep_supervision=True)
    unet.eval()
    image = torch.randn(1, 1, *patch)

    def segment(x):
        return decoder_output_and_features(unet.decoder, unet.encoder(x))

    torch._dynamo.reset()
    compiled = torch.compile(segment, backend="eager", fullgraph=True)  # fullgraph: a graph break raises
    with torch.no_grad():
        (output, features), (expected_output, expected_features) = compiled(image), segment(image)
    assert all(torch.allclose(a, b) for a, b in zip(output, expected_output))
    assert all(torch.allclose(a, b) for a, b in zip(features, expected_features))


def test_rejects_other_decoders_and_a_wrong_number_of_skips(planned_synthetic):
    unet, patch = planned_unet(planned_synthetic, "2d", deep_supervision=False)

    class OtherDecoder(UNetDecoder):
        def forward(self, skips):
            return super().forward(skips) * 2

    other = OtherDecoder(unet.encoder, 3, 1, False)
    with torch.no_grad():
        skips = unet.encoder(torch.randn(1, 1, *patch))
    with pytest.raises(TypeError, match="OtherDecoder"):
        decoder_output_and_features(other, skips)
    with pytest.raises(ValueError, match="needs 4 skips, got 3"):
        decoder_output_and_features(unet.decoder, skips[1:])
