"""Div-attention's readings as trainer attributes (issue 11): each registered variant changes one attribute, the
classmethod ``build_network_architecture`` builds what the attributes say (also when nnU-Net's predictor calls it
on the class), the defaults are those the ablation chose, and softmax masks are refused on region datasets."""

import copy
import json

import pytest
import torch

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_ext.architectures.building_blocks.div_attention_decoder import DivAttentionUNetDecoder
from nnunet_ext.architectures.div_attention_unet import DivAttentionUNet
from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.trainers import DivAttentionTrainer, DivAttentionTrainer_SoftmaxMasks
from nnunet_ext.trainers.registry import get_trainer, list_trainers

OPTION_ATTRIBUTES = ("div_attention_placement", "div_attention_map", "div_attention_masks", "div_attention_residual",
                     "div_attention_feature_masks")
VARIANTS = {  # trainer -> (its parent, the one attribute it sets)
    "DivAttentionTrainer_SoftmaxMap": ("DivAttentionTrainer", {"div_attention_map": "softmax"}),
    "DivAttentionTrainer_SoftmaxMasks": ("DivAttentionTrainer", {"div_attention_masks": "softmax"}),
    "DivAttentionTrainer_NoResidual": ("DivAttentionTrainer", {"div_attention_residual": False}),
    "DivAttentionFeaturesTrainer": ("DivAttentionTrainer", {"div_attention_placement": "features"}),
    "DivAttentionFeaturesTrainer_FeatureMasks": ("DivAttentionFeaturesTrainer",
                                                 {"div_attention_feature_masks": "features"}),
}


def options(trainer_class):
    return {name: getattr(trainer_class, name) for name in OPTION_ATTRIBUTES}


def test_the_defaults_are_the_readings_the_ablation_chose():
    assert options(DivAttentionTrainer) == {"div_attention_placement": "logits", "div_attention_map": "divergence",
                                            "div_attention_masks": "sigmoid", "div_attention_residual": True,
                                            "div_attention_feature_masks": "heads"}


@pytest.mark.parametrize("name", VARIANTS)
def test_each_variant_is_registered_with_its_short_budget_and_sets_one_attribute(name):
    parent, changed = VARIANTS[name]
    entry = get_trainer(name)
    assert entry.family == "div_attention" and entry.variant_of is None and name + "_Short" in list_trainers()
    trainer_class, parent_class = entry.trainer_class, get_trainer(parent).trainer_class
    assert trainer_class.__bases__ == (parent_class,)
    assert set(vars(trainer_class)) - {"__module__", "__qualname__", "__doc__"} == set(changed)
    assert options(trainer_class) == dict(options(parent_class), **changed)


@pytest.fixture
def plans_2d(planned_synthetic):
    plans_file, dataset_json = planned_synthetic["nnUNetPlans"]
    plans_manager = PlansManager(json.loads(plans_file.read_text()))
    return plans_manager, plans_manager.get_configuration("2d"), dataset_json


def junction_options(network):
    if isinstance(network, DivAttentionUNet):
        return [(j.attention, j.masks, j.residual) for j in network.div_attention]
    return [(j.feature_masks, j.attention, j.masks, j.residual) for j in network.decoder.div_attention]


@pytest.mark.parametrize("name", ["DivAttentionTrainer", *VARIANTS])
def test_the_classmethod_builds_what_the_attributes_say(name, plans_2d):
    trainer_class = get_trainer(name).trainer_class
    plans_manager, configuration_manager, _ = plans_2d
    for deep_supervision in (True, False):  # the trainer, and nnU-Net's predictor (the class, plans only)
        network = trainer_class.build_network_architecture(plans_manager, configuration_manager, 1, 3,
                                                           deep_supervision)
        o = options(trainer_class)
        if o["div_attention_placement"] == "features":
            assert isinstance(network.decoder, DivAttentionUNetDecoder)
            expected = (o["div_attention_feature_masks"], o["div_attention_map"], o["div_attention_masks"],
                        o["div_attention_residual"])
        else:
            assert isinstance(network, DivAttentionUNet)
            expected = (o["div_attention_map"], o["div_attention_masks"], o["div_attention_residual"])
        assert set(junction_options(network)) == {expected}


def test_variants_build_the_defaults_parameters_but_other_outputs(plans_2d):
    plans_manager, configuration_manager, _ = plans_2d
    torch.manual_seed(0)
    reference = DivAttentionTrainer.build_network_architecture(plans_manager, configuration_manager, 1, 3, False)
    image = torch.randn(1, 1, *configuration_manager.patch_size)
    with torch.no_grad():
        expected = reference.eval()(image)
    for name in ("DivAttentionTrainer_SoftmaxMap", "DivAttentionTrainer_SoftmaxMasks",
                 "DivAttentionTrainer_NoResidual"):
        network = get_trainer(name).trainer_class.build_network_architecture(plans_manager, configuration_manager,
                                                                             1, 3, False)
        network.load_state_dict(reference.state_dict())
        with torch.no_grad():
            assert not torch.allclose(network.eval()(image), expected, atol=1e-4), name


def make_trainer(trainer_class, plans_manager, dataset_json, tmp_path, monkeypatch):
    for folder in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(folder, str(tmp_path / folder))
    plans = dict(copy.deepcopy(plans_manager.plans), continue_training=False)
    return trainer_class(plans, "2d", 0, dataset_json, torch.device("cpu"))


REGIONS = {"labels": {"background": 0, "organ_or_lesion": [1, 2], "lesion": 2}, "regions_class_order": [1, 2]}


def test_softmax_masks_are_refused_on_a_region_dataset_before_anything_is_built(plans_2d, tmp_path, monkeypatch):
    plans_manager, _, dataset_json = plans_2d
    trainer = make_trainer(DivAttentionTrainer_SoftmaxMasks, plans_manager, dict(dataset_json, **REGIONS), tmp_path,
                           monkeypatch)
    assert trainer.label_manager.has_regions
    with pytest.raises(UnsupportedConfigurationError, match="region-based.*sigmoid masks.*DivAttentionTrainer"):
        trainer.initialize()
    assert trainer.network is None


@pytest.mark.parametrize("trainer_class, dataset", [(DivAttentionTrainer_SoftmaxMasks, "labels"),
                                                    (DivAttentionTrainer, "regions")])
def test_other_combinations_go_on_to_nnunets_initialize(trainer_class, dataset, plans_2d, tmp_path, monkeypatch):
    plans_manager, _, dataset_json = plans_2d
    dataset_json = dict(dataset_json, **REGIONS) if dataset == "regions" else dataset_json
    trainer = make_trainer(trainer_class, plans_manager, dataset_json, tmp_path, monkeypatch)
    called = []
    monkeypatch.setattr(nnUNetTrainer, "initialize", lambda self: called.append(self))
    trainer.initialize()
    assert called == [trainer]
