"""Prediction costs through nnU-Net's own command line: ``nnUNetv2_predict`` (or ``nnunet_ext_predict``) on the CPU
with its default test-time mirroring, in its own process (``-npp 0 -nps 0``, so that one process holds all the
memory), on a folder of raw test images.

A model folder is written as ``nnUNetv2_train`` leaves it, with a freshly initialised network of the trainer (the
weights' values do not change the cost). Per run: seconds per case from the command's start (what a user waits
for a few cases, with the start-up: imports, nnU-Net's trainer lookup, building the network), seconds per case after
the start-up (from the line in which nnU-Net announces the cases it will predict to the end: preprocessing, sliding
window, export), and the peak resident memory of the process (its ``VmHWM``, read while it runs: ``ru_maxrss``
would start from the benchmark's own resident size, which a child inherits across ``fork`` and ``exec``).
"""

import copy
import json
import shutil
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence

import torch

from nnunet_ext.cli.nnunet_commands import command_path, nnunet_environment
from nnunet_ext.diagnosis.labels import DiagnosisLabels
from nnunet_ext.diagnosis.plans_entry import add_diagnosis_settings
from nnunet_ext.reliability.network_builds import NetworkSetting, build_network
from nnunet_ext.reliability.tiny_plans import DIAGNOSIS_CLASSES

START_OF_CASES = "cases that I would like to predict"  # nnU-Net's line once the model is loaded
FOLD = 0


def with_diagnosis_classes(plans: dict) -> dict:
    labels = DiagnosisLabels(classes=list(DIAGNOSIS_CLASSES), ordinal=False, labels={}, source=Path("<benchmark>"))
    return add_diagnosis_settings(copy.deepcopy(plans), labels, segmentation_softmax=True)


def write_model_folder(results: Path, dataset_name: str, trainer: str, setting: NetworkSetting) -> None:
    """``<results>/<dataset>/<trainer>__<plans>__<configuration>/`` with plans.json, dataset.json and
    ``fold_0/checkpoint_final.pth`` as nnU-Net's predictor reads them."""
    folder = results / dataset_name / f"{trainer}__{setting.plans['plans_name']}__{setting.configuration}"
    (folder / f"fold_{FOLD}").mkdir(parents=True, exist_ok=True)
    (folder / "plans.json").write_text(json.dumps(setting.plans))
    (folder / "dataset.json").write_text(json.dumps(setting.dataset_json))
    mirroring_axes = tuple(range(len(setting.patch_size)))
    torch.save({"network_weights": build_network(trainer, setting).state_dict(), "trainer_name": trainer,
                "init_args": {"configuration": setting.configuration}, "inference_allowed_mirroring_axes":
                mirroring_axes, "current_epoch": 1}, folder / f"fold_{FOLD}" / "checkpoint_final.pth")


def _high_water_mark_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


class PeakMemoryWatcher(threading.Thread):
    """Reads a running process's ``VmHWM`` every ``interval`` seconds; ``peak_bytes`` is the largest seen."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak_bytes = pid, interval, 0
        self.finished = threading.Event()

    def run(self):
        while not self.finished.wait(self.interval):
            self.peak_bytes = max(self.peak_bytes, _high_water_mark_bytes(self.pid))


@dataclass
class PredictionRun:
    seconds_per_case: float
    seconds_per_case_after_start_up: float
    start_up_seconds: float
    peak_bytes: int


def timed_prediction(command: str, work_dir: Path, dataset_id: int, trainer: str, setting: NetworkSetting,
                     images: Path, output: Path) -> PredictionRun:
    """One ``command`` (``nnUNetv2_predict`` or ``nnunet_ext_predict``) run, timed; ``output`` is emptied first."""
    shutil.rmtree(output, ignore_errors=True)
    num_cases = len({p.name.rsplit("_", 1)[0] for p in images.glob("*.nii.gz")})
    arguments = [command_path(command), "-i", str(images), "-o", str(output), "-d", str(dataset_id),
                 "-c", setting.configuration, "-f", str(FOLD), "-tr", trainer, "-p", setting.plans["plans_name"],
                 "-device", "cpu", "-npp", "0", "-nps", "0"]
    environment = nnunet_environment(work_dir)
    start = time.perf_counter()
    cases_start = None
    log_lines = []
    process = subprocess.Popen(arguments, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    watcher = PeakMemoryWatcher(process.pid)
    watcher.start()
    for line in process.stdout:
        log_lines.append(line)
        watcher.peak_bytes = max(watcher.peak_bytes, _high_water_mark_bytes(process.pid))
        if cases_start is None and START_OF_CASES in line:
            cases_start = time.perf_counter()
    watcher.peak_bytes = max(watcher.peak_bytes, _high_water_mark_bytes(process.pid))
    process.wait()
    end = time.perf_counter()
    watcher.finished.set()
    if process.returncode != 0 or cases_start is None:
        raise RuntimeError(f"{' '.join(arguments)} failed (exit code {process.returncode}):\n"
                           + "".join(log_lines[-30:]))
    return PredictionRun((end - start) / num_cases, (end - cases_start) / num_cases, cases_start - start,
                         watcher.peak_bytes)


def interleaved_predictions(runs: Dict[str, tuple], repeats: int) -> Dict[str, Dict[str, float]]:
    """``runs``: name -> the arguments of :func:`timed_prediction`; each run ``repeats`` times, interleaved.
    Returns name -> medians of the fields of :class:`PredictionRun`."""
    measured: Dict[str, List[PredictionRun]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, arguments in runs.items():
            measured[name].append(timed_prediction(*arguments))
    return {name: {field: statistics.median(getattr(run, field) for run in values)
                   for field in ("seconds_per_case", "seconds_per_case_after_start_up", "start_up_seconds",
                                "peak_bytes")}
            for name, values in measured.items()}
