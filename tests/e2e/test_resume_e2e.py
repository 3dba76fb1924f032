"""An interrupted training continues with ``nnUNetv2_train --c`` from its ``checkpoint_latest.pth``.

``DivAttentionTrainer_Short`` (2d) starts with ``NNUNET_EXT_SAVE_EVERY=1`` and is killed, process group and all, as
soon as its log has begun the epoch after the first ``checkpoint_latest.pth`` (the file is complete by then: nnU-Net
writes it at the end of an epoch, before it logs the next). Then the same command with ``--c`` must load that file,
not fall back to ``checkpoint_best.pth`` or start afresh, train the remaining epochs, and leave the interrupted run's
files in place. The model has its own ``nnUNet_results`` (the session's preprocessed data): it trains the same
trainer as no other test but must not meet a shared model's folder.
"""

import hashlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from nnunet_ext.cli.nnunet_commands import command_path, results_folder, train

pytestmark = pytest.mark.e2e

TRAINER, CONFIGURATION, EPOCHS = "DivAttentionTrainer_Short", "2d", 3
EPOCH_LINE = re.compile(r"^\S+ \S+: Epoch (\d+) ?$", re.MULTILINE)  # nnU-Net's "<timestamp>: Epoch <n>"
INTERRUPT_TIMEOUT = 300


def epochs_begun(fold_folder: Path) -> list:
    """The epochs whose start the training logs in ``fold_folder`` show."""
    return [int(n) for log in sorted(fold_folder.glob("training_log_*.txt"))
            for n in EPOCH_LINE.findall(log.read_text())]


def listing(folder: Path) -> dict:
    """``{file name: (size, sha256)}`` of the files in ``folder``."""
    return {p.name: (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.iterdir()) if p.is_file()}


def train_until_latest_checkpoint_then_kill(environment: dict, dataset_id: int, fold_folder: Path, log: Path):
    """Start ``nnUNetv2_train`` in a session of its own and kill that session once the log has begun an epoch after
    ``checkpoint_latest.pth`` appeared."""
    command = [command_path("nnUNetv2_train"), str(dataset_id), CONFIGURATION, "0", "-tr", TRAINER, "-p",
               "nnUNetPlans", "-device", "cpu"]
    with open(log, "w") as output:
        process = subprocess.Popen(command, env=environment, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            deadline = time.monotonic() + INTERRUPT_TIMEOUT
            while not ((fold_folder / "checkpoint_latest.pth").is_file() and max(epochs_begun(fold_folder),
                                                                                 default=0) >= 1):
                if process.poll() is not None:
                    raise RuntimeError(f"{' '.join(command)} ended (exit code {process.returncode}) before it was "
                                       f"interrupted; see {log}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"No checkpoint_latest.pth in {fold_folder} after {INTERRUPT_TIMEOUT} s")
                time.sleep(0.05)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)  # nnU-Net's worker processes too
            process.wait()


def interrupt_and_continue(runs, folder: Path) -> dict:
    """The fold folder, and what the interrupted run left there: its files (size, hash), its log's name and the
    latest checkpoint's ``current_epoch`` (the next epoch to train)."""
    workspace = runs.workspace().result()
    folder.mkdir(parents=True)
    environment = dict(workspace.environment, nnUNet_results=str(folder / "nnUNet_results"),
                       NNUNET_EXT_EPOCHS=str(EPOCHS), NNUNET_EXT_SAVE_EVERY="1")
    fold_folder = results_folder(environment, runs.dataset_name, TRAINER, CONFIGURATION) / "fold_0"
    train_until_latest_checkpoint_then_kill(environment, runs.dataset_id, fold_folder, folder / "interrupted.log")
    interrupted = {"listing": listing(fold_folder), "logs": sorted(p.name for p in fold_folder.glob("training_log_*")),
                   "checkpoint_epoch": torch.load(fold_folder / "checkpoint_latest.pth", map_location="cpu",
                                                  weights_only=False)["current_epoch"]}
    train(runs.dataset_id, CONFIGURATION, 0, TRAINER, environment, folder / "continued.log", extra=["--c"])
    return {"fold_folder": fold_folder, "interrupted": interrupted}


SHARED_PIPELINES = {"interrupted_and_continued": (interrupt_and_continue, [("workspace",)])}


def test_an_interrupted_training_continues_from_its_latest_checkpoint(shared_pipeline):
    result = shared_pipeline("interrupted_and_continued")
    fold_folder, interrupted = result["fold_folder"], result["interrupted"]
    first_log, = interrupted["logs"]
    continued_logs = [p for p in sorted(fold_folder.glob("training_log_*.txt")) if p.name != first_log]
    assert len(continued_logs) == 1, continued_logs
    continued = continued_logs[0].read_text()
    latest = interrupted["checkpoint_epoch"]
    assert latest >= 1
    assert f"Loaded the checkpoint {fold_folder / 'checkpoint_latest.pth'} (next epoch: {latest})" in continued
    assert [int(n) for n in EPOCH_LINE.findall(continued)] == list(range(latest, EPOCHS))  # no epoch 0 again
    final = torch.load(fold_folder / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert final["current_epoch"] == EPOCHS
    now = listing(fold_folder)
    # nnU-Net deletes checkpoint_latest.pth once checkpoint_final.pth is written; every other file stays
    assert set(interrupted["listing"]) - {"checkpoint_latest.pth"} <= set(now)
    assert now[first_log] == interrupted["listing"][first_log]  # the interrupted run's log is untouched
