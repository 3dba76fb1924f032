"""A trained segmentation model as the frozen segmentation part: found, checked (channels, labels, plans,
configuration, fold, architecture) with errors that name the file and the fix, loaded by name, frozen."""

import copy
import json

import pytest
import torch

from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_ext.core.errors import IncompatibleCheckpointError
from nnunet_ext.diagnosis.labels import DiagnosisLabels
from nnunet_ext.diagnosis.plans_entry import add_diagnosis_settings
from nnunet_ext.diagnosis.segmentation_model import (SEGMENTATION_MODEL_VARIABLE, load_segmentation_model,
                                                      segmentation_model_folder)
from nnunet_ext.trainers.network_builders.diagnosis_network import build_segmentation_assisted_diagnosis_network

CONFIGURATION = "2d"


@pytest.fixture
def setting(segmentation_model):
    """The segmentation model folder of the shared fixture, and a diagnosis network for the same plans."""
    labels = DiagnosisLabels(classes=["no", "yes"], ordinal=False, labels={}, source=segmentation_model["plans_file"])
    diagnosis_plans = add_diagnosis_settings(copy.deepcopy(segmentation_model["plans"]), labels,
                                             segmentation_softmax=True)
    diagnosis_manager = PlansManager(diagnosis_plans)
    network = build_segmentation_assisted_diagnosis_network(
        "sian", diagnosis_manager, diagnosis_manager.get_configuration(CONFIGURATION), 1, 3)
    folder = segmentation_model["folder"]
    return {"folder": folder, "plans": diagnosis_plans, "dataset_json": segmentation_model["dataset_json"],
            "network": network, "segmentation": segmentation_model["network"],
            "environ": {SEGMENTATION_MODEL_VARIABLE: str(folder)}}


def load(setting, fold=0, freeze=True):
    return load_segmentation_model(setting["network"], setting["plans"], CONFIGURATION, setting["dataset_json"],
                                   fold, "nnUNetTrainer", freeze, environ=setting["environ"])


def test_weights_are_loaded_by_name_and_frozen(setting):
    load(setting)
    network, segmentation = setting["network"], setting["segmentation"]
    for key, value in segmentation.state_dict().items():
        assert torch.equal(network.state_dict()[key], value), key
    assert network.segmentation_frozen
    assert not any(p.requires_grad for p in network.encoder.parameters())
    assert all(p.requires_grad for p in network.diagnosis.parameters())


def test_default_folder_is_nnunets_results_folder_of_the_trainer():
    environ = {"nnUNet_results": "/results"}
    assert segmentation_model_folder("Dataset1_X", "nnUNetPlans", "2d", "nnUNetTrainer", environ) == \
        "/results/Dataset1_X/nnUNetTrainer__nnUNetPlans__2d"


def test_missing_model_or_fold(setting, tmp_path):
    with pytest.raises(IncompatibleCheckpointError, match="fold_3.*Train that fold first"):
        load(setting, fold=3)
    setting["environ"] = {SEGMENTATION_MODEL_VARIABLE: str(tmp_path / "nowhere")}
    with pytest.raises(IncompatibleCheckpointError, match="No segmentation model folder.*nnUNetv2_train"):
        load(setting)


def test_other_channels_or_labels_are_refused(setting):
    their_dataset = dict(setting["dataset_json"], channel_names={"0": "CT", "1": "PET"})
    (setting["folder"] / "dataset.json").write_text(json.dumps(their_dataset))
    with pytest.raises(IncompatibleCheckpointError, match="takes 2 input channel"):
        load(setting)
    their_dataset = dict(setting["dataset_json"], labels={"background": 0, "tumour": 1})
    (setting["folder"] / "dataset.json").write_text(json.dumps(their_dataset))
    with pytest.raises(IncompatibleCheckpointError, match="labels"):
        load(setting)


def test_other_plans_are_refused(setting):
    their_plans = copy.deepcopy(setting["plans"])
    their_plans["configurations"][CONFIGURATION]["patch_size"] = [16, 16]
    (setting["folder"] / "plans.json").write_text(json.dumps(their_plans))
    with pytest.raises(IncompatibleCheckpointError, match="patch_size"):
        load(setting)


def test_another_architecture_is_refused(setting):
    path = setting["folder"] / "fold_0" / "checkpoint_final.pth"
    weights = dict(setting["segmentation"].state_dict(), **{"div_attention.0.weight": torch.zeros(1)})
    torch.save({"network_weights": weights, "trainer_name": "DivAttentionTrainer"}, path)
    with pytest.raises(IncompatibleCheckpointError, match="DivAttentionTrainer.*1 unexpected"):
        load(setting)


def test_the_variable_may_point_at_the_fold_being_trained_but_not_at_another(setting):
    """``NNUNET_EXT_SEGMENTATION_MODEL=<model>/fold_0`` (the folder with the checkpoint) means the model folder for
    fold 0; ``fold_0`` for training fold 1 is refused (that model saw fold 1's validation cases)."""
    setting["environ"] = {SEGMENTATION_MODEL_VARIABLE: str(setting["folder"] / "fold_0") + "/"}
    assert load(setting).endswith("fold_0/checkpoint_final.pth")
    with pytest.raises(IncompatibleCheckpointError, match="is fold_0 of a segmentation model, but this training "
                                                          "is fold 1.*its fold_1 is then used"):
        load(setting, fold=1)
