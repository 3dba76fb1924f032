"""Does SMCA's spatial prior make SeATrans converge faster? Validation AUC per epoch with and without it, on the
real BraTS 2013 sample as 2D slices (the attention-map issue; SMCA's claim, ``../shared/papers/003``: "accelerate
the convergence of DETR").

The dataset, splits and segmentation models are those of ``benchmarks/compare_diagnosis_brats.py`` (2D slices, one
patient per fold, a frozen ``PlainUNetTrainer_Short`` segmentation model trained once per fold). Per fold and repeat
each trainer below trains through ``nnUNetv2_train`` at the same budget, with the same optimiser (SeATrans' Adam at
1e-4, the frozen variants' default) on the same frozen segmentation model:

* ``SeATransDiagnosisTrainer_FrozenSegmentation_Short``: SeATrans (no prior);
* ``SeATransSMCADiagnosisTrainer_FrozenSegmentation_Short``: SMCA's prior (centres and scales from the queries) and
  scale-attention;
* ``SeATransSMCALesionDiagnosisTrainer_FrozenSegmentation_Short``: the prior's centres starting on the segmentation's
  predicted lesion.

After every epoch the trainers log ``val_diagnosis_auc``, the AUC over that epoch's validation batches (nnU-Net's
validation patches of the fold's held-out patient; ``--val-iterations`` batches); it is read from
``checkpoint_final.pth``'s logger. The curves (mean and spread over the fold x repeat runs) go to
``<work dir>/smca_convergence.png``, the numbers to ``smca_convergence.json``; the table gives the mean AUC at a few
epochs, the area under the AUC-per-epoch curve (mean AUC over the epochs, which rewards early convergence) and the
final validation's AUC on every validation slice (``diagnosis_summary.json``).

    python -m benchmarks.smca_convergence_brats [--epochs 15] [--iterations 10] [--val-iterations 8] \
        [--folds 0 1] [--repeats 2] [--work-dir smca_convergence_work]

nnU-Net does not seed its runs: repeats differ by initialisation, sampling and augmentation (the "seeds").
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.compare_diagnosis_brats import (environment_with_budget, prepare_dataset, repeat_environment,
                                                train_diagnosis_trainer, train_segmentation_model,
                                                validation_patients, SEGMENTATION_TRAINER, DATASET_NAME,
                                                CONFIGURATION)
from nnunet_ext.cli.nnunet_commands import results_folder

TRAINERS = {
    "SeATransDiagnosisTrainer_FrozenSegmentation_Short": "SeATrans",
    "SeATransSMCADiagnosisTrainer_FrozenSegmentation_Short": "SeATrans + SMCA",
    "SeATransSMCALesionDiagnosisTrainer_FrozenSegmentation_Short": "SeATrans + SMCA, centres from the lesion",
}
RESULT_FILE_NAME = "smca_convergence.json"
PLOT_FILE_NAME = "smca_convergence.png"
LOGGED_SCORE = "val_diagnosis_auc"


def auc_per_epoch(environment: dict, trainer: str, fold: int) -> list:
    """The trainer's logged validation AUC after each epoch (None where undefined)."""
    checkpoint = results_folder(environment, DATASET_NAME, trainer, CONFIGURATION) / f"fold_{fold}" / \
        "checkpoint_final.pth"
    logging = torch.load(checkpoint, map_location="cpu", weights_only=False)["logging"]
    values = logging[LOGGED_SCORE]
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v) for v in values]


def curve_statistics(curves: list) -> dict:
    """Per epoch the mean and sd over the runs (undefined values left out), and per run the mean AUC over the
    epochs (the area under its curve, normalised)."""
    epochs = max(len(c) for c in curves)
    per_epoch = [[c[e] for c in curves if e < len(c) and c[e] is not None] for e in range(epochs)]
    areas = [float(np.mean([v for v in c if v is not None])) for c in curves if any(v is not None for v in c)]
    return {"mean": [float(np.mean(v)) if v else None for v in per_epoch],
            "sd": [float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for v in per_epoch],
            "area": areas}


def plot_curves(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    figure, axis = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    for trainer, row in result["trainers"].items():
        stats = row["statistics"]
        epochs = np.arange(1, len(stats["mean"]) + 1)
        mean = np.array([np.nan if m is None else m for m in stats["mean"]])
        sd = np.array(stats["sd"])
        line, = axis.plot(epochs, mean, marker="o", markersize=3, label=row["method"])
        axis.fill_between(epochs, mean - sd, mean + sd, color=line.get_color(), alpha=0.15)
    axis.set_xlabel("epoch")
    axis.set_ylabel("validation AUC (epoch's batches)")
    axis.set_ylim(0.0, 1.0)
    axis.axhline(0.5, color="grey", linewidth=0.5, linestyle=":")
    runs = len(result["folds"]) * result["repeats"]
    axis.set_title(f"BraTS slices, frozen segmentation; mean +- sd of {runs} runs", fontsize=9)
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def format_table(result: dict, checkpoints=(1, 3, 5, 10)) -> str:
    epochs = result["budget"]["epochs"]
    shown = [e for e in checkpoints if e <= epochs] + ([epochs] if epochs not in checkpoints else [])
    header = ["method", *(f"AUC epoch {e}" for e in shown), "mean AUC over epochs", "final validation AUC (all slices)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]

    def cell(values):
        values = [v for v in values if v is not None]
        if not values:
            return "n/a"
        return f"{np.mean(values):.3f} +- {np.std(values, ddof=1) if len(values) > 1 else 0.0:.3f}"
    for row in result["trainers"].values():
        curves = [run["auc_per_epoch"] for run in row["runs"]]
        cells = [row["method"], *(cell([c[e - 1] for c in curves if e - 1 < len(c)]) for e in shown),
                 cell(row["statistics"]["area"]), cell([run["final_auc"] for run in row["runs"]])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def measure(work_dir: Path, budget: dict, folds: list, repeats: int, trainers: list) -> dict:
    start = time.perf_counter()
    environment = environment_with_budget(work_dir, budget)
    prepare_dataset(environment, work_dir)
    result = {"dataset": DATASET_NAME, "budget": budget, "folds": folds, "repeats": repeats,
              "segmentation": {}, "trainers": {t: {"method": TRAINERS[t], "runs": []} for t in trainers}}
    for fold in folds:
        result.setdefault("validation_patients", {})[fold] = validation_patients(environment, fold)
        segmentation = train_segmentation_model(environment, work_dir, fold, SEGMENTATION_TRAINER)
        result["segmentation"][fold] = segmentation
        for repeat in range(repeats):
            for trainer in trainers:  # interleaved, so that machine load affects every trainer alike
                run_environment = repeat_environment(environment, work_dir, repeat)
                trained = train_diagnosis_trainer(trainer, run_environment, work_dir, fold,
                                                  segmentation["folder"], repeat)
                result["trainers"][trainer]["runs"].append({
                    "fold": fold, "repeat": repeat, "seconds": trained["seconds"],
                    "final_auc": trained["metrics"]["AUC"],
                    "auc_per_epoch": auc_per_epoch(run_environment, trainer, fold)})
    for row in result["trainers"].values():
        row["statistics"] = curve_statistics([run["auc_per_epoch"] for run in row["runs"]])
    result["table"] = format_table(result)
    result["wall_seconds"] = time.perf_counter() - start
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=Path("smca_convergence_work"))
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--val-iterations", type=int, default=8)
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--trainers", nargs="+", default=list(TRAINERS), choices=list(TRAINERS), metavar="TRAINER")
    parser.add_argument("--report", action="store_true", help="print the table of an earlier run's JSON and redraw")
    args = parser.parse_args(argv)
    work_dir = args.work_dir.resolve()
    if args.report:
        result = json.loads((work_dir / RESULT_FILE_NAME).read_text())
    else:
        budget = {"epochs": args.epochs, "iterations": args.iterations, "val_iterations": args.val_iterations}
        result = measure(work_dir, budget, sorted(set(args.folds)), args.repeats, args.trainers)
        (work_dir / RESULT_FILE_NAME).write_text(json.dumps(result, indent=2) + "\n")
    plot_curves(result, work_dir / PLOT_FILE_NAME)
    print(result["table"])
    print(f"\nsegmentation models (validation Dice): "
          + ", ".join(f"fold {f}: {m['dice_foreground_mean']:.3f}" for f, m in result["segmentation"].items()))
    print(f"wall time {result['wall_seconds']:.0f} s; written {work_dir / RESULT_FILE_NAME}, "
          f"{work_dir / PLOT_FILE_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
