"""Errors that tell a user what is wrong with their input, where, and how to fix it.

Every error of ours that a user can cause derives from :class:`UserInputError`; our commands print it as one line
(``nnunet_ext.cli.user_errors``) instead of a traceback. Its message names what is wrong, the file and the case
where it is, and the fix, so that it can be acted on without reading code.
"""

from typing import Optional, Union
from os import PathLike


class UserInputError(Exception):
    """A mistake in a user's files, cases or settings, found before work is spent on it.

    ``UserInputError(problem, file=..., case=..., fix=...)``: the message is ``problem`` followed by the file, the
    case and the fix that are given (a plain ``UserInputError(message)`` is the message alone).
    """

    def __init__(self, problem: str, *, file: Optional[Union[str, PathLike]] = None, case: Optional[str] = None,
                 fix: Optional[str] = None):
        self.problem, self.file, self.case, self.fix = problem, file, case, fix
        parts = [problem.rstrip()]
        if file is not None:
            parts.append(f"File: {file}.")
        if case is not None:
            parts.append(f"Case: {case}.")
        if fix is not None:
            parts.append(f"Fix: {fix.rstrip()}")
        super().__init__(" ".join(parts))


class UnsupportedConfigurationError(UserInputError, ValueError):
    """The plans' configuration cannot be built by the requested trainer."""


class IncompatibleCheckpointError(UserInputError, RuntimeError):
    """A checkpoint or state dict does not belong to the network or trainer it is loaded into."""


class InputFilesError(UserInputError, ValueError):
    """Input images, labels or folders that do not match the dataset (channels, names, values)."""


class OutputFileConflictError(UserInputError, FileExistsError):
    """A file we would write exists and was not written by us (or was changed since): it is left alone."""
