"""End-to-end demo on a CPU: synthetic data -> nnU-Net planning -> training -> prediction -> evaluation -> table.

Run ``python -m nnunet_ext.cli.demo`` (or ``nnunet_ext_demo``). It

1. generates a small synthetic 3D organ/lesion dataset in nnU-Net raw format,
2. plans and preprocesses it (``3d_fullres``) with ``nnUNetv2_plan_and_preprocess``,
3. trains each trainer (default ``DivAttentionTrainer_Short`` and the baseline ``PlainUNetTrainer_Short``) on
   fold 0 with the same short budget on the CPU,
4. predicts the held-out ``imagesTs`` with ``nnUNetv2_predict -tr <trainer>``,
5. evaluates the predictions against ``labelsTs`` with ``nnUNetv2_evaluate_folder``,
6. writes the Div-attention maps of the first test case with ``nnunet_ext_attention`` (NIfTI in the case's own
   geometry and a PNG with the image, the prediction's outline and each junction's map),
7. prints Dice per class, mean Dice, training and prediction time per trainer, and where the results are.

Everything is written under ``--work-dir`` (default ``./demo_work``). The demo only uses a folder that is new or
empty, or that it created itself (it holds the marker file ``.nnunet_ext_demo``); in that last case the folders of
the earlier run are deleted first. Any other non-empty folder is refused, so nothing a user wrote is touched.
"""

import argparse
import json
import math
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from nnunet_ext.cli import nnunet_commands
from nnunet_ext.cli.trainer_names import check_trainer_names
from nnunet_ext.core.errors import UserInputError
from nnunet_ext.datasets.synthetic import MIN_SHAPE, generate_synthetic_dataset
from nnunet_ext.trainers.registry import list_trainers

DEMO_MARKER = ".nnunet_ext_demo"
DEMO_MANIFEST = ".nnunet_ext_demo_files.json"  # the files the last demo run wrote: relative path -> [size, mtime]
MAX_LISTED_FILES = 5
DATASET_ID = 501
CONFIGURATION = "3d_fullres"
FOLD = 0
DEFAULT_TRAINERS = ("DivAttentionTrainer_Short", "PlainUNetTrainer_Short")
SHORT_TRAINER_SUFFIX = "_Short"
MIN_TRAINING_CASES = 5  # nnU-Net splits the training cases into 5 cross-validation folds
TOTAL_STEPS = 7

RAW_FOLDER = "nnUNet_raw"
PREPROCESSED_FOLDER = "nnUNet_preprocessed"
RESULTS_FOLDER = "nnUNet_results"
PREDICTIONS_FOLDER = "predictions"
LOGS_FOLDER = "logs"
ATTENTION_FOLDER = "attention_maps"
DEMO_FOLDERS = (RAW_FOLDER, PREPROCESSED_FOLDER, RESULTS_FOLDER, PREDICTIONS_FOLDER, LOGS_FOLDER, ATTENTION_FOLDER)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_INTERRUPTED = 130


class WorkDirNotOwnedError(UserInputError):
    """The work dir holds files the demo did not write, so it must not be used."""


@dataclass(frozen=True)
class TrainerResult:
    """One row of the results table.

    ``dice_per_class`` maps class names (in label order, background excluded) to the mean Dice over the test cases.
    """

    trainer: str
    dice_per_class: Dict[str, float]
    mean_dice: float
    training_seconds: float
    prediction_seconds: float
    attention_figure: Optional[Path] = None  # the PNG of the first test case's Div-attention maps, if any


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The demo's command-line options."""
    parser = argparse.ArgumentParser(
        prog="nnunet_ext_demo",
        description="Train and compare nnU-Net trainers on a small synthetic 3D dataset, on the CPU, in a few "
                    "minutes: generate data, plan and preprocess, train on fold 0, predict the test images, "
                    "evaluate, print a table.")
    parser.add_argument("--work-dir", type=Path, default=Path("./demo_work"),
                        help="folder for all demo files (default ./demo_work); must be new, empty, or made by an "
                             "earlier demo run (marker file %s), which is then cleared" % DEMO_MARKER)
    parser.add_argument("--epochs", type=positive_int, default=20,
                        help="training epochs of the *_Short trainers (default 20: both default models find "
                             "lesions after about 12)")
    parser.add_argument("--iterations", type=positive_int, default=10,
                        help="training iterations per epoch of the *_Short trainers (default 10)")
    parser.add_argument("--val-iterations", type=positive_int, default=2,
                        help="validation iterations per epoch of the *_Short trainers (default 2)")
    parser.add_argument("--num-training", type=positive_int, default=10,
                        help=f"synthetic training cases, at least {MIN_TRAINING_CASES} for nnU-Net's 5 folds "
                             f"(default 10)")
    parser.add_argument("--num-test", type=positive_int, default=4,
                        help="synthetic held-out test cases that are predicted and evaluated (default 4)")
    parser.add_argument("--shape", type=positive_int, nargs=3, default=[20, 32, 32], metavar=("Z", "Y", "X"),
                        help="voxels per synthetic volume in (z, y, x) order, at 2 x 1 x 1 mm; nnU-Net's patch "
                             "covers the whole volume, so this sets the cost of every iteration (default 20 32 32)")
    parser.add_argument("--trainers", nargs="+", default=list(DEFAULT_TRAINERS), metavar="TRAINER",
                        help="nnU-Net trainer class names to train and compare (default %s); the budget options "
                             "apply to the *_Short trainers only" % " ".join(DEFAULT_TRAINERS))
    return parser


def parse_arguments(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse and check the options; exits with argparse's usage error for invalid ones."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.num_training < MIN_TRAINING_CASES:
        parser.error(f"--num-training must be at least {MIN_TRAINING_CASES}: nnU-Net splits the training cases "
                     f"into 5 cross-validation folds")
    if any(size < minimum for size, minimum in zip(arguments.shape, MIN_SHAPE)):
        parser.error(f"--shape must be at least {' '.join(map(str, MIN_SHAPE))} voxels (Z Y X) to hold the "
                     f"synthetic body and organ")
    arguments.trainers = list(dict.fromkeys(arguments.trainers))
    return arguments


def say(message: str) -> None:
    """Print one progress line at once."""
    print(message, flush=True)


@contextmanager
def step(number: int, description: str) -> Iterator[None]:
    """Announce ``[number/6] description ...`` and finish the line with ``done in N s`` (or ``failed``)."""
    print(f"[{number}/{TOTAL_STEPS}] {description} ...", end=" ", flush=True)
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        say("failed")
        raise
    say(f"done in {time.perf_counter() - start:.0f} s")


def prepare_work_dir(work_dir: Path) -> bool:
    """Make ``work_dir`` ready for a fresh run; returns True if an earlier demo run was cleared.

    A new or empty folder gets the marker file. A folder with the marker gets the files the last demo run wrote
    (its manifest) deleted, and nothing else: a file in the demo's folders that the demo did not write, or that
    changed since it wrote it, makes it refuse and list them.

    Raises:
        WorkDirNotOwnedError: ``work_dir`` is not a folder, is non-empty without the marker, or holds files in the
            demo's folders that the demo did not write.
    """
    if work_dir.exists() and not work_dir.is_dir():
        raise WorkDirNotOwnedError(f"--work-dir {work_dir} exists and is not a folder; choose another --work-dir.")
    marker = work_dir / DEMO_MARKER
    if work_dir.is_dir() and any(work_dir.iterdir()):
        if not marker.is_file():
            raise WorkDirNotOwnedError(
                f"--work-dir {work_dir} is not empty and was not created by this demo (no {DEMO_MARKER} file in "
                f"it), so the demo will not write there. Choose another --work-dir, or empty that folder.")
        remove_demo_files(work_dir)
        return True
    work_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text("This folder was created by nnunet_ext.cli.demo; the next demo run in it deletes the files "
                      f"its last run wrote (listed in {DEMO_MANIFEST}) and starts fresh.\n")
    return False


def _signature(path: Path) -> list:
    status = path.lstat()
    return [status.st_size, status.st_mtime_ns]


def demo_folder_files(work_dir: Path) -> Dict[str, Path]:
    """Relative path -> path of every file (or link) under the demo's folders (links are not followed)."""
    files = {}
    for name in DEMO_FOLDERS:
        top = work_dir / name
        if top.is_symlink() or top.is_file():
            files[name] = top
        elif top.is_dir():
            for path in top.rglob("*"):
                if path.is_symlink() or path.is_file():
                    files[str(path.relative_to(work_dir))] = path
    return files


def read_demo_manifest(work_dir: Path) -> Dict[str, list]:
    try:
        return json.loads((work_dir / DEMO_MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def record_demo_files(work_dir: Path) -> None:
    """The manifest: every file under the demo's folders at the end of a run (finished, failed or interrupted).
    They are all this run's: a run starts with those folders empty (:func:`prepare_work_dir` refuses otherwise); a
    file put there by hand while the demo runs would be counted as the demo's."""
    manifest = {relative: _signature(path) for relative, path in demo_folder_files(work_dir).items()}
    (work_dir / DEMO_MANIFEST).write_text(json.dumps(manifest, indent=0))


def remove_demo_files(work_dir: Path) -> None:
    """Delete the files the last demo run wrote (then the folders left empty); refuse, deleting nothing, if the
    demo's folders hold any other file or a changed one (a symlink is removed, not followed)."""
    manifest = read_demo_manifest(work_dir)
    files = demo_folder_files(work_dir)
    foreign = sorted(relative for relative, path in files.items() if manifest.get(relative) != _signature(path))
    if foreign:
        listed = ", ".join(foreign[:MAX_LISTED_FILES]) + (f" and {len(foreign) - MAX_LISTED_FILES} more"
                                                          if len(foreign) > MAX_LISTED_FILES else "")
        raise WorkDirNotOwnedError(
            f"--work-dir {work_dir} holds files that the last demo run did not write, or that changed since: "
            f"{listed}. Nothing was deleted.", fix="move them out of that folder, or choose another --work-dir")
    for path in files.values():
        path.unlink()
    for name in DEMO_FOLDERS:
        top = work_dir / name
        if top.is_dir() and not top.is_symlink():
            for folder in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                                 reverse=True):
                folder.rmdir()
            top.rmdir()
    (work_dir / DEMO_MANIFEST).unlink(missing_ok=True)


def class_names(dataset_folder: Path) -> Dict[str, str]:
    """``{label value as str: class name}`` of the foreground classes in the dataset's ``dataset.json``."""
    labels = json.loads((dataset_folder / "dataset.json").read_text())["labels"]
    foreground = {name: value for name, value in labels.items() if value != 0}
    return {str(value): name for name, value in sorted(foreground.items(), key=lambda item: item[1])}


def budget_description(trainer: str, budget: Dict[str, int]) -> str:
    """``(5 epochs x 8 iterations)`` for a ``*_Short`` trainer, else a note that it uses its own budget."""
    if trainer.endswith(SHORT_TRAINER_SUFFIX):
        return f"({budget['epochs']} epochs x {budget['iterations']} iterations)"
    return "(its own budget: the demo's budget options apply to *_Short trainers only)"


def trainer_result(trainer: str, summary: dict, names: Dict[str, str], training_seconds: float,
                   prediction_seconds: float) -> TrainerResult:
    """A table row from nnU-Net's evaluation ``summary`` and the class ``names`` by label value."""
    dice = {name: float(summary["mean"][value]["Dice"]) for value, name in names.items()}
    return TrainerResult(trainer, dice, float(summary["foreground_mean"]["Dice"]), training_seconds,
                         prediction_seconds)


def format_dice(value: float) -> str:
    """Dice with three decimals; ``n/a`` when nnU-Net reports no value (NaN)."""
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def format_results_table(rows: Sequence[TrainerResult]) -> str:
    """Plain-text table: trainer, Dice per class, mean Dice, training time, prediction time (one row each)."""
    names = list(dict.fromkeys(name for row in rows for name in row.dice_per_class))
    header = ["trainer", *(f"Dice {name}" for name in names), "mean Dice", "train time", "predict time"]
    body = [[row.trainer, *(format_dice(row.dice_per_class.get(name, math.nan)) for name in names),
             format_dice(row.mean_dice), f"{row.training_seconds:.0f} s", f"{row.prediction_seconds:.0f} s"]
            for row in rows]
    widths = [max(len(line[column]) for line in [header, *body]) for column in range(len(header))]

    def render(cells: List[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:]))
        return "  ".join([first, *rest])

    return "\n".join([render(header), "  ".join("-" * width for width in widths), *map(render, body)])


def demo_environment(arguments: argparse.Namespace) -> Dict[str, str]:
    """nnU-Net's folders under the work dir, 2 processes, 1 augmentation worker and the demo's training budget."""
    budget = {"epochs": arguments.epochs, "iterations": arguments.iterations,
              "val_iterations": arguments.val_iterations}
    return nnunet_commands.nnunet_environment(arguments.work_dir.resolve(), processes=2, augmentation_workers=1,
                                              budget=budget)


def run_demo(arguments: argparse.Namespace, environment: Dict[str, str]) -> Tuple[str, List[TrainerResult]]:
    """Steps 1-5 in ``arguments.work_dir`` (already prepared); returns the dataset name and one result per
    trainer."""
    work_dir = arguments.work_dir.resolve()
    budget = {"epochs": arguments.epochs, "iterations": arguments.iterations}
    logs = work_dir / LOGS_FOLDER

    with step(1, f"generating {arguments.num_training} training and {arguments.num_test} test volumes of "
                 f"{' x '.join(map(str, arguments.shape))} voxels"):
        dataset_folder = generate_synthetic_dataset(
            environment["nnUNet_raw"], dataset_id=DATASET_ID, num_training=arguments.num_training,
            num_test=arguments.num_test, shape=tuple(arguments.shape), seed=0, overwrite=True)
    names = class_names(dataset_folder)

    with step(2, f"planning and preprocessing {dataset_folder.name} ({CONFIGURATION})"):
        nnunet_commands.plan_and_preprocess(DATASET_ID, [CONFIGURATION], environment,
                                            logs / "plan_and_preprocess.log")

    training_seconds = {}
    for trainer in arguments.trainers:
        with step(3, f"training {trainer} {budget_description(trainer, budget)} on fold {FOLD}, CPU"):
            training_seconds[trainer] = nnunet_commands.train(DATASET_ID, CONFIGURATION, FOLD, trainer,
                                                              environment, logs / f"train_{trainer}.log")

    prediction_seconds = {}
    for trainer in arguments.trainers:
        with step(4, f"predicting imagesTs ({arguments.num_test} cases) with {trainer}"):
            prediction_seconds[trainer] = nnunet_commands.predict(
                dataset_folder / "imagesTs", work_dir / PREDICTIONS_FOLDER / trainer, DATASET_ID, CONFIGURATION,
                FOLD, trainer, environment, logs / f"predict_{trainer}.log")

    results = []
    for trainer in arguments.trainers:
        with step(5, f"evaluating {trainer} against labelsTs"):
            summary = nnunet_commands.evaluate(dataset_folder / "labelsTs", work_dir / PREDICTIONS_FOLDER / trainer,
                                               environment, logs / f"evaluate_{trainer}.log")
        results.append(trainer_result(trainer, summary, names, training_seconds[trainer],
                                      prediction_seconds[trainer]))

    for index, trainer in enumerate(arguments.trainers):
        if trainer not in list_trainers(tag="div_attention"):
            continue
        with step(6, f"writing the Div-attention maps of the first test case with {trainer}"):
            figure = write_attention_maps(dataset_folder, work_dir / ATTENTION_FOLDER, trainer, environment, logs)
        results[index] = replace(results[index], attention_figure=figure)
    return dataset_folder.name, results


def write_attention_maps(dataset_folder: Path, folder: Path, trainer: str, environment: Dict[str, str],
                         logs: Path) -> Path:
    """``nnunet_ext_attention --maps div_attention`` on the first test case; returns the case's PNG."""
    first_case = sorted(dataset_folder.glob("imagesTs/*_0000.nii.gz"))[0]
    inputs = folder / "input"
    inputs.mkdir(parents=True, exist_ok=True)
    shutil.copy(first_case, inputs / first_case.name)
    output = folder / trainer
    nnunet_commands.run_nnunet_command(
        ["nnunet_ext_attention", "-i", inputs, "-o", output, "-d", DATASET_ID, "-c", CONFIGURATION, "-f", FOLD,
         "-tr", trainer, "-device", "cpu", "--maps", "div_attention"], environment, logs / f"attention_{trainer}.log")
    case = first_case.name[:-len("_0000.nii.gz")]
    return output / case / f"{case}_attention.png"


def print_report(arguments: argparse.Namespace, environment: Dict[str, str], dataset_name: str,
                 results: Sequence[TrainerResult], total_seconds: float) -> None:
    """Step 6: the results table and where the models, predictions and logs are."""
    work_dir = arguments.work_dir.resolve()
    say(f"[{TOTAL_STEPS}/{TOTAL_STEPS}] results on {arguments.num_test} held-out test cases (fold {FOLD} models, "
        f"Dice from nnUNetv2_evaluate_folder):")
    say("")
    say(format_results_table(results))
    say("")
    for row in results:
        folder = nnunet_commands.results_folder(environment, dataset_name, row.trainer, CONFIGURATION)
        say(f"model and training log of {row.trainer}: {folder / f'fold_{FOLD}'}")
    for row in results:
        if row.attention_figure is not None:
            say(f"Div-attention maps of {row.attention_figure.parent.name} ({row.trainer}): NIfTI (the case's own "
                f"geometry) in {row.attention_figure.parent}, figure {row.attention_figure}")
    say(f"predictions and summary.json per trainer: {work_dir / PREDICTIONS_FOLDER}")
    say(f"logs of every nnU-Net command: {work_dir / LOGS_FOLDER}")
    say(f"total time: {total_seconds:.0f} s")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the demo; returns 0 on success, 1 if an nnU-Net step failed, 2 if the work dir was refused (invalid
    options exit with argparse's code 2), 130 if interrupted."""
    arguments = parse_arguments(argv)
    start = time.perf_counter()
    try:
        check_trainer_names(arguments.trainers)  # before minutes of generation and planning
        if prepare_work_dir(arguments.work_dir):
            say(f"{arguments.work_dir} holds an earlier demo run ({DEMO_MARKER} marker): deleting the files it "
                f"wrote and starting fresh")
    except UserInputError as error:
        print(f"nnunet_ext_demo: {error}", file=sys.stderr, flush=True)
        return EXIT_REFUSED
    say(f"nnunet_ext demo in {arguments.work_dir.resolve()}: trainers {', '.join(arguments.trainers)}")
    environment = demo_environment(arguments)
    try:
        dataset_name, results = run_demo(arguments, environment)
    except RuntimeError as error:
        print(f"nnunet_ext_demo: a step failed: {error}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"nnunet_ext_demo: interrupted; partial results are in {arguments.work_dir.resolve()}",
              file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    finally:
        record_demo_files(arguments.work_dir)
    print_report(arguments, environment, dataset_name, results, time.perf_counter() - start)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
