"""Shared handling of an nnU-Net v2 raw dataset folder for the dataset builders.

A builder writing ``raw_root/Dataset{id:03d}_{name}``

1. validates the id and name with ``validate_dataset_id_and_name``;
2. checks the target with ``check_output_folder`` (no silent replacement, no second folder with the same id);
3. writes every file, ``dataset.json`` with ``write_dataset_json``, inside ``staged_dataset_folder``: a hidden
   staging folder in ``raw_root`` that is renamed to the target only once everything is written, so a failed run
   never leaves a half-written dataset behind;

Its command line lives in ``nnunet_ext.cli`` (``cli/dataset_command_line.py``).
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import re
import shutil
import tempfile
from typing import Iterator

DATASET_NAME_PATTERN = r"[A-Za-z0-9_\-]+"


def validate_dataset_id_and_name(dataset_id: int, name: str) -> None:
    """Raise ValueError unless ``dataset_id`` is in 1..999 and ``name`` holds only letters, digits, '_' and '-'."""
    if not 1 <= dataset_id <= 999:
        raise ValueError(f"dataset_id must be in 1..999 (nnU-Net uses three digits), got {dataset_id}")
    if not re.fullmatch(DATASET_NAME_PATTERN, name):
        raise ValueError(f"name must contain only letters, digits, '_' and '-', got {name!r}")


def check_output_folder(raw_root: pathlib.Path, folder_name: str, dataset_id: int, overwrite: bool) -> None:
    """Refuse to replace an existing dataset unless ``overwrite``; always refuse a different name with the same id.

    Raises:
        FileExistsError: ``raw_root/folder_name`` exists and ``overwrite`` is False, or another
            ``Dataset{dataset_id:03d}_*`` folder exists in ``raw_root``.
    """
    raw_root = pathlib.Path(raw_root)
    target = raw_root / folder_name
    if target.exists() and not overwrite:
        raise FileExistsError(f"dataset folder {target} already exists; pass overwrite=True (--overwrite) to "
                              f"replace it or delete it yourself")
    same_id = [p for p in raw_root.glob(f"Dataset{dataset_id:03d}_*") if p.name != folder_name]
    if same_id:
        raise FileExistsError(f"{same_id[0]} already uses dataset id {dataset_id}; nnU-Net needs unique ids, "
                              f"choose another id or remove that folder")


def publish_folder(staging: pathlib.Path, target: pathlib.Path) -> None:
    """Move the fully written ``staging`` folder to ``target``, replacing an existing ``target``."""
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)


@contextlib.contextmanager
def staged_dataset_folder(raw_root: pathlib.Path, folder_name: str) -> Iterator[pathlib.Path]:
    """Yield an empty staging folder in ``raw_root``; publish it as ``raw_root/folder_name`` when the block succeeds.

    The staging folder is a hidden ``.{folder_name}.*`` folder in ``raw_root`` (same file system, so the final
    rename is atomic). On success an existing ``raw_root/folder_name`` is replaced; on an exception the staging
    folder is removed, the target is left untouched and the exception propagates.
    """
    raw_root = pathlib.Path(raw_root)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{folder_name}.", dir=raw_root))
    try:
        yield staging
        publish_folder(staging, raw_root / folder_name)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def write_dataset_json(dataset_folder: pathlib.Path, content: dict) -> None:
    """Write ``content`` as ``dataset_folder/dataset.json`` (indented by 2, ending with a newline)."""
    (pathlib.Path(dataset_folder) / "dataset.json").write_text(json.dumps(content, indent=2) + "\n")
