"""Mixin: refuse, before any training, a ``-pretrained_weights`` file that cannot fill a diagnosis network.

nnU-Net 2.8 loads ``-pretrained_weights`` after ``initialize()`` and asserts that the file holds every parameter of
the network; a segmentation (or Div-attention, L-Net) checkpoint has none of the branch's ``diagnosis.*``
parameters, so the run stops on an ``AssertionError`` about one key. ``nnunet_ext_diagnosis_init`` writes a file that
nnU-Net accepts (the segmentation part filled by name, the branch fresh); this check says so. nnU-Net hands the file
to no trainer hook, so it is read from the command line of ``nnUNetv2_train`` (``-pretrained_weights <file>``).
"""

import sys
from typing import Optional, Sequence

import torch

from nnunet_ext.core.errors import IncompatibleCheckpointError

FLAG = "-pretrained_weights"
BRANCH_PREFIX = "diagnosis."


def pretrained_weights_argument(argv: Sequence[str]) -> Optional[str]:
    """The file of ``-pretrained_weights <file>`` (or ``-pretrained_weights=<file>``) in ``argv``, else None."""
    argv = list(argv)
    for index, argument in enumerate(argv):
        if argument == FLAG and index + 1 < len(argv):
            return argv[index + 1]
        if argument.startswith(FLAG + "="):
            return argument[len(FLAG) + 1:]
    return None


class PretrainedWeightsCheck:
    """Place before an nnU-Net trainer class in the bases (after ``initialize`` built the network)."""

    def initialize(self):
        super().initialize()
        weights_file = pretrained_weights_argument(sys.argv[1:])
        if weights_file is None:
            return
        checkpoint = torch.load(weights_file, map_location="cpu", weights_only=False)
        weights = checkpoint.get("network_weights", {}) if isinstance(checkpoint, dict) else {}
        if not any(key.startswith(BRANCH_PREFIX) for key in weights):
            written_by = checkpoint.get("trainer_name", "another trainer") if isinstance(checkpoint, dict) else "?"
            configuration = self.configuration_name
            raise IncompatibleCheckpointError(
                f"-pretrained_weights {weights_file} holds the weights of {written_by}'s network, without the "
                f"diagnosis branch of {self.__class__.__name__}; nnU-Net needs every parameter of the network in "
                f"that file.", file=weights_file,
                fix=f"nnunet_ext_diagnosis_init -d {self.plans_manager.dataset_name} -c {configuration} -tr "
                    f"{self.__class__.__name__} -i {weights_file} -o init.pth, then -pretrained_weights init.pth "
                    f"(the segmentation part filled from your file, the branch fresh)")
