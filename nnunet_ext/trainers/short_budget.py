"""Short training budgets for demos, tests and CPU runs: few epochs of few iterations.

nnU-Net's default is 1000 epochs of 250 iterations. The ``*_Short`` trainers keep everything else of the trainer
they shorten and read their budget from the environment (so spawned workers and ``nnUNetv2_train`` see it too):

* ``NNUNET_EXT_EPOCHS`` (default 5)
* ``NNUNET_EXT_ITERATIONS`` training iterations per epoch (default 10)
* ``NNUNET_EXT_VAL_ITERATIONS`` validation iterations per epoch (default 5)
* ``NNUNET_EXT_SAVE_EVERY`` epochs between two ``checkpoint_latest.pth`` (default 50, nnU-Net's own ``save_every``)

nnU-Net writes ``checkpoint_latest.pth`` only after every ``save_every``-th epoch (and never after the last), so
with the default a short run has no latest checkpoint and ``nnUNetv2_train --c`` continues from
``checkpoint_best.pth``, an older epoch. Set ``NNUNET_EXT_SAVE_EVERY=1`` for a short run that may be interrupted
and continued. The default stays nnU-Net's: a checkpoint per epoch costs a write of the whole model and optimiser
state, which short runs that are never continued do not need.
"""

import os

import torch

from nnunet_ext.core.errors import UnsupportedConfigurationError

BUDGET_VARIABLES = {"num_epochs": ("NNUNET_EXT_EPOCHS", 5),
                    "num_iterations_per_epoch": ("NNUNET_EXT_ITERATIONS", 10),
                    "num_val_iterations_per_epoch": ("NNUNET_EXT_VAL_ITERATIONS", 5),
                    "save_every": ("NNUNET_EXT_SAVE_EVERY", 50)}


def budget_from_environment(environ=None) -> dict:
    """``{trainer attribute: positive int}`` from the environment; a clear error for anything else."""
    environ = os.environ if environ is None else environ
    budget = {}
    for attribute, (variable, default) in BUDGET_VARIABLES.items():
        text = environ.get(variable, str(default))
        if not text.strip().isdigit() or int(text) < 1:
            raise UnsupportedConfigurationError(
                f"The environment variable {variable}={text!r} must be a positive integer (it sets the short "
                f"trainers' {attribute}); unset it for the default {default}.")
        budget[attribute] = int(text)
    return budget


class ShortBudget:
    """Mixin placed before an nnU-Net trainer class: sets the budget of :func:`budget_from_environment`."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        for attribute, value in budget_from_environment().items():
            setattr(self, attribute, value)
