"""The ablation of issue 11: plain nnU-Net, the Div-attention readings and the dual-loss trainers, at equal budget on
the real BraTS 2013 sample (3 training cases, 1 held-out case; regions whole tumour, tumour core, enhancing tumour).

Every trainer is trained on fold "all" with the same short budget, ``--runs`` times (each run a fresh nnU-Net
training with its own random initialisation and sampling; the runs are interleaved, trainer by trainer, so that a
drift of the machine hits all alike), predicts the held-out case and is scored by nnU-Net's Dice per region and the
image-wise F1 of presence per axial slice. The table gives, per trainer, the mean and the spread (max - min) over the
runs, the median epoch time relative to plain nnU-Net's (from nnU-Net's own "Epoch time" log lines) and the
parameters.

    python -m benchmarks.ablation_brats [--epochs 10] [--iterations 10] [--runs 2] [--trainers ...]
    python -m benchmarks.ablation_brats --report [--work-dir ...] [--trainers ...]

``--report`` trains nothing: it prints the table of the runs already in ``--work-dir`` (every trainer and run
whose prediction was evaluated), e.g. of an ablation stopped before its last run.

The grid and how it is pruned: the attention form (the paper's divergence in [0, 1], the default since this
ablation; issue 2's N*softmax, ``_SoftmaxMap``) and the
residual are options of the junction between prediction logits; the feature-level placement (masks from the stage
heads or from the features) is a second network. Each option is measured against today's default one at a time,
not in every combination (6 Div-attention networks instead of 2 x 2 x 3); softmax masks are options of label
datasets only and BraTS is region-based (the trainer refuses them there), so they are not in this table.
"""

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

from nnunet_ext.cli.nnunet_commands import nnunet_environment
from nnunet_ext.reliability.network_builds import NetworkSetting, build_network

from nnunet_ext.evaluation.lesion_presence import summarize_lesion_presence

from benchmarks.compare_dual_loss_brats import REGION_KEYS, REGIONS, prepared_brats, train_and_evaluate

PLAIN = "PlainUNetTrainer_Short"
TRAINERS = (PLAIN, "DivAttentionTrainer_Short", "DivAttentionTrainer_SoftmaxMap_Short",
            "DivAttentionTrainer_NoResidual_Short", "DivAttentionFeaturesTrainer_Short",
            "DivAttentionFeaturesTrainer_FeatureMasks_Short", "UNetDualLossTrainer_Short", "LNetTrainer_Short")
EPOCH_TIME = re.compile(r"Epoch time: ([0-9.]+) s")


def median_epoch_seconds(train_log: Path) -> float:
    times = [float(t) for t in EPOCH_TIME.findall(train_log.read_text(errors="replace"))]
    return statistics.median(times[1:] or times)  # the first epoch also pays for starting the workers


def parameter_count(trainer: str, plans_file: Path, dataset_json_file: Path) -> int:
    setting = NetworkSetting(json.loads(plans_file.read_text()), "3d_fullres",
                             json.loads(dataset_json_file.read_text()))
    return sum(p.numel() for p in build_network(trainer, setting).parameters())


def evaluated_row(trainer: str, logs: Path, raw: Path, dataset_json: dict) -> dict:
    """The row of :func:`train_and_evaluate` (and ``epoch_seconds``) rebuilt from what a finished run left in
    ``logs``: nnU-Net's ``summary.json`` beside the predictions and the training log; None if the run did not get
    that far."""
    predictions = logs / "predictions" / trainer
    train_log = logs / f"train_{trainer}.log"
    if not (predictions / "summary.json").is_file() or not train_log.is_file():
        return None
    dice = json.loads((predictions / "summary.json").read_text())
    slices = summarize_lesion_presence(predictions, raw / "labelsTs", dataset_json, per_axial_slice=True)
    return {"trainer": trainer, "dice": {r: dice["mean"][REGION_KEYS[r]]["Dice"] for r in REGIONS},
            "slice_f1": {r: slices["classes"][r]["F1"] for r in REGIONS}, "slices": slices["n_images"],
            "epoch_seconds": median_epoch_seconds(train_log)}


def mean_and_spread(values) -> str:
    values = list(values)
    return f"{statistics.mean(values):.3f} ± {(max(values) - min(values)) / 2:.3f}"


def ablation_table(runs: dict, parameters: dict) -> str:
    """``runs``: trainer -> list of :func:`train_and_evaluate` rows (with ``epoch_seconds``)."""
    plain_epoch = statistics.median(r["epoch_seconds"] for r in runs[PLAIN])
    header = (["trainer"] + [f"Dice {r}" for r in REGIONS] + ["mean Dice"] + [f"slice F1 {r}" for r in REGIONS]
              + ["epoch time / plain", "parameters"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for trainer, rows in runs.items():
        cells = [mean_and_spread(row["dice"][r] for row in rows) for r in REGIONS]
        cells.append(mean_and_spread(statistics.mean(row["dice"].values()) for row in rows))
        cells += [mean_and_spread(row["slice_f1"][r] for row in rows) for r in REGIONS]
        epoch = statistics.median(r["epoch_seconds"] for r in rows)
        cells += [f"{epoch / plain_epoch:.3f}x", f"{parameters[trainer] / 1e6:.3f} M"]
        lines.append("| " + " | ".join([trainer, *cells]) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=Path("ablation_work"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--runs", type=int, default=2, help="independent trainings per trainer (mean and spread)")
    parser.add_argument("--trainers", nargs="+", default=list(TRAINERS))
    parser.add_argument("--report", action="store_true",
                        help="train nothing; print the table of the runs already in --work-dir")
    args = parser.parse_args(argv)
    if PLAIN not in args.trainers:
        parser.error(f"the table is relative to {PLAIN}: keep it among --trainers")
    work_dir = args.work_dir.resolve()
    budget = {"epochs": args.epochs, "iterations": args.iterations, "val_iterations": 2}
    shared = nnunet_environment(work_dir, budget=budget)
    raw, dataset_json = prepared_brats(work_dir, shared)
    if not args.report:
        for run in range(args.runs):
            environment = dict(shared, nnUNet_results=str(work_dir / f"run_{run}" / "nnUNet_results"))
            logs = work_dir / f"run_{run}"
            for trainer in args.trainers:
                print(f"run {run + 1}/{args.runs}: {trainer} ({args.epochs} x {args.iterations} iterations) ...",
                      flush=True)
                row = train_and_evaluate(trainer, environment, raw, dataset_json, logs)
                print(f"  mean Dice {statistics.mean(row['dice'].values()):.3f}, {row['seconds']:.0f} s", flush=True)
    runs = {trainer: [] for trainer in args.trainers}
    for logs in sorted(work_dir.glob("run_*")):
        for trainer in args.trainers:
            row = evaluated_row(trainer, logs, raw, dataset_json)
            if row is not None:
                runs[trainer].append(row)
    runs = {trainer: rows for trainer, rows in runs.items() if rows}
    if PLAIN not in runs:
        parser.error(f"no evaluated run of {PLAIN} in {work_dir}")
    preprocessed = Path(shared["nnUNet_preprocessed"]) / raw.name
    parameters = {t: parameter_count(t, preprocessed / "nnUNetPlans.json", preprocessed / "dataset.json")
                  for t in runs}
    counts = sorted({len(rows) for rows in runs.values()})
    print(f"\n{'/'.join(map(str, counts))} runs per trainer, held-out case of the BraTS 2013 sample; mean ± half "
          f"the range over the runs\n")
    print(ablation_table(runs, parameters))
    return 0


if __name__ == "__main__":
    sys.exit(main())
