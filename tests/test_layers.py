"""The package's layers (``pyproject.toml``, ``[tool.importlinter]``): import-linter finds no import that points up,
and it does find one when a module of ``architectures/`` imports ``trainers/`` or nnU-Net."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


# import-linter puts the working directory first on sys.path, but nnunet_ext is already imported from site-packages
# at interpreter start (nnunet_ext_lookup.pth imports nnunet_ext.lookup_hook): forget it, so that the sources under
# the working directory are the ones analysed.
LINT_SOURCES_IN_WORKING_DIRECTORY = (
    "import sys\n"
    "for name in [m for m in sys.modules if m.split('.')[0] == 'nnunet_ext']:\n"
    "    del sys.modules[name]\n"
    "from importlinter.cli import lint_imports_command\n"
    "lint_imports_command(['--no-cache', '--no-logo', 'pyproject.toml'])\n")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter's ``lint-imports`` on the sources under ``root`` with the contracts of its ``pyproject.toml``."""
    return subprocess.run([sys.executable, "-c", LINT_SOURCES_IN_WORKING_DIRECTORY], cwd=root,
                          capture_output=True, text=True, timeout=300)


def test_the_package_keeps_its_layers():
    completed = lint_imports(REPO_ROOT)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    assert "3 kept, 0 broken" in completed.stdout


@pytest.mark.parametrize("added_import, broken_contract", [
    ("import nnunet_ext.trainers.registry", "reliability > trainers > datasets"),
    ("import nnunetv2.utilities.get_network_from_plans", "no nnU-Net"),
])
def test_an_import_that_points_up_breaks_the_contract(tmp_path, added_import, broken_contract):
    shutil.copytree(REPO_ROOT / "nnunet_ext", tmp_path / "nnunet_ext",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    module = tmp_path / "nnunet_ext" / "architectures" / "lnet.py"
    module.write_text(module.read_text() + f"\n{added_import}  # an arrow that points up\n")
    completed = lint_imports(tmp_path)
    assert completed.returncode != 0
    assert "nnunet_ext.architectures.lnet" in completed.stdout and "BROKEN" in completed.stdout
    assert broken_contract in completed.stdout, completed.stdout[-3000:]
