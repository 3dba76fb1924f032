"""Run nnU-Net's own command-line tools in subprocesses, with their folders and worker counts set.

nnU-Net reads ``nnUNet_raw``, ``nnUNet_preprocessed``, ``nnUNet_results`` and its worker counts at import, and
starts ``spawn`` process pools, so the demo, the benchmarks and the end-to-end tests run its real CLIs as
subprocesses with an explicit environment instead of importing it with whatever the parent process had.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterable, Mapping, Optional, Sequence, Union

PathLike = Union[str, Path]


def nnunet_environment(work_dir: PathLike, processes: int = 2, augmentation_workers: int = 1,
                       budget: Optional[Dict[str, int]] = None,
                       base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) with nnU-Net's three folders under ``work_dir`` and small worker
    counts.

    :param budget: optional ``{"epochs": e, "iterations": i, "val_iterations": v, "save_every": s}`` for the
        ``*_Short`` trainers (``save_every``: epochs between two ``checkpoint_latest.pth``).
    """
    work_dir = Path(work_dir).resolve()
    environment = dict(os.environ if base is None else base)
    environment.update({
        "nnUNet_raw": str(work_dir / "nnUNet_raw"),
        "nnUNet_preprocessed": str(work_dir / "nnUNet_preprocessed"),
        "nnUNet_results": str(work_dir / "nnUNet_results"),
        "nnUNet_def_n_proc": str(processes),
        "nnUNet_n_proc_DA": str(augmentation_workers),
        "PYTHONUNBUFFERED": "1",
        "OMP_WAIT_POLICY": "PASSIVE",  # idle torch threads sleep: several processes share few cores
    })
    environment.pop("nnUNet_compile", None)  # compiling on a CPU costs more than it saves (40 s per prediction)
    for key, variable in (("epochs", "NNUNET_EXT_EPOCHS"), ("iterations", "NNUNET_EXT_ITERATIONS"),
                          ("val_iterations", "NNUNET_EXT_VAL_ITERATIONS"), ("save_every", "NNUNET_EXT_SAVE_EVERY")):
        if budget and key in budget:
            environment[variable] = str(budget[key])
    return environment


def command_path(name: str) -> str:
    """The console script ``name`` of the running interpreter's environment (falls back to ``PATH``)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def run_nnunet_command(arguments: Sequence[str], environment: Dict[str, str], log_file: PathLike,
                       timeout: Optional[float] = None) -> float:
    """Run one nnU-Net command, output to ``log_file``; returns seconds taken.

    Raises ``RuntimeError`` with the command and the last lines of its log when it fails.
    """
    log_file = Path(log_file)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    command = [command_path(arguments[0]), *map(str, arguments[1:])]
    start = time.perf_counter()
    with open(log_file, "w") as log:
        completed = subprocess.run(command, env=environment, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        tail = "".join(log_file.read_text(errors="replace").splitlines(keepends=True)[-40:])
        raise RuntimeError(f"{' '.join(command)} failed with exit code {completed.returncode} "
                           f"(full log: {log_file}); last lines:\n{tail}")
    return seconds


def plan_and_preprocess(dataset_id: int, configurations: Iterable[str], environment: Dict[str, str],
                        log_file: PathLike, planner: str = "ExperimentPlanner", preprocess: bool = True) -> float:
    """``nnUNetv2_plan_and_preprocess``; with ``preprocess=False`` only the fingerprint and the plans."""
    configurations = list(configurations)
    processes = environment.get("nnUNet_def_n_proc", "2")
    return run_nnunet_command(
        ["nnUNetv2_plan_and_preprocess", "-d", dataset_id, "-c", *configurations, "-np",
         *([processes] * len(configurations)), "-npfp", processes, "-pl", planner,
         *([] if preprocess else ["--no_pp"])],
        environment, log_file)


def train(dataset_id: int, configuration: str, fold: Union[int, str], trainer: str, environment: Dict[str, str],
          log_file: PathLike, plans: str = "nnUNetPlans", extra: Sequence[str] = ()) -> float:
    return run_nnunet_command(["nnUNetv2_train", dataset_id, configuration, fold, "-tr", trainer, "-p", plans,
                               "-device", "cpu", *extra], environment, log_file)


def predict(images: PathLike, output: PathLike, dataset_id: int, configuration: str, fold: Union[int, str],
            trainer: str, environment: Dict[str, str], log_file: PathLike, plans: str = "nnUNetPlans",
            fast: bool = True) -> float:
    """``nnUNetv2_predict`` on a CPU; ``fast`` turns test-time mirroring off and predicts in the command's own
    process (``-npp 0 -nps 0``: no worker pools to start, which costs more than a few small cases)."""
    extra = ["-npp", "0", "-nps", "0", "--disable_tta"] if fast else []
    return run_nnunet_command(["nnUNetv2_predict", "-i", images, "-o", output, "-d", dataset_id, "-c",
                               configuration, "-f", fold, "-tr", trainer, "-p", plans, "-device", "cpu", *extra],
                              environment, log_file)


def evaluate(labels: PathLike, predictions: PathLike, environment: Dict[str, str], log_file: PathLike) -> dict:
    """``nnUNetv2_evaluate_folder`` with the ``dataset.json`` and ``plans.json`` the predictor wrote beside the
    predictions; returns the parsed ``summary.json``."""
    predictions = Path(predictions)
    run_nnunet_command(["nnUNetv2_evaluate_folder", labels, predictions, "-djfile", predictions / "dataset.json",
                        "-pfile", predictions / "plans.json", "-np", environment.get("nnUNet_def_n_proc", "2")],
                       environment, log_file)
    return json.loads((predictions / "summary.json").read_text())


def results_folder(environment: Dict[str, str], dataset_name: str, trainer: str, configuration: str,
                   plans: str = "nnUNetPlans") -> Path:
    """Where ``nnUNetv2_train`` puts a model: ``nnUNet_results/<dataset>/<trainer>__<plans>__<configuration>``."""
    return Path(environment["nnUNet_results"]) / dataset_name / f"{trainer}__{plans}__{configuration}"
