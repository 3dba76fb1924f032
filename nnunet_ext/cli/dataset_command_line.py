"""What the dataset builders' command lines share: the ``--raw`` argument, and expected errors reported as a short
message with exit status 2 instead of a traceback."""

import argparse
import pathlib
from typing import Callable

EXPECTED_ERRORS = (FileNotFoundError, FileExistsError, ValueError)


def command_line_parser(description: str) -> argparse.ArgumentParser:
    """Argument parser with ``description`` and the required ``--raw`` (the nnU-Net raw folder) argument."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--raw", required=True, help="nnU-Net raw folder (nnUNet_raw) to write into")
    return parser


def run_command_line(parser: argparse.ArgumentParser, create: Callable[..., pathlib.Path], *args, **kwargs) -> None:
    """Call ``create(*args, **kwargs)`` and print the folder it returns.

    An expected error (missing input, existing output, invalid argument) is reported through ``parser.error``:
    usage and a one-line message on stderr, exit status 2, no traceback.
    """
    try:
        folder = create(*args, **kwargs)
    except EXPECTED_ERRORS as error:
        parser.error(str(error))
    print(folder)
