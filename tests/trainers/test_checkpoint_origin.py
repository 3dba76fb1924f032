"""Loading a checkpoint that another trainer wrote stops with a message naming the file, the trainer and the fix; a
checkpoint of the trainer's own is loaded and named in the training log."""

import pytest
import torch

from nnunet_ext.core.errors import IncompatibleCheckpointError
from nnunet_ext.trainers.checkpoint_origin import CheckpointOriginCheck


class RecordingTrainer:
    """Stands in for nnUNetTrainer.load_checkpoint, which would need a preprocessed dataset to construct."""

    def load_checkpoint(self, filename_or_checkpoint):
        self.loaded = filename_or_checkpoint

    def print_to_log_file(self, *args):
        self.log = getattr(self, "log", []) + [" ".join(map(str, args))]


class DivAttentionTrainer(CheckpointOriginCheck, RecordingTrainer):
    pass


def test_checkpoint_of_another_trainer_is_refused(tmp_path):
    path = tmp_path / "checkpoint_final.pth"
    torch.save({"trainer_name": "nnUNetTrainer", "network_weights": {}}, path)
    trainer = DivAttentionTrainer()
    with pytest.raises(IncompatibleCheckpointError) as error:
        trainer.load_checkpoint(str(path))
    message = str(error.value)
    assert str(path) in message and "'nnUNetTrainer'" in message and "-tr nnUNetTrainer" in message
    assert not hasattr(trainer, "loaded")


def test_own_checkpoint_is_handed_to_nnunet_and_named_in_the_log(tmp_path):
    path = tmp_path / "checkpoint_final.pth"
    torch.save({"trainer_name": "DivAttentionTrainer", "network_weights": {}, "current_epoch": 3}, path)
    trainer = DivAttentionTrainer()
    trainer.load_checkpoint(str(path))
    assert trainer.loaded == str(path)
    assert trainer.log == [f"Loaded the checkpoint {path} (next epoch: 3)"]
