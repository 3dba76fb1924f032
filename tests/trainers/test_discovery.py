"""nnU-Net's own trainer lookup finds every trainer we ship, in fresh interpreters, with no configuration."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from nnunet_ext import lookup_hook
from nnunet_ext.trainers import __all__ as SHIPPED_TRAINERS

LOOKUP_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import nnunetv2
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
    builtin_folder = os.path.join(nnunetv2.__path__[0], "training", "nnUNetTrainer")
    found = {}
    for name in sys.argv[1:]:
        builtin = recursive_find_python_class(builtin_folder, name, "nnunetv2.training.nnUNetTrainer")
        trainer = recursive_find_trainer_class_by_name(name)
        found[name] = {"module": trainer.__module__, "shadowed_by_nnunet": builtin is not None}
    print("RESULT" + json.dumps({"found": found, "variable": os.environ.get("nnUNet_extTrainer", "")}))
""")


def run_lookup(environment, names=SHIPPED_TRAINERS):
    completed = subprocess.run([sys.executable, "-c", LOOKUP_SCRIPT, *names], env=environment,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result_line = [line for line in completed.stdout.splitlines() if line.startswith("RESULT")][-1]
    return json.loads(result_line[len("RESULT"):]), completed.stderr


def environment_without_lookup_variable():
    return {k: v for k, v in os.environ.items() if k != "nnUNet_extTrainer"}


def test_every_shipped_trainer_resolves_with_zero_configuration():
    result, _ = run_lookup(environment_without_lookup_variable())
    for name in SHIPPED_TRAINERS:
        assert result["found"][name]["module"].startswith("nnunet_ext.trainers."), name
        assert not result["found"][name]["shadowed_by_nnunet"], f"nnU-Net ships a trainer named {name}"
    assert result["variable"] == lookup_hook.TRAINER_LOOKUP_FOLDER


def test_the_users_folders_are_kept_first(tmp_path):
    users_folder = tmp_path / "my_trainers"
    users_folder.mkdir()
    environment = dict(environment_without_lookup_variable(), nnUNet_extTrainer=str(users_folder))
    result, _ = run_lookup(environment, names=["DivAttentionTrainer"])
    assert result["variable"].split(os.pathsep) == [str(users_folder), lookup_hook.TRAINER_LOOKUP_FOLDER]


def test_a_missing_folder_is_reported_and_our_trainers_still_resolve(tmp_path):
    missing = tmp_path / "does_not_exist"
    environment = dict(environment_without_lookup_variable(), nnUNet_extTrainer=str(missing))
    result, stderr = run_lookup(environment, names=["DivAttentionTrainer"])
    assert f"lists '{missing}', which is not an existing folder" in stderr
    assert result["found"]["DivAttentionTrainer"]["module"] == "nnunet_ext.trainers.div_attention_trainer"


def test_the_explicit_export_documented_in_the_readme_works(tmp_path):
    environment = dict(environment_without_lookup_variable(), nnUNet_extTrainer=lookup_hook.TRAINER_LOOKUP_FOLDER)
    result, stderr = run_lookup(environment, names=["DivAttentionWBCEDiceTrainer"])
    assert result["variable"] == lookup_hook.TRAINER_LOOKUP_FOLDER  # registered once, not twice
    assert "not an existing folder" not in stderr


def test_register_is_idempotent_and_keeps_user_entries():
    environ, messages = {"nnUNet_extTrainer": os.pathsep.join(["/a", "/b"])}, []

    class Collect:
        write = messages.append

    first = lookup_hook.register(environ, Collect)
    second = lookup_hook.register(environ, Collect)
    assert first == second == os.pathsep.join(["/a", "/b", lookup_hook.TRAINER_LOOKUP_FOLDER])
    assert sum("'/a'" in message for message in messages) == 2  # warned at each start, changed nothing


@pytest.mark.parametrize("module", ["nnunet_ext", "nnunet_ext.lookup_hook"])
def test_the_start_up_hook_imports_nothing_heavy(module):
    code = f"import sys; import {module}; print(sorted(m for m in ('torch', 'numpy', 'nnunetv2') if m in sys.modules))"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert completed.stdout.strip() == "[]"
