"""Files we write into a user's folder, and the rule that protects theirs: we replace or remove a file only if we
wrote it and it is unchanged since.

Every folder we write such files into gets a manifest, ``.nnunet_ext_written.json``: file name -> SHA-256 of the
content we wrote. Before a file of ours is written or removed, :func:`check_may_replace` compares the file on disk
with the manifest: a file that is not in it (the user's own ``diagnosis_predictions.csv``) or whose content changed
since (the user edited ours) is left alone and an :class:`~nnunet_ext.core.errors.OutputFileConflictError` names it
and the way out (another output folder, moving the file, or the command's overwrite flag). The manifest is
updated under an exclusive ``fcntl`` lock, so parallel parts of one prediction may share a folder.
"""

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, Union

from nnunet_ext.core.errors import OutputFileConflictError

MANIFEST_NAME = ".nnunet_ext_written.json"
MANIFEST_LOCK_NAME = ".nnunet_ext_written.lock"
PathLike = Union[str, Path]


def content_digest(path: PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _manifest_lock(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / MANIFEST_LOCK_NAME, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def read_manifest(folder: PathLike) -> Dict[str, str]:
    path = Path(folder) / MANIFEST_NAME
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in content.items()} if isinstance(content, dict) else {}


def _write_manifest(folder: Path, manifest: Dict[str, str]) -> None:
    temporary = folder / f".{MANIFEST_NAME}.{os.getpid()}.tmp"
    temporary.write_text(json.dumps(dict(sorted(manifest.items())), indent=1))
    os.replace(temporary, folder / MANIFEST_NAME)


def is_ours(path: PathLike) -> bool:
    """True if ``path`` does not exist, or holds exactly what we last wrote there."""
    path = Path(path)
    if not path.exists():
        return True
    return path.is_file() and read_manifest(path.parent).get(path.name) == content_digest(path)


def check_may_replace(path: PathLike, overwrite_flag: str = "", allow: bool = False) -> None:
    """Raise :class:`OutputFileConflictError` unless ``path`` is absent, ours and unchanged, or ``allow``."""
    path = Path(path)
    if allow or is_ours(path):
        return
    changed = path.name in read_manifest(path.parent)
    problem = (f"{path.name} was written by nnunet_ext but has been changed since" if changed else
               f"{path.name} exists and was not written by nnunet_ext")
    ways = ["choose another output folder", f"move {path.name} away"]
    if overwrite_flag:
        ways.append(f"pass {overwrite_flag} to replace it")
    raise OutputFileConflictError(f"{problem}, so it is left as it is.", file=path, fix=", or ".join(ways))


def record_written(path: PathLike) -> Path:
    """Note in the folder's manifest that we wrote ``path`` as it is now."""
    path = Path(path)
    with _manifest_lock(path.parent):
        manifest = read_manifest(path.parent)
        manifest[path.name] = content_digest(path)
        _write_manifest(path.parent, manifest)
    return path


def remove_ours(path: PathLike, overwrite_flag: str = "", allow: bool = False) -> None:
    """Remove ``path`` (after :func:`check_may_replace`) and its manifest entry; nothing if it does not exist."""
    path = Path(path)
    if not path.exists():
        return
    check_may_replace(path, overwrite_flag, allow)
    path.unlink()
    with _manifest_lock(path.parent):
        manifest = read_manifest(path.parent)
        if manifest.pop(path.name, None) is not None:
            _write_manifest(path.parent, manifest)
