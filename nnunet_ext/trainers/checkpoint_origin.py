"""Refuse, with a clear message, to continue from a checkpoint that another trainer wrote; name the checkpoint that
was loaded in the training log.

nnU-Net keeps one results folder per trainer, but a checkpoint can be copied, renamed or given by path. Loading the
weights of another trainer would fail deep inside ``load_state_dict`` or, worse, succeed for a network of the same
shape and silently mix two training recipes. nnU-Net's own loader writes nothing to the log, and ``--c`` silently
falls back from ``checkpoint_latest.pth`` to the older ``checkpoint_best.pth``: the log line says which file and epoch
a continued training started from.
"""

from typing import Union

import torch

from nnunet_ext.core.errors import IncompatibleCheckpointError


class CheckpointOriginCheck:
    """Mixin for nnU-Net trainers: ``load_checkpoint`` (``--c``, ``--val``) checks ``checkpoint['trainer_name']`` and
    logs the file and the epoch it holds."""

    def load_checkpoint(self, filename_or_checkpoint: Union[dict, str]) -> None:
        if isinstance(filename_or_checkpoint, str):
            source = filename_or_checkpoint
            checkpoint = torch.load(filename_or_checkpoint, map_location="cpu", weights_only=False)
        else:
            source, checkpoint = "the given checkpoint", filename_or_checkpoint
        written_by = checkpoint.get("trainer_name")
        if written_by != self.__class__.__name__:
            raise IncompatibleCheckpointError(
                f"{source} was written by trainer '{written_by}', not by '{self.__class__.__name__}': its network "
                f"and training recipe differ. Continue or validate it with -tr {written_by}, or train "
                f"{self.__class__.__name__} from scratch (without --c). To initialise from its weights instead, "
                f"use -pretrained_weights.")
        super().load_checkpoint(filename_or_checkpoint)
        self.print_to_log_file(f"Loaded the checkpoint {source} (next epoch: {checkpoint.get('current_epoch')})")
