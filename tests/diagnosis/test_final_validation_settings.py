"""The final validation records what it predicted with: nnU-Net's validation settings (tile step 0.5, Gaussian,
mirroring on the trainer's axes), this fold, the checkpoint whose weights the network holds, and the plans' tile
pooling; the same keys as a prediction's ``diagnosis_predictions_settings.json``."""

import json

import pytest
import torch

from nnunet_ext.diagnosis.plans_entry import DIAGNOSIS_PLANS_KEY
from nnunet_ext.diagnosis.predictor import DiagnosisPredictor
from nnunet_ext.reliability.network_builds import NetworkSetting, build_network
from nnunet_ext.reliability.tiny_plans import tiny_plans
from nnunet_ext.trainers.diagnosis.final_validation import DiagnosisFinalValidation

TRAINER = "BaseMultiDiagnosisTrainer"


class NnUNetTrainerSteps:
    """nnU-Net's trainer hooks this mixin extends, reduced to what they leave behind."""

    def load_checkpoint(self, filename_or_checkpoint):
        self.loaded = filename_or_checkpoint

    def on_train_end(self):
        pass


class ValidatingTrainer(DiagnosisFinalValidation, NnUNetTrainerSteps):
    pass


@pytest.fixture(scope="module")
def trainer(planned_synthetic):
    plans_file, dataset_json = planned_synthetic["nnUNetPlans"]
    plans = tiny_plans(json.loads(plans_file.read_text()))
    plans[DIAGNOSIS_PLANS_KEY]["tile_pooling"] = "foreground_weighted"
    setting = NetworkSetting(plans, "2d", dataset_json)
    trainer = ValidatingTrainer()
    trainer.network = build_network(TRAINER, setting, deep_supervision=False)
    trainer.plans_manager, trainer.configuration_manager = setting.plans_manager, setting.configuration_manager
    trainer.dataset_json, trainer.inference_allowed_mirroring_axes = dataset_json, (0, 1)
    trainer.fold, trainer.device = 3, torch.device("cpu")
    return trainer


def test_the_checkpoint_is_the_one_whose_weights_the_network_holds(trainer):
    assert trainer.weights_checkpoint is None  # nothing loaded, not trained
    trainer.load_checkpoint("/results/fold_3/checkpoint_latest.pth")  # --c
    assert trainer.weights_checkpoint == "checkpoint_latest.pth" and trainer.loaded.endswith("latest.pth")
    trainer.on_train_end()  # training finished: nnU-Net saved the weights as checkpoint_final.pth
    assert trainer.weights_checkpoint == "checkpoint_final.pth"
    trainer.load_checkpoint("/results/fold_3/checkpoint_best.pth")  # --val --val_best
    assert trainer.weights_checkpoint == "checkpoint_best.pth"
    trainer.load_checkpoint({"network_weights": {}})
    assert trainer.weights_checkpoint is None


def test_the_settings_are_nnunets_validation_settings_with_the_plans_rule(trainer):
    trainer.on_train_end()
    settings = trainer.validation_predictor().diagnosis_settings()
    assert settings == {"tile_step_size": 0.5, "use_gaussian": True, "use_mirroring": True, "mirroring_axes": [0, 1],
                        "diagnosis_from_mirrors": False, "tile_pooling": "foreground_weighted", "folds": [3],
                        "checkpoint": "checkpoint_final.pth", "aggregation": settings["aggregation"]}
    assert "foreground probability mass" in settings["aggregation"]
    # nnunet_ext_predict -f 3 -step_size 0.5 with mirroring and the final weights records the same
    predictor = DiagnosisPredictor(tile_step_size=0.5, use_mirroring=True, device=torch.device("cpu"))
    predictor.manual_initialization(trainer.network, trainer.plans_manager, trainer.configuration_manager, None,
                                    trainer.dataset_json, TRAINER, (0, 1))
    predictor.used_folds, predictor.checkpoint_name = [3], "checkpoint_final.pth"
    assert predictor.diagnosis_settings() == settings
