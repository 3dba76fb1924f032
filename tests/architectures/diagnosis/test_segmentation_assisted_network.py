"""Every diagnosis method on nnU-Net's real plans (2D and 3D, default and ResEnc): the network returns plain
segmentation logits, and with its diagnosis output on the same segmentation followed by the diagnosis logits, trains both parts (or only the branch when frozen),
keeps nnU-Net's parameter names for the segmentation part, and rejects weights that are not its own."""

import json

import pytest
import torch

from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_ext.architectures.diagnosis.diagnosis_methods import DIAGNOSIS_METHODS
from nnunet_ext.architectures.diagnosis.diagnosis_tap import (DiagnosisRecorder, DiagnosisTap, set_diagnosis_output,
                                                              split_diagnosis_output)
from nnunet_ext.core.errors import IncompatibleCheckpointError
from nnunet_ext.diagnosis.labels import DiagnosisLabels
from nnunet_ext.diagnosis.plans_entry import add_diagnosis_settings
from nnunet_ext.trainers.network_builders.diagnosis_network import build_segmentation_assisted_diagnosis_network

NUM_SEGMENTATION_CLASSES = 3  # background, organ, lesion


def managers(planned_synthetic, plans_name, configuration, classes=("no", "yes")):
    plans_file, _ = planned_synthetic[plans_name]
    plans = json.loads(plans_file.read_text())
    labels = DiagnosisLabels(classes=list(classes), ordinal=False, labels={}, source=plans_file)
    plans_manager = PlansManager(add_diagnosis_settings(plans, labels, segmentation_softmax=True))
    return plans_manager, plans_manager.get_configuration(configuration)


def build(planned_synthetic, method, plans_name="nnUNetPlans", configuration="2d", deep_supervision=True,
          classes=("no", "yes")):
    torch.manual_seed(0)
    plans_manager, configuration_manager = managers(planned_synthetic, plans_name, configuration, classes)
    network = build_segmentation_assisted_diagnosis_network(method, plans_manager, configuration_manager, 1,
                                                            NUM_SEGMENTATION_CLASSES, deep_supervision)
    return network, configuration_manager


CASES = [(method, "nnUNetPlans", "2d") for method in sorted(DIAGNOSIS_METHODS)] + [
    ("base_multi", "nnUNetResEncUNetMPlans", "2d"), ("sian", "nnUNetPlans", "3d_fullres"),
    ("seatrans", "nnUNetPlans", "3d_fullres"), ("base_roi", "nnUNetResEncUNetMPlans", "3d_fullres")]


@pytest.mark.parametrize("method, plans_name, configuration", CASES)
def test_segmentation_output_unchanged_and_diagnosis_after_it(planned_synthetic, method, plans_name,
                                                              configuration):
    network, configuration_manager = build(planned_synthetic, method, plans_name, configuration,
                                           deep_supervision=False)
    patch = configuration_manager.patch_size
    image = torch.randn(2 if configuration == "2d" else 1, 1, *patch)
    network.eval()
    with torch.no_grad():
        segmentation_only = network(image)
        assert set_diagnosis_output(network, True)
        segmentation, diagnosis_logits = split_diagnosis_output(network(image), deep_supervision=False)
        tap = DiagnosisTap()
        recorded = DiagnosisRecorder(network, tap)(image)  # what nnU-Net's predictor calls
    assert segmentation_only.shape == (image.shape[0], NUM_SEGMENTATION_CLASSES, *patch)
    assert torch.equal(segmentation_only, segmentation) and torch.equal(segmentation_only, recorded)
    assert diagnosis_logits.shape == (image.shape[0], 1)
    assert len(tap.logits) == 1 and torch.equal(tap.latest(), diagnosis_logits)


@pytest.mark.parametrize("method", sorted(DIAGNOSIS_METHODS))
def test_joint_training_reaches_both_parts(planned_synthetic, method):
    network, configuration_manager = build(planned_synthetic, method, classes=("a", "b", "c"))
    set_diagnosis_output(network, True)
    outputs, diagnosis_logits = split_diagnosis_output(network(torch.randn(2, 1, *configuration_manager.patch_size)),
                                                       deep_supervision=True)
    assert isinstance(outputs, list) and len(outputs) == len(network.decoder.stages)  # nnU-Net's deep supervision
    assert diagnosis_logits.shape == (2, 3)
    (outputs[0].mean() + diagnosis_logits.logsumexp(1).mean()).backward()
    assert all(p.grad is not None for p in network.diagnosis.parameters() if p.requires_grad), method
    assert network.encoder.stages[0].parameters().__next__().grad is not None


@pytest.mark.parametrize("method", ["base_cat", "sian", "seatrans"])
def test_frozen_segmentation_trains_the_branch_only(planned_synthetic, method):
    network, configuration_manager = build(planned_synthetic, method)
    network.freeze_segmentation()
    set_diagnosis_output(network, True)
    outputs, diagnosis_logits = split_diagnosis_output(network(torch.randn(2, 1, *configuration_manager.patch_size)),
                                                       deep_supervision=True)
    assert not outputs[0].requires_grad
    diagnosis_logits.sum().backward()
    assert all(p.grad is None for p in [*network.encoder.parameters(), *network.decoder.parameters()])
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in network.diagnosis.parameters())


def test_segmentation_part_keeps_nnunets_names(planned_synthetic):
    """So weights of a segmentation model trained with the same plans fill it by name."""
    network, configuration_manager = build(planned_synthetic, "sian")
    planned = get_network_from_plans(configuration_manager.network_arch_class_name,
                                     configuration_manager.network_arch_init_kwargs,
                                     configuration_manager.network_arch_init_kwargs_req_import, 1,
                                     NUM_SEGMENTATION_CLASSES, deep_supervision=True)
    ours = {k: v.shape for k, v in network.state_dict().items() if not k.startswith("diagnosis.")}
    assert ours == {k: v.shape for k, v in planned.state_dict().items()}


def test_segmentation_weights_alone_are_refused_with_a_clear_error(planned_synthetic):
    network, _ = build(planned_synthetic, "sian")
    segmentation_only = {k: v for k, v in network.state_dict().items() if not k.startswith("diagnosis.")}
    with pytest.raises(IncompatibleCheckpointError, match="no diagnosis branch"):
        network.load_state_dict(segmentation_only)
    other_method, _ = build(planned_synthetic, "base_cat")
    with pytest.raises(IncompatibleCheckpointError, match="another diagnosis method"):
        network.load_state_dict(other_method.state_dict())
    network.load_state_dict(network.state_dict())


def test_plans_without_diagnosis_classes_are_refused(planned_synthetic):
    plans_file, _ = planned_synthetic["nnUNetPlans"]
    plans_manager = PlansManager(json.loads(plans_file.read_text()))
    with pytest.raises(IncompatibleCheckpointError, match="diagnosis trainer"):
        build_segmentation_assisted_diagnosis_network("sian", plans_manager, plans_manager.get_configuration("2d"),
                                                      1, NUM_SEGMENTATION_CLASSES)


@pytest.mark.parametrize("method", ["base_cat", "sian", "sian_cw_maxpool"])
def test_the_probabilities_are_detached_unless_coupled(planned_synthetic, method):
    """The papers' Base-cat and SiAN read the segmentation's output: the diagnosis loss alone trains no segmentation
    parameter, unless the coupled form is asked for."""
    plans_manager, configuration_manager = managers(planned_synthetic, "nnUNetPlans", "2d")
    image = torch.randn(2, 1, *configuration_manager.patch_size)
    reached = {}
    for coupled in (False, True):
        torch.manual_seed(0)
        network = build_segmentation_assisted_diagnosis_network(method, plans_manager, configuration_manager, 1,
                                                                NUM_SEGMENTATION_CLASSES, True,
                                                                probabilities_gradient=coupled)
        set_diagnosis_output(network, True)
        _, diagnosis_logits = split_diagnosis_output(network(image), deep_supervision=True)
        diagnosis_logits.sum().backward()
        reached[coupled] = any(p.grad is not None and p.grad.abs().sum() > 0
                               for p in network.segmentation_parameters())
    assert reached == {False: False, True: True}


def planned_segmentation_network(trainer_name, configuration_manager, plans_manager):
    from nnunet_ext.trainers.network_builders.diagnosis_network import segmentation_trainer_class
    return segmentation_trainer_class(trainer_name).build_network_architecture(
        plans_manager, configuration_manager, 1, NUM_SEGMENTATION_CLASSES, True)


@pytest.mark.parametrize("segmentation_trainer", ["LNetTrainer", "DivAttentionTrainer"])
def test_a_branch_on_our_segmentation_networks_keeps_their_output_and_their_weights(planned_synthetic,
                                                                                    segmentation_trainer):
    plans_manager, configuration_manager = managers(planned_synthetic, "nnUNetPlans", "2d")
    torch.manual_seed(0)
    network = build_segmentation_assisted_diagnosis_network("sian", plans_manager, configuration_manager, 1,
                                                            NUM_SEGMENTATION_CLASSES, False,
                                                            segmentation_trainer=segmentation_trainer)
    trained = planned_segmentation_network(segmentation_trainer, configuration_manager, plans_manager)
    trained.decoder.deep_supervision = False
    ours = network.state_dict()
    assert {k for k in ours if not k.startswith("diagnosis.")} == set(trained.state_dict())
    network.load_state_dict({**ours, **trained.state_dict()})
    network.eval(), trained.eval()
    image = torch.randn(1, 1, *configuration_manager.patch_size)
    with torch.no_grad():
        expected = trained(image)
        assert torch.equal(network(image), expected)
        set_diagnosis_output(network, True)
        segmentation, diagnosis_logits = split_diagnosis_output(network(image), deep_supervision=False)
    assert torch.equal(segmentation, expected) and diagnosis_logits.shape == (1, 1)


@pytest.mark.parametrize("method", ["base_multi", "seatrans"])
def test_methods_reading_unet_features_are_refused_on_another_segmentation_network(planned_synthetic, method):
    from nnunet_ext.core.errors import UnsupportedConfigurationError
    plans_manager, configuration_manager = managers(planned_synthetic, "nnUNetPlans", "2d")
    with pytest.raises(UnsupportedConfigurationError, match="reads nnU-Net's U-Net features"):
        build_segmentation_assisted_diagnosis_network(method, plans_manager, configuration_manager, 1,
                                                      NUM_SEGMENTATION_CLASSES, segmentation_trainer="LNetTrainer")
