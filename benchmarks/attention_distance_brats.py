"""How many transformer blocks to keep: the mean attention distance of every block and head of TransUNet with 12
and with 3 blocks, trained on the real BraTS 2013 sample as 2D slices (the attention-map issue; the seminar in
``../shared/papers/004``: "TransUNet: receptive field seems global, starting from the first block! -> Keep 1 and 3
blocks").

``Dataset503_BraTS2013Slices`` (prepared as ``benchmarks/compare_diagnosis_brats.py`` does: axial slices at 3 mm,
leave-one-patient-out folds). Each trainer (the papers' ViT-B width, random initialisation) trains through
``nnUNetv2_train 503 2d <fold>`` at the same budget; then ``nnunet_ext_attention --maps distance`` reads the
attention of every block and head over every slice of the fold's held-out patient (each slice one case, tiles of
nnU-Net's sliding window). The plot of both models' head-mean distances against the block index (with each head,
the uniform attention's distance and the criterion's threshold) goes to ``<work dir>/attention_distance.png``, the
numbers to ``attention_distance_comparison.json``.

    python -m benchmarks.attention_distance_brats [--epochs 15] [--iterations 10] [--fold 0] \
        [--trainers TransUNetTrainer_Short TransUNetTrainer_3b_Short] [--work-dir attention_distance_work]

TransUNet's tokens are the CNN's stride-16 features: on these 80x80 slices a 5x5 grid of 48 mm cells.
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.compare_diagnosis_brats import (CONFIGURATION, DATASET_ID, DATASET_NAME, environment_with_budget,
                                                prepare_dataset, validation_patients)
from nnunet_ext.cli.nnunet_commands import results_folder, run_nnunet_command, train

TRAINERS = ("TransUNetTrainer_Short", "TransUNetTrainer_3b_Short")
RESULT_FILE_NAME = "attention_distance_comparison.json"
PLOT_FILE_NAME = "attention_distance.png"


def validation_images(environment: dict, fold: int, folder: Path) -> Path:
    """The raw images of the fold's validation cases, copied into ``folder`` (the command's ``-i``)."""
    preprocessed = Path(environment["nnUNet_preprocessed"]) / DATASET_NAME
    cases = json.loads((preprocessed / "splits_final.json").read_text())[fold]["val"]
    raw = Path(environment["nnUNet_raw"]) / DATASET_NAME / "imagesTr"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for case in cases:
        for image in raw.glob(f"{case}_*.nii.gz"):
            shutil.copy(image, folder / image.name)
    return folder


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(6.0, 3.6), dpi=100)
    for (trainer, summary), colour in zip(result["models"].items(), ("#d62728", "#1f77b4", "#2ca02c")):
        values = np.asarray(summary["per_block_and_head"])
        blocks = np.arange(1, values.shape[0] + 1)
        for head in range(values.shape[1]):
            axis.scatter(blocks, values[:, head], s=6, color=colour, alpha=0.25)
        label = f"{trainer.replace('_Short', '')} (first global block: {summary['first_global_block']})"
        axis.plot(blocks, summary["per_block_head_mean"], marker="o", color=colour, label=label)
    uniform = next(iter(result["models"].values()))["uniform_attention_distance"]
    fraction = next(iter(result["models"].values()))["global_fraction"]
    axis.axhline(uniform, color="grey", linestyle="--", linewidth=1, label="uniform attention")
    axis.axhline(fraction * uniform, color="grey", linestyle=":", linewidth=1, label=f"{fraction} x uniform")
    axis.set_xlabel("block")
    axis.set_ylabel("mean attention distance (mm)")
    axis.set_ylim(bottom=0)
    axis.set_xticks(range(1, 13))
    axis.set_title(f"TransUNet on BraTS slices, patient {', '.join(result['validation_patients'])} "
                   f"({result['budget']['epochs']} x {result['budget']['iterations']} iterations); dots: heads",
                   fontsize=8)
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def measure(work_dir: Path, budget: dict, fold: int, trainers) -> dict:
    start = time.perf_counter()
    environment = environment_with_budget(work_dir, budget)
    prepare_dataset(environment, work_dir)
    images = validation_images(environment, fold, work_dir / f"validation_images_fold_{fold}")
    result = {"dataset": DATASET_NAME, "budget": budget, "fold": fold,
              "validation_patients": validation_patients(environment, fold),
              "validation_slices": len(list(images.glob("*_0000.nii.gz"))), "models": {}, "seconds": {}}
    for trainer in trainers:
        print(f"training {trainer} ...", flush=True)
        result["seconds"][trainer] = train(DATASET_ID, CONFIGURATION, fold, trainer, environment,
                                           work_dir / "logs" / f"train_{trainer}.log")
        output = work_dir / f"maps_{trainer}"
        print(f"attention distances of {trainer} on {result['validation_slices']} slices ...", flush=True)
        run_nnunet_command(["nnunet_ext_attention", "-i", images, "-o", output, "-d", DATASET_ID, "-c",
                            CONFIGURATION, "-f", fold, "-tr", trainer, "-device", "cpu", "--maps", "distance",
                            "--overwrite_outputs"], environment, work_dir / "logs" / f"attention_{trainer}.log")
        summary = json.loads((output / "attention_distance.json").read_text())
        summary.pop("per_case")
        summary["dice"] = json.loads((results_folder(environment, DATASET_NAME, trainer, CONFIGURATION)
                                      / f"fold_{fold}" / "validation" / "summary.json").read_text()
                                     )["foreground_mean"]["Dice"]
        result["models"][trainer] = summary
        print(f"{trainer}: head-mean distance per block {summary['per_block_head_mean']} mm, uniform "
              f"{summary['uniform_attention_distance']} mm, first global block {summary['first_global_block']}, "
              f"validation Dice {summary['dice']:.3f}", flush=True)
    result["wall_seconds"] = time.perf_counter() - start
    return result


def format_table(result: dict) -> str:
    lines = ["| model | validation Dice | head-mean distance per block (mm) | first global block |", "|---|---|---|---|"]
    for trainer, summary in result["models"].items():
        distances = ", ".join(f"{d:.0f}" for d in summary["per_block_head_mean"])
        lines.append(f"| {trainer.replace('_Short', '')} | {summary['dice']:.3f} | {distances} | "
                     f"{summary['first_global_block']} |")
    uniform = next(iter(result["models"].values()))["uniform_attention_distance"]
    return "\n".join(lines) + f"\n\nuniform attention: {uniform:.0f} mm on the 5x5 token grid"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=Path("attention_distance_work"))
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--trainers", nargs="+", default=list(TRAINERS))
    parser.add_argument("--report", action="store_true", help="redraw and print an earlier run's result")
    args = parser.parse_args(argv)
    work_dir = args.work_dir.resolve()
    if args.report:
        result = json.loads((work_dir / RESULT_FILE_NAME).read_text())
    else:
        result = measure(work_dir, {"epochs": args.epochs, "iterations": args.iterations, "val_iterations": 2},
                         args.fold, args.trainers)
        (work_dir / RESULT_FILE_NAME).write_text(json.dumps(result, indent=2) + "\n")
    plot(result, work_dir / PLOT_FILE_NAME)
    print(format_table(result))
    print(f"written {work_dir / RESULT_FILE_NAME}, {work_dir / PLOT_FILE_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
