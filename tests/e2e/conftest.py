"""What the end-to-end tests share: one synthetic dataset (with its diagnosis labels), planned and preprocessed once
for 2d and 3d_fullres; every model trained at most once per session (:func:`trained_model`) and predicted at most
once by the stock ``nnUNetv2_predict`` (:func:`stock_predictions`); and the helpers the test files use.

Each model is trained through nnU-Net's real ``nnUNetv2_train`` in a subprocess, on the CPU, with the short budget
below. A model of a trainer that needs a trained segmentation model (``needs_segmentation_model`` in the registry)
is trained on the session's ``PlainUNetTrainer_Short`` model of the same configuration, which is trained first.

A test module lists what it uses in ``SHARED_MODELS`` and ``SHARED_PREDICTIONS`` (``(trainer, configuration)``
pairs). As soon as the session's tests are collected, the runs of the selected modules start in the background, two
at a time (:class:`SharedRuns`: most of a short CPU run is one core importing torch and nnU-Net and starting worker
processes, so two runs use the machine's two cores), and the end-to-end tests run last, by when most are done.
"""

import json
import math
import os
import shutil
import subprocess
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional

import pytest

from nnunet_ext.cli.nnunet_commands import (command_path, nnunet_environment, plan_and_preprocess, results_folder,
                                            run_nnunet_command, train)
from nnunet_ext.datasets.synthetic import generate_synthetic_dataset
from nnunet_ext.diagnosis.segmentation_model import SEGMENTATION_MODEL_VARIABLE
from nnunet_ext.trainers.registry import get_trainer

DATASET_ID, DATASET_NAME = 510, "Dataset510_SyntheticLesions"
NUM_TRAINING, SHAPE = 10, (24, 40, 40)
TEST_CASES = ["synth_010", "synth_011"]
CONFIGURATIONS = ("2d", "3d_fullres")
# 2 epochs (the dual loss switches at the second), 2 iterations, 1 validation iteration: minutes, not hours
BUDGET = {"epochs": 2, "iterations": 2, "val_iterations": 1}
SEGMENTATION_MODEL_TRAINER = "PlainUNetTrainer_Short"


@dataclass
class Workspace:
    """The session's nnU-Net folders, environment and dataset."""

    work_dir: Path
    environment: Dict[str, str]  # for training: augmentation in the training process (nnUNet_n_proc_DA=0)
    raw: Path

    @property
    def preprocessed(self) -> Path:
        return Path(self.environment["nnUNet_preprocessed"]) / DATASET_NAME

    def model_folder(self, trainer: str, configuration: str) -> Path:
        return results_folder(self.environment, DATASET_NAME, trainer, configuration)

    def log(self, name: str) -> Path:
        return self.work_dir / "logs" / f"{name}.log"


@dataclass
class TrainedModel:
    trainer: str
    configuration: str
    folder: Path  # nnU-Net's model folder <trainer>__nnUNetPlans__<configuration>
    environment: Dict[str, str]  # the environment it was trained in (and is predicted in)

    @property
    def fold_0(self) -> Path:
        return self.folder / "fold_0"

    def training_log(self) -> str:
        return "".join(p.read_text() for p in sorted(self.fold_0.glob("training_log_*.txt")))


def predict_arguments(workspace: Workspace, trainer: str, configuration: str, output: Path) -> list:
    """``nnUNetv2_predict``'s arguments for the test images, fold 0, on the CPU, without test-time mirroring and in
    this process (``-npp 0 -nps 0``: no worker pools to start for two small cases)."""
    return ["-i", workspace.raw / "imagesTs", "-o", output, "-d", DATASET_ID, "-c", configuration, "-f", 0,
            "-tr", trainer, "-device", "cpu", "-npp", 0, "-nps", 0, "--disable_tta"]


def create_workspace(work_dir: Path, environ: Dict[str, str]) -> Workspace:
    planning = nnunet_environment(work_dir, budget=BUDGET, base=environ)
    raw = generate_synthetic_dataset(planning["nnUNet_raw"], dataset_id=DATASET_ID, num_training=NUM_TRAINING,
                                     num_test=len(TEST_CASES), shape=SHAPE)
    plan_and_preprocess(DATASET_ID, CONFIGURATIONS, planning, work_dir / "logs" / "plan.log")
    # nnUNet_n_proc_DA=0 breaks planning (nnU-Net sets torch's thread count to it), so only training gets it: the
    # few iterations of a test cost less than starting augmentation worker processes; likewise one process for
    # the pools of validation and evaluation (each worker imports torch and nnU-Net first) is enough for 2 cases
    return Workspace(work_dir, dict(planning, nnUNet_n_proc_DA="0", nnUNet_def_n_proc="1"), raw)


class Helpers:
    """Assertions and commands the end-to-end test files share (a fixture: test modules do not import each other
    under pytest's importlib mode)."""

    dataset_id, dataset_name, test_cases = DATASET_ID, DATASET_NAME, TEST_CASES
    predict_arguments = staticmethod(predict_arguments)

    @staticmethod
    def assert_valid_dice(summary: dict, labels=("1", "2")) -> None:
        for label in labels:
            dice = summary["mean"][label]["Dice"]
            assert not math.isnan(dice) and 0.0 <= dice <= 1.0, (label, dice)

    @staticmethod
    def isolated_copy(workspace: Workspace, folder: Path) -> Dict[str, str]:
        """An environment whose nnU-Net folders under ``folder`` hold copies of the session's raw and preprocessed
        dataset and no model: a test may change or remove files there without touching what others read."""
        environment = dict(workspace.environment)
        for variable in ("nnUNet_raw", "nnUNet_preprocessed"):
            shutil.copytree(Path(workspace.environment[variable]) / DATASET_NAME, folder / variable / DATASET_NAME)
            environment[variable] = str(folder / variable)
        environment["nnUNet_results"] = str(folder / "nnUNet_results")
        return environment

    @staticmethod
    def train_expecting_failure(workspace: Workspace, trainer: str, configuration: str,
                                environment: Optional[Dict[str, str]] = None, extra=()) -> str:
        """Run ``nnUNetv2_train`` that must fail; its stdout and stderr."""
        completed = subprocess.run([command_path("nnUNetv2_train"), str(DATASET_ID), configuration, "0", "-tr",
                                    trainer, "-device", "cpu", *extra],
                                   env=environment or workspace.environment, capture_output=True, text=True,
                                   timeout=600)
        assert completed.returncode != 0, completed.stdout[-2000:]
        return completed.stdout + completed.stderr


class SharedRuns(Helpers):
    """The session's expensive runs of nnU-Net's commands, each computed once, in a pool of two threads that run the
    commands in subprocesses: the workspace, models, stock predictions, evaluations, and the pipelines that test
    modules define. Every method returns a ``Future``.

    A run waits only for runs submitted before it (what it needs is submitted first), and the pool takes runs in
    order, so what a run waits for has already started: the pool cannot deadlock. A run that asks, from inside the
    pool, for something submitted after it (a need it did not declare) gets an error instead of a hang. The
    pipelines get this object, with the constants and commands of :class:`Helpers` (the tests' ``e2e`` fixture).
    """

    def __init__(self, work_dir: Path, workers: int = 2):
        self.work_dir = work_dir
        # the environment as the session started: tests in the main thread may change os.environ meanwhile
        self.environ = dict(os.environ)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="e2e-run")
        self.futures: Dict[tuple, Future] = {}
        self.positions: Dict[tuple, int] = {}
        self.lock = threading.Lock()
        self.running = threading.local()  # the key and position of the run this pool thread executes

    def _once(self, key: tuple, job: Callable) -> Future:
        with self.lock:
            inside = getattr(self.running, "position", None)
            if inside is not None and (key not in self.futures or self.positions[key] > inside):
                raise RuntimeError(f"The shared run {self.running.key} needs {key}, which was not submitted before "
                                   f"it: list it among the run's needs (SHARED_PIPELINES).")
            if key not in self.futures:
                self.positions[key] = len(self.positions)
                self.futures[key] = self.pool.submit(self._run, key, self.positions[key], job)
            return self.futures[key]

    def _run(self, key: tuple, position: int, job: Callable):
        self.running.key, self.running.position = key, position
        try:
            return job()
        finally:
            self.running.position = None

    def submit(self, key: tuple) -> Future:
        """``("model" | "stock_predictions" | "evaluation", trainer, configuration)`` or ``("workspace",)``."""
        return getattr(self, key[0])(*key[1:])

    def workspace(self) -> Future:
        return self._once(("workspace",), lambda: create_workspace(self.work_dir, self.environ))

    def model(self, trainer: str, configuration: str) -> Future:
        workspace = self.workspace()
        segmentation = (self.model(SEGMENTATION_MODEL_TRAINER, configuration)
                        if "needs_segmentation_model" in get_trainer(trainer).tags else None)

        def train_model() -> TrainedModel:
            environment = dict(workspace.result().environment)
            if segmentation is not None:
                environment[SEGMENTATION_MODEL_VARIABLE] = str(segmentation.result().folder)
            train(DATASET_ID, configuration, 0, trainer, environment,
                  workspace.result().log(f"train_{trainer}_{configuration}"))
            return TrainedModel(trainer, configuration, workspace.result().model_folder(trainer, configuration),
                                environment)
        return self._once(("model", trainer, configuration), train_model)

    def stock_predictions(self, trainer: str, configuration: str) -> Future:
        """The stock ``nnUNetv2_predict``'s; for a click-guided model (tag ``needs_clicks``: the stock command cannot
        feed it its cue) ``nnunet_ext_predict`` with clicks simulated from ``labelsTs``."""
        workspace, model = self.workspace(), self.model(trainer, configuration)

        def predict() -> Path:
            output = self.work_dir / f"stock_{trainer}_{configuration}"
            clicks = (["--simulated_clicks", workspace.result().raw / "labelsTs"]
                      if "needs_clicks" in get_trainer(trainer).tags else [])
            run_nnunet_command(["nnunet_ext_predict" if clicks else "nnUNetv2_predict",
                                *predict_arguments(workspace.result(), trainer, configuration, output),
                                "--save_probabilities", *clicks],
                               model.result().environment,
                               workspace.result().log(f"predict_stock_{trainer}_{configuration}"))
            return output
        return self._once(("stock_predictions", trainer, configuration), predict)

    def evaluation(self, trainer: str, configuration: str) -> Future:
        """``nnUNetv2_evaluate_folder`` of the stock predictions against ``labelsTs``: the parsed summary."""
        workspace, predictions = self.workspace(), self.stock_predictions(trainer, configuration)

        def evaluate() -> dict:
            folder = predictions.result()
            run_nnunet_command(["nnUNetv2_evaluate_folder", workspace.result().raw / "labelsTs", folder, "-djfile",
                                folder / "dataset.json", "-pfile", folder / "plans.json", "-np", 1],
                               workspace.result().environment,
                               workspace.result().log(f"evaluate_{trainer}_{configuration}"))
            return json.loads((folder / "summary.json").read_text())
        return self._once(("evaluation", trainer, configuration), evaluate)

    def pipeline(self, name: str, function: Callable, needs=()) -> Future:
        """A test module's own run: ``function(runs, folder)`` with an empty ``folder`` of its own, after ``needs``
        (keys of :meth:`submit`)."""
        for need in needs:
            self.submit(need)
        folder = self.work_dir / "pipelines" / name
        return self._once(("pipeline", name), lambda: function(self, folder))


_RUNS: Dict[str, SharedRuns] = {}


def shared_runs(config) -> SharedRuns:
    if "runs" not in _RUNS:
        # the session's temporary folder (what the tmp_path_factory fixture hands out; hooks get no fixtures)
        _RUNS["runs"] = SharedRuns(config._tmp_path_factory.mktemp("e2e"))
    return _RUNS["runs"]


def pytest_collection_modifyitems(session, config, items):
    """The end-to-end tests run last: their shared runs go on in the background meanwhile."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


def pytest_collection_finish(session):
    """Start the shared runs of the selected end-to-end tests' modules (``SHARED_RUNS``: keys of
    :meth:`SharedRuns.submit`; ``SHARED_PIPELINES``: ``{name: (function, needs)}``): the pipelines that need
    nothing first (they are the longest), then the segmentation model that others are trained on, the other
    models, those trained on it, the predictions and evaluations, and last the pipelines that need them."""
    modules = {item.module for item in session.items if item.get_closest_marker("e2e") is not None}
    pipelines = {name: spec for module in modules for name, spec in getattr(module, "SHARED_PIPELINES", {}).items()}
    keys = {tuple(key) for module in modules for key in getattr(module, "SHARED_RUNS", ())}
    keys |= {tuple(need) for _, needs in pipelines.values() for need in needs}
    if not keys and not pipelines:
        return
    runs = shared_runs(session.config)
    for name, (function, needs) in sorted(pipelines.items()):
        if not needs:
            runs.pipeline(name, function)

    def order(key: tuple):
        if key == ("workspace",):  # a pipeline that needs only the dataset (every other key submits it first)
            return (-1,)
        kind, trainer, _ = key
        return (["model", "stock_predictions", "evaluation"].index(kind),
                "needs_segmentation_model" in get_trainer(trainer).tags, trainer != SEGMENTATION_MODEL_TRAINER, key)
    for key in sorted(keys, key=order):
        runs.submit(key)
    for name, (function, needs) in sorted(pipelines.items()):
        if needs:
            runs.pipeline(name, function, needs)


def pytest_sessionfinish(session):
    if "runs" in _RUNS:
        _RUNS["runs"].pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def e2e_workspace(request) -> Workspace:
    return shared_runs(request.config).workspace().result()


@pytest.fixture(scope="session")
def trained_model(request) -> Callable[[str, str], TrainedModel]:
    """``trained_model(trainer, configuration)``: fold 0 trained once per session with the short budget."""
    runs = shared_runs(request.config)
    return lambda trainer, configuration: runs.model(trainer, configuration).result()


@pytest.fixture(scope="session")
def stock_predictions(request) -> Callable[[str, str], Path]:
    """``stock_predictions(trainer, configuration)``: the folder that the stock ``nnUNetv2_predict
    --save_probabilities`` wrote for the test images with that session model (once per session; a click-guided
    model's is ``nnunet_ext_predict``'s with simulated clicks)."""
    runs = shared_runs(request.config)
    return lambda trainer, configuration: runs.stock_predictions(trainer, configuration).result()


@pytest.fixture(scope="session")
def evaluation(request) -> Callable[[str, str], dict]:
    """``evaluation(trainer, configuration)``: ``nnUNetv2_evaluate_folder``'s summary of the stock predictions."""
    runs = shared_runs(request.config)
    return lambda trainer, configuration: runs.evaluation(trainer, configuration).result()


@pytest.fixture
def shared_pipeline(request) -> Callable[[str], object]:
    """``shared_pipeline(name)``: the result of the pipeline ``name`` of this test module's ``SHARED_PIPELINES``."""
    runs = shared_runs(request.config)

    def get(name: str):
        function, needs = request.module.SHARED_PIPELINES[name]
        return runs.pipeline(name, function, needs).result()
    return get


@pytest.fixture(scope="session")
def e2e() -> "Helpers":
    return Helpers()
