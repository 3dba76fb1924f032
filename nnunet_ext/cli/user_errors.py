"""How our commands report a user's mistake: one line on stderr (``<command>: error: <message>``) and exit status 2,
no traceback. ``--debug`` on the command line, or ``NNUNET_EXT_DEBUG=1`` in the environment, shows the traceback
instead (the error is raised as is).

Every error a user can cause is a :class:`~nnunet_ext.core.errors.UserInputError` (its message names the file, the
case and the fix); anything else is a bug of ours or nnU-Net's and keeps its traceback.
"""

import functools
import os
import sys
from typing import Callable, List, Optional, Sequence, Tuple

from nnunet_ext.core.errors import UserInputError

DEBUG_FLAG = "--debug"
DEBUG_VARIABLE = "NNUNET_EXT_DEBUG"
EXIT_USER_ERROR = 2


def without_debug_flag(argv: Sequence[str]) -> Tuple[List[str], bool]:
    """``argv`` without ``--debug``, and whether it was there."""
    argv = list(argv)
    return [a for a in argv if a != DEBUG_FLAG], DEBUG_FLAG in argv


def debugging(flag_given: bool = False) -> bool:
    return flag_given or os.environ.get(DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def reports_user_errors(program: str) -> Callable:
    """Decorator for a command's ``main(argv=None)``: ``--debug`` is taken out of ``argv`` (``sys.argv[1:]`` when
    None) before ``main`` sees it; a :class:`UserInputError` is printed as ``<program>: error: <message>`` and the
    command exits with status 2, unless debugging."""

    def decorate(main: Callable) -> Callable:
        @functools.wraps(main)
        def wrapper(argv: Optional[Sequence[str]] = None):
            argv, flag_given = without_debug_flag(sys.argv[1:] if argv is None else argv)
            try:
                return main(argv)
            except UserInputError as error:
                if debugging(flag_given):
                    raise
                print(f"{program}: error: {error}", file=sys.stderr, flush=True)
                print(f"({program}: {DEBUG_FLAG} or {DEBUG_VARIABLE}=1 shows the traceback)", file=sys.stderr,
                      flush=True)
                raise SystemExit(EXIT_USER_ERROR) from None

        return wrapper

    return decorate
