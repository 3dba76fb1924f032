"""Div-attention's pipeline measured (the coarse-to-fine issue): Stage 1 alone, Stage 1 with a click, and the two
stages, at equal total budget, on the synthetic lesion dataset and on the real BraTS 2013 sample (3D, one held-out
patient), Dice per class from ``nnUNetv2_evaluate_folder``.

Per dataset and repeat, every model through nnU-Net's own commands on the CPU, fold ``all`` (every training case):

* **Stage 1 alone**: ``PlainUNetTrainer_Short`` for ``E`` epochs; ``nnUNetv2_predict`` of the test cases.
* **Stage 1 with a click**: ``ClickGuidedTrainer_Short`` for ``E`` epochs; ``nnunet_ext_predict
  --simulated_clicks labelsTs`` (one click inside each reference component, seed 0).
* **Two stages**: ``ClickGuidedTrainer_Short`` for ``E/2`` epochs; ``nnunet_ext_crops`` around the training cases'
  targets (``--crop-size`` voxels per axis), ``nnUNetv2_plan_and_preprocess``, ``DivAttentionTrainer_Short`` on the
  crops for ``E/2`` epochs; ``nnunet_ext_coarse_to_fine`` with the same simulated clicks. The crop dataset is made
  once per dataset from the training cases (the crops do not depend on the repeat). A run interrupted and started
  again with the same work dir skips the models it finished. Equal budget: the two
  stages share the epochs (and iterations per epoch) that each single-stage model gets. Equal iterations are not
  equal seconds: a crop's patch (``--crop-size`` cubed) can hold more voxels than the dataset's own patch (on the
  synthetic cases 48^3 against 24 x 40 x 40), so the table gives the seconds of the runs that trained their models
  (a resumed run's seconds leave its training out and are not counted).

nnU-Net does not seed its runs: repeats differ by initialisation, sampling and augmentation. The table gives
mean +- sd over the repeats; ``<work dir>/coarse_to_fine_comparison.json`` holds every run.

    python -m benchmarks.coarse_to_fine_comparison [--datasets synthetic brats] [--epochs 20] [--iterations 10] \
        [--repeats 2] [--crop-size 48] [--work-dir coarse_to_fine_work]
"""

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

from nnunet_ext.cli.nnunet_commands import (evaluate, nnunet_environment, plan_and_preprocess, predict,
                                            results_folder, run_nnunet_command, train)
from nnunet_ext.datasets.brats2013 import convert_brats2013_sample, default_brats_sample_dir
from nnunet_ext.datasets.synthetic import generate_synthetic_dataset

DATASETS = {"synthetic": (530, "Dataset530_SyntheticLesions"), "brats": (502, "Dataset502_BraTS2013Sample")}
CROP_DATASET_OFFSET = 100  # the crop dataset of dataset d is d + 100
CONFIGURATION, FOLD = "3d_fullres", "all"
RESULT_FILE_NAME = "coarse_to_fine_comparison.json"
METHODS = ("Stage 1 alone", "Stage 1 with a click", "two stages (click, crops, Div-attention)")


def prepare(kind: str, environment: dict, work_dir: Path) -> Path:
    dataset_id, name = DATASETS[kind]
    raw = Path(environment["nnUNet_raw"])
    if not (raw / name).exists():
        if kind == "synthetic":
            generate_synthetic_dataset(raw, dataset_id=dataset_id, num_training=12, num_test=4, shape=(24, 40, 40))
        else:
            convert_brats2013_sample(default_brats_sample_dir(), raw, dataset_id=dataset_id)
    if not (Path(environment["nnUNet_preprocessed"]) / name / "nnUNetPlans.json").exists():
        plan_and_preprocess(dataset_id, [CONFIGURATION], environment, work_dir / "logs" / f"plan_{kind}.log")
    return raw / name


def dice_per_class(summary: dict) -> dict:
    return {label: values["Dice"] for label, values in summary["mean"].items()}


def train_once(dataset_id: int, trainer: str, environment: dict, log: Path) -> bool:
    """``nnUNetv2_train`` unless an earlier run of the benchmark already trained that model (resumable); True when
    it trained (the method's seconds then include the training)."""
    name = next(p.name for p in Path(environment["nnUNet_preprocessed"]).glob(f"Dataset{dataset_id:03d}_*"))
    final = results_folder(environment, name, trainer, CONFIGURATION) / f"fold_{FOLD}" / "checkpoint_final.pth"
    if final.is_file():
        return False
    train(dataset_id, CONFIGURATION, FOLD, trainer, environment, log)
    return True


def run_repeat(kind: str, source: Path, environment: dict, work_dir: Path, budget: dict, crop_size: int,
               repeat: int) -> dict:
    dataset_id, _ = DATASETS[kind]
    logs = work_dir / "logs" / f"{kind}_{repeat}"
    results = work_dir / f"results_{kind}_{repeat}"
    full = dict(environment, nnUNet_results=str(results), NNUNET_EXT_EPOCHS=str(budget["epochs"]))
    half = dict(full, NNUNET_EXT_EPOCHS=str(max(1, budget["epochs"] // 2)))
    references, images = source / "labelsTs", source / "imagesTs"
    runs = {}

    start = time.perf_counter()
    trained = train_once(dataset_id, "PlainUNetTrainer_Short", full, logs / "plain.log")
    output = work_dir / f"predictions_{kind}_{repeat}" / "plain"
    predict(images, output, dataset_id, CONFIGURATION, FOLD, "PlainUNetTrainer_Short", full, logs / "plain_pred.log")
    runs[METHODS[0]] = {"dice": dice_per_class(evaluate(references, output, full, logs / "plain_eval.log")),
                        "seconds": time.perf_counter() - start, "trained": trained}

    start = time.perf_counter()
    trained = train_once(dataset_id, "ClickGuidedTrainer_Short", full, logs / "click.log")
    output = work_dir / f"predictions_{kind}_{repeat}" / "click"
    shutil.rmtree(output, ignore_errors=True)
    run_nnunet_command(["nnunet_ext_predict", "-i", images, "-o", output, "-d", dataset_id, "-c", CONFIGURATION,
                        "-f", FOLD, "-tr", "ClickGuidedTrainer_Short", "-device", "cpu", "--simulated_clicks",
                        references], full, logs / "click_pred.log")
    runs[METHODS[1]] = {"dice": dice_per_class(evaluate(references, output, full, logs / "click_eval.log")),
                        "seconds": time.perf_counter() - start, "trained": trained}

    start = time.perf_counter()
    half_results = dict(half, nnUNet_results=str(results) + "_two_stages")
    trained = train_once(dataset_id, "ClickGuidedTrainer_Short", half_results, logs / "stage1.log")
    crop_id = dataset_id + CROP_DATASET_OFFSET
    crop_name = f"Dataset{crop_id:03d}_{source.name.split('_', 1)[1]}Crops"
    if not (Path(environment["nnUNet_preprocessed"]) / crop_name / "nnUNetPlans.json").is_file():
        run_nnunet_command(["nnunet_ext_crops", "--raw", environment["nnUNet_raw"], "-s", source, "-d", crop_id,
                            "--size", crop_size, "--overwrite"], half_results, logs / "crops.log")
        plan_and_preprocess(crop_id, [CONFIGURATION], half_results, logs / "plan_crops.log")
    trained = train_once(crop_id, "DivAttentionTrainer_Short", half_results, logs / "stage2.log") and trained
    output = work_dir / f"predictions_{kind}_{repeat}" / "two_stages"
    shutil.rmtree(output, ignore_errors=True)
    run_nnunet_command(["nnunet_ext_coarse_to_fine", "-i", images, "-o", output, "--stage1", dataset_id,
                        CONFIGURATION, "ClickGuidedTrainer_Short", "--stage1_folds", FOLD, "--stage2", crop_id,
                        CONFIGURATION, "DivAttentionTrainer_Short", "--stage2_folds", FOLD, "--simulated_clicks",
                        references, "-device", "cpu"], half_results, logs / "coarse_to_fine.log")
    record = json.loads((output / "coarse_to_fine.json").read_text())
    runs[METHODS[2]] = {"dice": dice_per_class(evaluate(references, output, full, logs / "two_eval.log")),
                        "seconds": time.perf_counter() - start, "trained": trained,
                        "crops": sum(len(c["crops"]) for c in record["cases"].values())}
    return runs


def cell(values) -> str:
    return f"{statistics.mean(values):.3f} +- {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"


def format_table(result: dict) -> str:
    lines = []
    for kind, repeats in result["runs"].items():
        if not repeats:
            continue
        labels = list(next(iter(repeats[0].values()))["dice"])
        lines += [f"**{kind}** ({len(repeats)} repeats, {result['budget']['epochs']} epochs x "
                  f"{result['budget']['iterations']} iterations per model, crops {result['crop_size']}^3)", "",
                  "| method | " + " | ".join(f"Dice {label}" for label in labels) + " | mean Dice | seconds "
                  "(runs that trained) |",
                  "|---|" + "---|" * (len(labels) + 2)]
        for method in METHODS:
            dice = [[run[method]["dice"][label] for run in repeats] for label in labels]
            means = [statistics.mean(run[method]["dice"][label] for label in labels) for run in repeats]
            timed = [run[method]["seconds"] for run in repeats if run[method].get("trained", True)]
            seconds = f"{statistics.mean(timed):.0f}" if timed else "-"
            lines.append(f"| {method} | " + " | ".join(cell(d) for d in dice) + f" | {cell(means)} | {seconds} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=Path("coarse_to_fine_work"))
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--crop-size", type=int, default=48)
    parser.add_argument("--report", action="store_true", help="print the table of an earlier run")
    args = parser.parse_args(argv)
    work_dir = args.work_dir.resolve()
    result_file = work_dir / RESULT_FILE_NAME
    if args.report:
        print(format_table(json.loads(result_file.read_text())))
        return 0
    budget = {"epochs": args.epochs, "iterations": args.iterations, "val_iterations": 2}
    environment = nnunet_environment(work_dir, budget=budget)
    result = {"budget": budget, "crop_size": args.crop_size, "runs": {}}
    start = time.perf_counter()
    for kind in args.datasets:
        source = prepare(kind, environment, work_dir)
        result["runs"][kind] = []
        for repeat in range(args.repeats):
            print(f"{kind}, repeat {repeat} ...", flush=True)
            result["runs"][kind].append(run_repeat(kind, source, environment, work_dir, budget, args.crop_size,
                                                   repeat))
            print(json.dumps(result["runs"][kind][-1]), flush=True)
            result_file.write_text(json.dumps(result, indent=2) + "\n")
    result["wall_seconds"] = time.perf_counter() - start
    result_file.write_text(json.dumps(result, indent=2) + "\n")
    print(format_table(result))
    print(f"wall time {result['wall_seconds']:.0f} s; written {result_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
