"""nnU-Net's own trainer lookup finds every registered trainer, in fresh interpreters, with no configuration."""

import json
import os
import subprocess
import sys
import sysconfig
import textwrap

import pytest

from nnunet_ext import lookup_hook
from nnunet_ext.trainers.registry import list_trainers

SHIPPED_TRAINERS = list_trainers()

LOOKUP_SCRIPT = textwrap.dedent("""
    import json, os, sys
    hook_ran = "nnunet_ext.lookup_hook" in sys.modules  # imported at start by nnunet_ext_lookup.pth
    import nnunetv2
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
    builtin_folder = os.path.join(nnunetv2.__path__[0], "training", "nnUNetTrainer")
    found = {}
    for name in sys.argv[1:]:
        builtin = recursive_find_python_class(builtin_folder, name, "nnunetv2.training.nnUNetTrainer")
        trainer = recursive_find_trainer_class_by_name(name)
        found[name] = {"module": trainer.__module__, "qualname": trainer.__qualname__,
                       "shadowed_by_nnunet": builtin is not None}
    print("RESULT" + json.dumps({"found": found, "variable": os.environ.get("nnUNet_extTrainer", ""),
                                 "hook_ran": hook_ran}))
""")


VARIABLE_SCRIPT = "import os, sys; sys.stdout.write(os.environ.get('nnUNet_extTrainer', ''))"


def run_lookup(environment, names=SHIPPED_TRAINERS, interpreter_options=()):
    completed = subprocess.run([sys.executable, *interpreter_options, "-c", LOOKUP_SCRIPT, *names],
                               env=environment, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result_line = [line for line in completed.stdout.splitlines() if line.startswith("RESULT")][-1]
    return json.loads(result_line[len("RESULT"):]), completed.stderr


def variable_at_start(environment):
    """``nnUNet_extTrainer`` as a fresh interpreter sees it after the start-up hook ran, and what it printed."""
    completed = subprocess.run([sys.executable, "-c", VARIABLE_SCRIPT], env=environment, capture_output=True,
                               text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout, completed.stderr


def environment_without_lookup_variable():
    return {k: v for k, v in os.environ.items() if k != "nnUNet_extTrainer"}


def test_every_registered_trainer_resolves_with_zero_configuration():
    result, _ = run_lookup(environment_without_lookup_variable())
    assert len(SHIPPED_TRAINERS) > 40
    for name in SHIPPED_TRAINERS:
        assert result["found"][name]["module"].startswith("nnunet_ext.trainers."), name
        assert result["found"][name]["qualname"] == name  # what pickle (spawn workers) looks the class up by
        assert not result["found"][name]["shadowed_by_nnunet"], f"nnU-Net ships a trainer named {name}"
    assert result["hook_ran"] and result["variable"] == lookup_hook.TRAINER_LOOKUP_FOLDER


def test_the_users_folders_are_kept_first(tmp_path):
    users_folder = tmp_path / "my_trainers"
    users_folder.mkdir()
    environment = dict(environment_without_lookup_variable(), nnUNet_extTrainer=str(users_folder))
    variable, _ = variable_at_start(environment)
    assert variable.split(os.pathsep) == [str(users_folder), lookup_hook.TRAINER_LOOKUP_FOLDER]


def test_a_missing_folder_is_reported_and_ours_is_still_listed(tmp_path):
    missing = tmp_path / "does_not_exist"
    environment = dict(environment_without_lookup_variable(), nnUNet_extTrainer=str(missing))
    variable, stderr = variable_at_start(environment)
    assert f"lists '{missing}', which is not an existing folder" in stderr
    assert variable.split(os.pathsep) == [str(missing), lookup_hook.TRAINER_LOOKUP_FOLDER]


def test_the_explicit_export_documented_in_the_readme_works_where_pth_files_are_not_processed():
    """``python -S`` skips the site module and with it our .pth hook; the README's export must then suffice."""
    environment = dict(environment_without_lookup_variable(), nnUNet_extTrainer=lookup_hook.TRAINER_LOOKUP_FOLDER,
                       PYTHONPATH=sysconfig.get_paths()["purelib"])
    result, stderr = run_lookup(environment, names=["DivAttentionWBCEDiceTrainer", "SiANDiagnosisTrainer_Short"],
                                interpreter_options=["-S"])
    assert not result["hook_ran"] and result["variable"] == lookup_hook.TRAINER_LOOKUP_FOLDER
    assert result["found"]["DivAttentionWBCEDiceTrainer"]["module"] == \
        "nnunet_ext.trainers.div_attention_wbce_dice_trainer"
    assert result["found"]["SiANDiagnosisTrainer_Short"]["qualname"] == "SiANDiagnosisTrainer_Short"
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
