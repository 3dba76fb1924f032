"""``nnUNetv2_train ... -tr <diagnosis trainer> -pretrained_weights <segmentation checkpoint>`` stops at
``initialize()`` with the command that writes a file nnU-Net accepts (instead of nnU-Net's AssertionError about one
missing key); a file that holds the branch passes."""

import sys
from types import SimpleNamespace

import pytest
import torch

from nnunet_ext.core.errors import IncompatibleCheckpointError
from nnunet_ext.trainers.diagnosis.pretrained_weights_check import (PretrainedWeightsCheck,
                                                                    pretrained_weights_argument)


class Base:
    def initialize(self):
        self.initialized = True


class SiANDiagnosisTrainer(PretrainedWeightsCheck, Base):
    configuration_name = "2d"
    plans_manager = SimpleNamespace(dataset_name="Dataset504_X")


@pytest.mark.parametrize("argv, expected", [
    (["504", "2d", "0", "-pretrained_weights", "w.pth"], "w.pth"), (["-pretrained_weights=w.pth"], "w.pth"),
    (["504", "2d", "0", "--c"], None)])
def test_the_file_is_read_from_nnunets_command_line(argv, expected):
    assert pretrained_weights_argument(argv) == expected


def test_a_segmentation_checkpoint_is_refused_with_the_init_command(tmp_path, monkeypatch):
    weights = tmp_path / "checkpoint_final.pth"
    torch.save({"trainer_name": "nnUNetTrainer", "network_weights": {"encoder.w": torch.zeros(1)}}, weights)
    monkeypatch.setattr(sys, "argv", ["nnUNetv2_train", "504", "2d", "0", "-pretrained_weights", str(weights)])
    with pytest.raises(IncompatibleCheckpointError, match="holds the weights of nnUNetTrainer's network, without the "
                                                          "diagnosis branch.*nnunet_ext_diagnosis_init -d "
                                                          "Dataset504_X -c 2d -tr SiANDiagnosisTrainer -i"):
        SiANDiagnosisTrainer().initialize()


def test_a_file_with_the_branch_passes(tmp_path, monkeypatch):
    weights = tmp_path / "init.pth"
    torch.save({"network_weights": {"encoder.w": torch.zeros(1), "diagnosis.w": torch.zeros(1)}}, weights)
    monkeypatch.setattr(sys, "argv", ["nnUNetv2_train", "504", "2d", "0", "-pretrained_weights", str(weights)])
    trainer = SiANDiagnosisTrainer()
    trainer.initialize()
    assert trainer.initialized
