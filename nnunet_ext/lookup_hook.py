"""Make nnU-Net's trainer lookup find our trainers without configuration.

nnU-Net (>= 2.8.0) searches the folders listed in the environment variable ``nnUNet_extTrainer`` (separated by
``os.pathsep``) after its own trainer folder. The package installs ``nnunet_ext_lookup.pth`` into site-packages;
Python's ``site`` module runs its single line at interpreter start, which calls :func:`register`. It appends
:data:`TRAINER_LOOKUP_FOLDER` to the variable, keeping whatever the user put there, and imports nothing but ``os``
and ``sys``.

The folder holds a single re-export module and nothing else: nnU-Net imports every module of a listed folder under
its bare file name, so pointing it at the package itself would import our modules a second time under top-level
names (classes that cannot be pickled by spawn workers). The re-export module makes the classes resolve to
``nnunet_ext.trainers.*``.

Explicit alternative (for example with an editable install, where the ``.pth`` file is not installed)::

    export nnUNet_extTrainer="$(python -c 'import nnunet_ext.lookup_hook as h; print(h.TRAINER_LOOKUP_FOLDER)')"
"""

import os
import sys

ENVIRONMENT_VARIABLE = "nnUNet_extTrainer"
TRAINER_LOOKUP_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "trainer_lookup")


def missing_folders(value: str) -> list:
    """Entries of an ``nnUNet_extTrainer`` value that are not existing folders (nnU-Net skips them silently)."""
    return [entry for entry in value.split(os.pathsep) if entry.strip() and not os.path.isdir(entry)]


def register(environ=None, stderr=None) -> str:
    """Append our trainer folder to ``nnUNet_extTrainer`` in ``environ`` (default ``os.environ``).

    Idempotent; the user's entries stay first and untouched. Warns on ``stderr`` about listed folders that do not
    exist, because nnU-Net's lookup skips them without a word and then reports only that a trainer was not found.
    Returns the new value.
    """
    environ = os.environ if environ is None else environ
    stderr = sys.stderr if stderr is None else stderr
    current = environ.get(ENVIRONMENT_VARIABLE, "")
    entries = [entry for entry in current.split(os.pathsep) if entry.strip()]
    for entry in missing_folders(current):
        stderr.write(
            f"nnunet_ext: the environment variable {ENVIRONMENT_VARIABLE} lists '{entry}', which is not an existing "
            f"folder; nnU-Net skips it silently, so trainers kept there will not be found. Fix the path or remove it "
            f"from {ENVIRONMENT_VARIABLE}.\n"
        )
    if TRAINER_LOOKUP_FOLDER not in entries:
        entries.append(TRAINER_LOOKUP_FOLDER)
    environ[ENVIRONMENT_VARIABLE] = os.pathsep.join(entries)
    return environ[ENVIRONMENT_VARIABLE]
