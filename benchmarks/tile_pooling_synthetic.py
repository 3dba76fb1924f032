"""The tile pooling rules of a diagnosis (``mean``, ``foreground_weighted``, ``max``; see
``nnunet_ext.diagnosis.aggregation``) on 3D cases much larger than the patch (issue 12).

nnU-Net caps its patch at the median case shape, so on the project's small synthetic cases every case is one tile
and the rules agree. Here:

1. a synthetic organ/lesion CT dataset (``nnunet_ext.datasets.synthetic``) of large cases (default 40 x 96 x 96
   voxels), every second case without lesion, its image-level label "lesion" / "no lesion";
2. nnU-Net plans and preprocesses ``3d_fullres``; then the plans' patch is set, along every axis, to the largest
   multiple of the network's total stride that is at most half the case (the planned architecture unchanged; the
   network is fully convolutional), so that every case is at least two patches along every axis;
3. a segmentation model (``PlainUNetTrainer_Short``) and, per ``--repeats``, diagnosis trainers on its frozen
   segmentation are trained through ``nnUNetv2_train`` on the CPU (fold 0);
4. each trained diagnosis model predicts the held-out test cases through nnU-Net's predictor (sliding window, step
   0.5, no mirroring) in this process, with every tile's diagnosis logits and foreground weight recorded once; each
   rule pools the same tiles, so the rules differ only in the pooling.

Printed: AUC and accuracy per rule and method (mean +- sd over repeats), tiles per case, the seconds spent.
Results go to ``<work dir>/tile_pooling.json``.

    python benchmarks/tile_pooling_synthetic.py [--work-dir tile_pooling_work] [--repeats 2] \
        [--shape 40 96 96] [--training-cases 24] [--test-cases 16] [--epochs 10] [--iterations 10]
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from nnunet_ext.cli.nnunet_commands import nnunet_environment, plan_and_preprocess, results_folder, train
from nnunet_ext.datasets.synthetic import generate_synthetic_dataset
from nnunet_ext.diagnosis.aggregation import TILE_POOLING_RULES
from nnunet_ext.diagnosis.segmentation_model import SEGMENTATION_MODEL_VARIABLE

DATASET_ID = 511
DATASET_NAME = f"Dataset{DATASET_ID}_LargeSyntheticLesions"
CONFIGURATION = "3d_fullres"
SEGMENTATION_TRAINER = "PlainUNetTrainer_Short"
METHODS = {"BaseCatDiagnosisTrainer_FrozenSegmentation_Short": "Base-cat",
           "SiANCWMaxPoolDiagnosisTrainer_FrozenSegmentation_Short": "SiAN-CW-MaxPool"}
RESULT_FILE_NAME = "tile_pooling.json"


def smaller_patch(shape, strides) -> list:
    """Per axis the largest multiple of the total stride that is at most half of ``shape`` (at least one stride)."""
    totals = [math.prod(int(stage[axis]) for stage in strides) for axis in range(len(shape))]
    return [max(total, (int(size) // 2) // total * total) for size, total in zip(shape, totals)]


def prepare_dataset(work_dir: Path, environment: dict, shape, training_cases: int, test_cases: int) -> dict:
    raw = Path(environment["nnUNet_raw"]) / DATASET_NAME
    if not raw.is_dir():
        print(f"generating {training_cases} + {test_cases} synthetic cases of {shape} voxels ...", flush=True)
        generate_synthetic_dataset(environment["nnUNet_raw"], DATASET_ID, DATASET_NAME.split("_", 1)[1],
                                   num_training=training_cases, num_test=test_cases, shape=tuple(shape), seed=11,
                                   lesion_free_every=2)
    plans_file = Path(environment["nnUNet_preprocessed"]) / DATASET_NAME / "nnUNetPlans.json"
    if not plans_file.is_file():
        print("planning and preprocessing 3d_fullres with nnU-Net ...", flush=True)
        plan_and_preprocess(DATASET_ID, [CONFIGURATION], environment, work_dir / "plan.log")
    plans = json.loads(plans_file.read_text())
    configuration = plans["configurations"][CONFIGURATION]
    planned = list(configuration["patch_size"])
    strides = configuration["architecture"]["arch_kwargs"]["strides"]
    case_shape = configuration.get("median_image_size_in_voxels", shape)
    patch = smaller_patch(case_shape, strides)
    if planned != patch:
        configuration["patch_size"] = patch
        configuration["tile_pooling_benchmark_planned_patch_size"] = planned
        plans_file.write_text(json.dumps(plans, indent=2))
    planned = configuration.get("tile_pooling_benchmark_planned_patch_size", planned)
    print(f"case {list(case_shape)} voxels, nnU-Net's patch {planned}, patch set to {patch}", flush=True)
    return {"case_shape": list(case_shape), "planned_patch": planned, "patch": patch, "raw": str(raw)}


def train_once(trainer: str, environment: dict, folder: Path, log_file: Path, prefix: str = "") -> float:
    """``nnUNetv2_train`` fold 0, unless an earlier run of this benchmark finished it (its final validation is
    there); the seconds it took (None when reused)."""
    if (folder / "fold_0" / "validation" / "summary.json").is_file():
        print(f"{prefix}{trainer}: reusing the finished training in {folder}", flush=True)
        return None
    print(f"{prefix}training {trainer} ...", flush=True)
    return train(DATASET_ID, CONFIGURATION, 0, trainer, environment, log_file)


def test_cases(raw: Path) -> dict:
    """case id -> (image files, lesion present) of ``imagesTs``."""
    labels = json.loads((raw / "diagnosis_labels.json").read_text())
    classes = labels["classes"]
    cases = {}
    for image in sorted((raw / "imagesTs").glob("*_0000.nii.gz")):
        case_id = image.name[:-len("_0000.nii.gz")]
        label = labels["labels"][case_id]
        cases[case_id] = ([str(image)], int(classes.index(label) if isinstance(label, str) else label))
    return cases


def predict_with_every_rule(model_folder: str, cases: dict) -> dict:
    """Every test case's positive-class probability under each tile pooling rule, from one sliding window per
    case, and its number of tiles."""
    import torch
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    from nnunet_ext.diagnosis.aggregation import case_probabilities
    from nnunet_ext.diagnosis.predictor import DiagnosisPredictor

    class EveryRulePredictor(DiagnosisPredictor):
        current_case = None

        def _next_case_id(self):
            return self.current_case

        def case_diagnosis(self, tap, case_id):
            self.recorded[case_id] = {
                "tiles": len(tap.logits),
                **{rule: float(case_probabilities(tap.logits, tap.weights, rule, tap.model_starts,
                                                  case=case_id)[1]) for rule in TILE_POOLING_RULES}}
            return super().case_diagnosis(tap, case_id)

    predictor = EveryRulePredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=False,
                                   perform_everything_on_device=False, device=torch.device("cpu"), allow_tqdm=False)
    predictor.recorded, predictor.diagnosis_probabilities = {}, {}
    predictor.initialize_from_trained_model_folder(model_folder, (0,), "checkpoint_final.pth")
    for case_id, (files, _) in cases.items():
        image, properties = SimpleITKIO().read_images(files)
        predictor.current_case = case_id
        predictor.predict_single_npy_array(image, properties, None, None, False)
    return predictor.recorded


def rule_metrics(recorded: dict, cases: dict) -> dict:
    from nnunet_ext.diagnosis.metrics import diagnosis_metrics

    targets = np.array([cases[case][1] for case in recorded], dtype=np.int64)
    metrics = {}
    for rule in TILE_POOLING_RULES:
        positive = np.array([recorded[case][rule] for case in recorded])
        result = diagnosis_metrics(np.stack([1 - positive, positive], 1), targets, ["no lesion", "lesion"], False)
        metrics[rule] = {"AUC": result["AUC"], "ACC": result["ACC"]}
    return metrics


def mean_and_spread(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    return f"{np.mean(values):.3f} +- {np.std(values, ddof=1) if len(values) > 1 else 0.0:.3f}"


def report(result: dict) -> str:
    rules = list(TILE_POOLING_RULES)
    lines = [f"Tile pooling on {DATASET_NAME} ({CONFIGURATION}): cases {result['case_shape']} voxels, patch "
             f"{result['patch']} (nnU-Net planned {result['planned_patch']}), {result['tiles_per_case']} tiles per "
             f"case (step 0.5, no mirroring); {len(result['cases'])} test cases "
             f"({sum(t for _, t in result['cases'].values())} with lesion); diagnosis {result['budget']['epochs']} x "
             f"{result['budget']['iterations']} on a frozen {SEGMENTATION_TRAINER} "
             f"({result['segmentation_budget']['epochs']} x {result['segmentation_budget']['iterations']}, "
             f"validation Dice {result['segmentation_dice']:.3f}); {result['repeats']} repeats (mean +- sd).", "",
             "| method | " + " | ".join(f"AUC {r}" for r in rules) + " | " + " | ".join(f"ACC {r}" for r in rules)
             + " |", "|" + "---|" * (1 + 2 * len(rules))]
    for trainer, runs in result["runs"].items():
        cells = [mean_and_spread([run["metrics"][r]["AUC"] for run in runs]) for r in rules]
        cells += [mean_and_spread([run["metrics"][r]["ACC"] for run in runs]) for r in rules]
        lines.append(f"| {METHODS[trainer]} | " + " | ".join(cells) + " |")
    lines += ["", f"wall time {result['wall_seconds']:.0f} s"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=Path("tile_pooling_work"))
    parser.add_argument("--shape", type=int, nargs=3, default=[40, 96, 96], help="case shape (Z Y X) in voxels")
    parser.add_argument("--training-cases", type=int, default=24)
    parser.add_argument("--test-cases", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--segmentation-epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--trainers", nargs="+", default=list(METHODS), choices=list(METHODS))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    work_dir = args.work_dir.resolve()
    budget = {"epochs": args.epochs, "iterations": args.iterations, "val_iterations": 2}
    segmentation_budget = dict(budget, epochs=args.segmentation_epochs)
    environment = nnunet_environment(work_dir, budget=budget)
    dataset = prepare_dataset(work_dir, environment, args.shape, args.training_cases, args.test_cases)
    cases = test_cases(Path(dataset["raw"]))

    segmentation_environment = nnunet_environment(work_dir, budget=segmentation_budget)
    segmentation_folder = results_folder(environment, DATASET_NAME, SEGMENTATION_TRAINER, CONFIGURATION)
    seconds = train_once(SEGMENTATION_TRAINER, segmentation_environment, segmentation_folder,
                         work_dir / "logs" / f"{SEGMENTATION_TRAINER}.log")
    dice = json.loads((segmentation_folder / "fold_0" / "validation" / "summary.json").read_text())
    dice = dice["foreground_mean"]["Dice"]
    print(f"{SEGMENTATION_TRAINER}: validation Dice {dice:.3f}", flush=True)

    runs = {trainer: [] for trainer in args.trainers}
    for repeat in range(args.repeats):
        repeat_environment = dict(environment, nnUNet_results=str(work_dir / f"nnUNet_results_repeat_{repeat}"),
                                  **{SEGMENTATION_MODEL_VARIABLE: str(segmentation_folder)})
        for trainer in args.trainers:
            folder = results_folder(repeat_environment, DATASET_NAME, trainer, CONFIGURATION)
            seconds = train_once(trainer, repeat_environment, folder,
                                 work_dir / "logs" / f"repeat_{repeat}_{trainer}.log", f"repeat {repeat}: ")
            recorded = predict_with_every_rule(str(folder), cases)
            metrics = rule_metrics(recorded, cases)
            runs[trainer].append({"seconds": seconds, "recorded": recorded, "metrics": metrics})
            print(f"repeat {repeat}: {trainer}; AUC "
                  + ", ".join(f"{rule} {m['AUC']:.3f}" for rule, m in metrics.items()), flush=True)
    tiles = sorted({r["tiles"] for runs_of in runs.values() for run in runs_of for r in run["recorded"].values()})
    result = {**dataset, "budget": budget, "segmentation_budget": segmentation_budget, "segmentation_dice": dice,
              "repeats": args.repeats, "cases": cases, "tiles_per_case": tiles[0] if len(tiles) == 1 else tiles,
              "runs": runs, "wall_seconds": time.perf_counter() - start}
    text = report(result)
    print()
    print(text)
    result["table"] = text
    (work_dir / RESULT_FILE_NAME).write_text(json.dumps(result, indent=2))
    print(f"\nwritten {work_dir / RESULT_FILE_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
