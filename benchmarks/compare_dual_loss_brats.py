"""Plain nnU-Net against the dual-loss trainers at equal budget, on the real BraTS 2013 sample (issue 3).

Converts ../shared/data/brats2013_sample (3 training cases, 1 held-out case; FLAIR + T1c at 3 mm; regions whole
tumour, tumour core, enhancing tumour), plans and preprocesses it with nnU-Net, trains each trainer on fold "all"
with the same short budget on the CPU, predicts the held-out case with ``nnunet_ext_predict`` (nnU-Net's predictor
plus the per-case presence probabilities) and prints, per region, nnU-Net's Dice and the image-wise F1 of presence
per axial slice (``nnunet_ext.evaluation.lesion_presence``, slices of the held-out case).

    python benchmarks/compare_dual_loss_brats.py [--epochs 10] [--iterations 10] [--work-dir brats_comparison_work]

One held-out case and a CPU budget: the table shows how the trainers behave, not which is better in general.
"""

import argparse
import json
import sys
from pathlib import Path

from nnunet_ext.cli.nnunet_commands import (evaluate, nnunet_environment, plan_and_preprocess, run_nnunet_command,
                                        train)
from nnunet_ext.datasets.brats2013 import convert_brats2013_sample, default_brats_sample_dir
from nnunet_ext.evaluation.lesion_presence import summarize_lesion_presence

DATASET_ID = 502
TRAINERS = ("PlainUNetTrainer_Short", "UNetDualLossTrainer_Short", "LNetTrainer_Short")
REGIONS = ("whole_tumor", "tumor_core", "enhancing_tumor")
REGION_KEYS = {"whole_tumor": "(1, 2, 3)", "tumor_core": "(2, 3)", "enhancing_tumor": "3"}


def prepared_brats(work_dir: Path, environment: dict) -> tuple:
    """Convert, plan and preprocess the sample once (reused when present); returns (raw folder, dataset.json)."""
    raw = Path(environment["nnUNet_raw"]) / "Dataset502_BraTS2013Sample"
    if not raw.exists():
        print("converting the BraTS 2013 sample ...", flush=True)
        convert_brats2013_sample(default_brats_sample_dir(), environment["nnUNet_raw"], dataset_id=DATASET_ID)
        print("planning and preprocessing with nnU-Net ...", flush=True)
        plan_and_preprocess(DATASET_ID, ["3d_fullres"], environment, work_dir / "plan.log")
    return raw, json.loads((raw / "dataset.json").read_text())


def train_and_evaluate(trainer: str, environment: dict, raw: Path, dataset_json: dict, logs: Path) -> dict:
    """Train ``trainer`` on fold "all" (the short budget in ``environment``), predict the held-out case and score
    it: ``{"trainer", "seconds", "dice": {region: Dice}, "slice_f1": {region: F1}, "slices"}``."""
    seconds = train(DATASET_ID, "3d_fullres", "all", trainer, environment, logs / f"train_{trainer}.log")
    predictions = logs / "predictions" / trainer
    run_nnunet_command(["nnunet_ext_predict", "-i", raw / "imagesTs", "-o", predictions, "-d", DATASET_ID,
                        "-c", "3d_fullres", "-f", "all", "-tr", trainer, "-device", "cpu", "-npp", "1",
                        "-nps", "1", "--disable_tta"], environment, logs / f"predict_{trainer}.log")
    dice = evaluate(raw / "labelsTs", predictions, environment, logs / f"evaluate_{trainer}.log")
    slices = summarize_lesion_presence(predictions, raw / "labelsTs", dataset_json, per_axial_slice=True)
    return {"trainer": trainer, "seconds": seconds,
            "dice": {r: dice["mean"][REGION_KEYS[r]]["Dice"] for r in REGIONS},
            "slice_f1": {r: slices["classes"][r]["F1"] for r in REGIONS},
            "slices": slices["n_images"]}


def compare(work_dir: Path, epochs: int, iterations: int, trainers) -> list:
    environment = nnunet_environment(work_dir, budget={"epochs": epochs, "iterations": iterations,
                                                       "val_iterations": 2})
    raw, dataset_json = prepared_brats(work_dir, environment)
    rows = []
    for trainer in trainers:
        print(f"training {trainer} ({epochs} epochs x {iterations} iterations, fold all, CPU) ...", flush=True)
        rows.append(train_and_evaluate(trainer, environment, raw, dataset_json, work_dir))
    return rows


def format_table(rows: list) -> str:
    header = (f"{'trainer':<24}" + "".join(f"{'Dice ' + r:>22}" for r in REGIONS)
              + "".join(f"{'slice F1 ' + r:>26}" for r in REGIONS) + f"{'train':>8}")
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = "".join(f"{row['dice'][r]:>22.3f}" for r in REGIONS)
        cells += "".join(f"{row['slice_f1'][r]:>26.3f}" for r in REGIONS)
        lines.append(f"{row['trainer']:<24}{cells}{row['seconds']:>7.0f}s")
    lines.append(f"(held-out case brats_2013_pat0006_1; slice F1 over its {rows[0]['slices']} axial slices)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=Path("brats_comparison_work"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--trainers", nargs="+", default=list(TRAINERS))
    args = parser.parse_args(argv)
    rows = compare(args.work_dir.resolve(), args.epochs, args.iterations, args.trainers)
    print()
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
