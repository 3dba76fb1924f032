"""The short budget of the *_Short trainers, read from the environment."""

import pytest

from nnunet_ext.cli.nnunet_commands import nnunet_environment
from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.trainers.short_budget import budget_from_environment


def test_defaults_are_few_epochs_of_few_iterations_and_nnunets_checkpoint_interval():
    assert budget_from_environment({}) == {"num_epochs": 5, "num_iterations_per_epoch": 10,
                                           "num_val_iterations_per_epoch": 5, "save_every": 50}


def test_environment_sets_the_budget():
    budget = budget_from_environment({"NNUNET_EXT_EPOCHS": "2", "NNUNET_EXT_ITERATIONS": "3",
                                      "NNUNET_EXT_VAL_ITERATIONS": "1", "NNUNET_EXT_SAVE_EVERY": "1"})
    assert budget == {"num_epochs": 2, "num_iterations_per_epoch": 3, "num_val_iterations_per_epoch": 1,
                      "save_every": 1}


@pytest.mark.parametrize("variable", ["NNUNET_EXT_EPOCHS", "NNUNET_EXT_SAVE_EVERY"])
@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", ""])
def test_a_value_that_is_not_a_positive_integer_is_named_in_the_error(variable, value):
    with pytest.raises(UnsupportedConfigurationError, match=f"{variable}={value!r} must be a positive"):
        budget_from_environment({variable: value})


def test_the_commands_environment_carries_every_budget_key(tmp_path):
    environment = nnunet_environment(tmp_path, base={}, budget={"epochs": 4, "iterations": 2, "val_iterations": 1,
                                                                "save_every": 2})
    assert budget_from_environment(environment) == {"num_epochs": 4, "num_iterations_per_epoch": 2,
                                                    "num_val_iterations_per_epoch": 1, "save_every": 2}
