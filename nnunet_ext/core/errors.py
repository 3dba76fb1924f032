"""Errors that tell a user what is wrong with their input, where, and how to fix it."""


class UnsupportedConfigurationError(ValueError):
    """The plans' configuration cannot be built by the requested trainer."""


class IncompatibleCheckpointError(RuntimeError):
    """A checkpoint or state dict does not belong to the network or trainer it is loaded into."""
