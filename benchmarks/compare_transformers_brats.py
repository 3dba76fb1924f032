"""The hybrid transformer networks against plain nnU-Net 2D at equal budget on the real BraTS 2013 sample as 2D
slices (issue 14), split by patient as ``Dataset503_BraTS2013Slices`` is (``benchmarks/compare_diagnosis_brats.py``
prepares it: axial slices at 3 mm in plane, segmentation target the whole tumour, leave-one-patient-out folds).

Per fold and repeat, every trainer is trained through ``nnUNetv2_train 503 2d <fold> -tr <trainer>`` on the CPU with
the same epochs x iterations (the ``_Short`` budget), and scored by nnU-Net's own final validation on the held-out
patient's slices: ``summary.json`` ``foreground_mean`` Dice (the whole tumour, the dataset's one region). Repeats
train into their own ``nnUNet_results`` (nnU-Net does not seed its runs: repeats differ by initialisation, sampling
and augmentation). The table gives mean +- sd over folds x repeats, each run's Dice, parameters and seconds of
``nnUNetv2_train``; the results go to ``<work dir>/transformer_comparison.json``, written after every run, and
``--report`` prints the table of the runs finished so far.

    python -m benchmarks.compare_transformers_brats [--epochs 10] [--iterations 10] [--folds 0] [--repeats 2] \
        [--width full|tiny] [--trainers ...] [--work-dir transformer_comparison_work] [--report]

``--width tiny`` compares the ``_Tiny`` variants (64 wide, 4 heads), the budget a CPU allows for every network;
``full`` the papers' ViT-B width. Four patients, a few epochs on a CPU and no pretrained weights (the papers start
from ImageNet ViTs): the table shows how these networks behave at this budget, not which is better in general.
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

from nnunet_ext.cli.nnunet_commands import results_folder, train

from benchmarks.compare_diagnosis_brats import (CONFIGURATION, DATASET_ID, DATASET_NAME, environment_with_budget,
                                                prepare_dataset, repeat_environment, validation_patients)

PLAIN = "PlainUNetTrainer_Short"
NETWORKS = ("TransUNetTrainer", "TransUNetTrainer_3b", "TransUNetTrainer_1b", "TransUNetTrainer_0b", "UNETRTrainer",
            "UNETRTrainer_3b", "CATSTrainer", "CATSTrainer_3b", "TransFuseTrainer")
RESULT_FILE_NAME = "transformer_comparison.json"


def trainers_of(width: str) -> list:
    suffix = "_Tiny_Short" if width == "tiny" else "_Short"
    return [PLAIN, *(network + suffix for network in NETWORKS)]


def run_one(trainer: str, environment: dict, work_dir: Path, fold: int, repeat: int) -> dict:
    print(f"fold {fold}, repeat {repeat}: training {trainer} ...", flush=True)
    seconds = train(DATASET_ID, CONFIGURATION, fold, trainer, environment,
                    work_dir / "logs" / f"fold_{fold}_repeat_{repeat}_{trainer}.log")
    folder = results_folder(environment, DATASET_NAME, trainer, CONFIGURATION)
    summary = json.loads((folder / f"fold_{fold}" / "validation" / "summary.json").read_text())
    dice = summary["foreground_mean"]["Dice"]
    print(f"fold {fold}, repeat {repeat}: {trainer} {seconds:.0f} s, Dice {dice:.3f}", flush=True)
    return {"trainer": trainer, "fold": fold, "repeat": repeat, "dice": dice, "seconds": seconds}


def parameter_counts(trainers, environment: dict) -> dict:
    from nnunet_ext.reliability.network_builds import NetworkSetting, build_network

    preprocessed = Path(environment["nnUNet_preprocessed"]) / DATASET_NAME
    setting = NetworkSetting(json.loads((preprocessed / "nnUNetPlans.json").read_text()), CONFIGURATION,
                             json.loads((preprocessed / "dataset.json").read_text()))
    return {t: sum(p.numel() for p in build_network(t, setting).parameters()) for t in trainers}


def format_table(runs: list, parameters: dict) -> str:
    rows = ["| trainer | Dice (mean +- sd) | runs | parameters | x plain | train s (mean) |", "|---|---|---|---|---|---|"]
    for trainer in parameters:
        dice = [r["dice"] for r in runs if r["trainer"] == trainer]
        if not dice:
            continue
        seconds = statistics.mean(r["seconds"] for r in runs if r["trainer"] == trainer)
        spread = f"{statistics.mean(dice):.3f} +- {statistics.stdev(dice):.3f}" if len(dice) > 1 else f"{dice[0]:.3f}"
        rows.append(f"| {trainer} | {spread} | {', '.join(f'{d:.3f}' for d in dice)} | "
                    f"{parameters[trainer] / 1e6:.1f} M | {parameters[trainer] / parameters[PLAIN]:.2f} | "
                    f"{seconds:.0f} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("transformer_comparison_work"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--val-iterations", type=int, default=2)
    parser.add_argument("--folds", type=int, nargs="+", default=[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--width", choices=("full", "tiny"), default="tiny")
    parser.add_argument("--trainers", nargs="+", default=None)
    parser.add_argument("--report", action="store_true", help="print the table of the finished runs, train nothing")
    arguments = parser.parse_args(argv)
    work_dir = arguments.work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    result_file = work_dir / RESULT_FILE_NAME
    budget = {"epochs": arguments.epochs, "iterations": arguments.iterations,
              "val_iterations": arguments.val_iterations}
    environment = environment_with_budget(work_dir, budget)
    trainers = arguments.trainers or trainers_of(arguments.width)
    result = json.loads(result_file.read_text()) if result_file.is_file() else {"runs": []}
    if not arguments.report:
        prepare_dataset(environment, work_dir)
        result.update(dataset=DATASET_NAME, configuration=CONFIGURATION, budget=budget, folds=arguments.folds,
                      repeats=arguments.repeats, validation_patients={
                          fold: validation_patients(environment, fold) for fold in arguments.folds})
        done = {(r["trainer"], r["fold"], r["repeat"]) for r in result["runs"]}
        for fold in arguments.folds:
            for repeat in range(arguments.repeats):
                for trainer in trainers:  # interleaved, so that a drift of the machine hits all alike
                    if (trainer, fold, repeat) in done:
                        continue
                    result["runs"].append(run_one(trainer, repeat_environment(environment, work_dir, repeat),
                                                  work_dir, fold, repeat))
                    result_file.write_text(json.dumps(result, indent=1))
    parameters = parameter_counts([t for t in trainers if any(r["trainer"] == t for r in result["runs"])],
                                  environment)
    if PLAIN not in parameters:
        parameters = {PLAIN: parameter_counts([PLAIN], environment)[PLAIN], **parameters}
    table = format_table(result["runs"], parameters)
    print(f"\n{DATASET_NAME}, {CONFIGURATION}, {budget}, folds {arguments.folds}\n\n{table}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
