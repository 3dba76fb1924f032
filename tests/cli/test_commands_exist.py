"""Every ``python -m nnunet_ext...`` in the scripts and the docs names a module that runs, and every console script
that setup.py installs points at a function that exists (a module that moved breaks neither import nor test
otherwise: the demo's own script is not run by the test suite)."""

import importlib
import importlib.util
import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [*sorted((REPO_ROOT / "scripts").glob("*.sh")), REPO_ROOT / "README.md",
             *sorted((REPO_ROOT / "docs").glob("*.md"))]
MODULE_COMMAND = re.compile(r"python -m (nnunet_ext[\w.]*)")


def module_commands():
    return sorted({(path.relative_to(REPO_ROOT).as_posix(), module) for path in DOCUMENTS
                   for module in MODULE_COMMAND.findall(path.read_text())})


def test_the_demo_script_is_among_the_checked_commands():
    assert ("scripts/demo.sh", "nnunet_ext.cli.demo") in module_commands()


@pytest.mark.parametrize("document, module", module_commands())
def test_python_dash_m_commands_name_runnable_modules(document, module):
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, f"{document}: python -m {module}: no such module"
    source = Path(spec.origin).read_text()
    assert 'if __name__ == "__main__":' in source, f"{document}: python -m {module} would do nothing"


def test_every_console_script_points_at_a_function():
    scripts = [e for e in entry_points(group="console_scripts") if e.value.startswith("nnunet_ext.")]
    assert len(scripts) >= 9
    for script in scripts:
        module_name, function_name = script.value.split(":")
        assert callable(getattr(importlib.import_module(module_name), function_name)), script.name
