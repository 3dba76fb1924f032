"""The segmentation-assisted diagnosis trainers against the image-only classifier at equal budget, on the real
BraTS 2013 sample as 2D slices (issue 4).

Converts ../shared/data/brats2013_sample into the 2D slice dataset of ``nnunet_ext.datasets.brats2013_slices``
(four patients, axial slices at 3 mm in plane; segmentation target the whole tumour, image-level label "the slice
holds enhancing tumour"), writes the leave-one-patient-out ``splits_final.json`` into nnU-Net's preprocessed folder
before planning (so ``do_split`` validates one whole patient per fold), plans and preprocesses ``2d`` with nnU-Net.
Then, per fold, through ``nnUNetv2_train`` on the CPU:

1. the segmentation models ``PlainUNetTrainer_Short`` (nnU-Net's own trainer) and, for SiAN on L-Net,
   ``LNetTrainer_Short`` (the same budget unless ``--segmentation-epochs`` / ``--segmentation-iterations`` say
   otherwise), trained once per fold;
2. each diagnosis trainer with the same epochs x iterations, ``$NNUNET_EXT_SEGMENTATION_MODEL`` pointing at its
   segmentation model (the frozen trainers load and freeze it; Base-multi starts from it and trains it further),
   ``--repeats`` times (each repeat its own ``nnUNet_results``; nnU-Net does not seed its runs, so repeats differ
   by initialisation, sampling and augmentation).

Each diagnosis trainer's final validation writes ``fold_<f>/validation/diagnosis_summary.json`` (one probability per
validation slice). The table gives AUC, ACC, SEN, SPE (``nnunet_ext.diagnosis.metrics``; positive class
"enhancing tumour", predicted positive iff P > 0.5) on the validation slices; with several folds on the slices of
all folds pooled (each slice is predicted by the model that did not train on its patient), with the AUC of each
fold beside, and the seconds ``nnUNetv2_train`` took (training and final validation). With several repeats every
number is the mean over repeats with the standard deviation (``mean +- sd``), and the pooled AUC of each repeat
is listed; a difference between two methods is a difference only where it exceeds their spreads. The segmentation model's
validation Dice is nnU-Net's ``summary.json`` ``foreground_mean``. The table and the raw numbers (every slice's
probability) go to ``<work dir>/diagnosis_comparison.json``.

    python benchmarks/compare_diagnosis_brats.py [--epochs 10] [--iterations 10] [--folds 0 1 2 3] \
        [--work-dir diagnosis_comparison_work] [--trainers ...] [--segmentation-epochs E] \
        [--segmentation-iterations I] [--val-iterations 2] [--repeats 2]

Four patients and a CPU budget: the table shows how the methods behave here, not which is better in general.
Slices of one patient are correlated, so the pooled n overstates the evidence; and the pooled AUC ranks
probabilities of different models (one per fold) against each other, so it is lower than the per-fold AUCs when the
folds' models are calibrated differently.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from nnunet_ext.cli.nnunet_commands import nnunet_environment, plan_and_preprocess, results_folder, train
from nnunet_ext.datasets.brats2013 import default_brats_sample_dir
from nnunet_ext.datasets.brats2013_slices import convert_brats2013_slices
from nnunet_ext.datasets.patient_splits import patient_of_case, write_patient_splits
from nnunet_ext.diagnosis.labels import LABELS_FILE_NAME
from nnunet_ext.diagnosis.metrics import diagnosis_metrics
from nnunet_ext.diagnosis.segmentation_model import SEGMENTATION_MODEL_VARIABLE
from nnunet_ext.diagnosis.summary import SUMMARY_FILE_NAME

DATASET_ID = 503
DATASET_NAME = "Dataset503_BraTS2013Slices"
CONFIGURATION = "2d"
SEGMENTATION_TRAINER = "PlainUNetTrainer_Short"
LNET_SEGMENTATION_TRAINER = "LNetTrainer_Short"
METHODS = {  # trainer -> the papers' name of the method
    "ImageOnlyDiagnosisTrainer_FrozenSegmentation_Short": "Image-only",
    "BaseMultiDiagnosisTrainer_PretrainedSegmentation_Short": "Base-multi",
    "BaseCatDiagnosisTrainer_FrozenSegmentation_Short": "Base-cat",
    "BaseROIDiagnosisTrainer_FrozenSegmentation_Short": "Base-ROI",
    "SiANDiagnosisTrainer_FrozenSegmentation_Short": "SiAN",
    "SiANCWMaxPoolDiagnosisTrainer_FrozenSegmentation_Short": "SiAN-CW-MaxPool",
    "SiANDiagnosisTrainer_FrozenLNetSegmentation_Short": "SiAN on L-Net",
    "SeATransDiagnosisTrainer_FrozenSegmentation_Short": "SeATrans",
    # the papers' optimisers against nnU-Net's at the same budget (the frozen variants' default optimiser)
    "SiANDiagnosisTrainer_FrozenSegmentationNnUNetSGD_Short": "SiAN, nnU-Net's SGD",
    "SiANCWMaxPoolDiagnosisTrainer_FrozenSegmentationNnUNetSGD_Short": "SiAN-CW-MaxPool, nnU-Net's SGD",
    "SeATransDiagnosisTrainer_FrozenSegmentationNnUNetSGD_Short": "SeATrans, nnU-Net's SGD",
}
SEGMENTATION_MODEL_OF = {"SiANDiagnosisTrainer_FrozenLNetSegmentation_Short": LNET_SEGMENTATION_TRAINER}
METRICS = ("AUC", "ACC", "SEN", "SPE")
RESULT_FILE_NAME = "diagnosis_comparison.json"
# Idle OpenMP threads sleep instead of spinning. On a CPU shared with nnU-Net's export and augmentation workers (or
# anything else), spinning threads of oversubscribed processes slowed a forward pass ~30x here; the results are the
# same either way.
THREAD_ENVIRONMENT = {"OMP_WAIT_POLICY": "PASSIVE"}


def prepare_dataset(environment: dict, work_dir: Path) -> dict:
    """Convert the sample (once), write the patient splits, plan and preprocess 2d (once); returns the diagnosis
    labels file's content."""
    raw = Path(environment["nnUNet_raw"]) / DATASET_NAME
    preprocessed = Path(environment["nnUNet_preprocessed"]) / DATASET_NAME
    if not raw.exists():
        print("converting the BraTS 2013 sample to 2D slices ...", flush=True)
        summary = convert_brats2013_slices(default_brats_sample_dir(), environment["nnUNet_raw"],
                                           dataset_id=DATASET_ID)
        print(summary, flush=True)
    labels = json.loads((raw / LABELS_FILE_NAME).read_text())
    splits = write_patient_splits(preprocessed, list(labels["labels"]))
    print(f"patient splits: {splits}", flush=True)
    if not (preprocessed / "nnUNetPlans.json").is_file() or not (preprocessed / "nnUNetPlans_2d").is_dir():
        print("planning and preprocessing 2d with nnU-Net ...", flush=True)
        plan_and_preprocess(DATASET_ID, [CONFIGURATION], environment, work_dir / "plan.log")
    return labels


def validation_patients(environment: dict, fold: int) -> list:
    splits = json.loads((Path(environment["nnUNet_preprocessed"]) / DATASET_NAME / "splits_final.json").read_text())
    return sorted({patient_of_case(case_id) for case_id in splits[fold]["val"]})


def train_segmentation_model(environment: dict, work_dir: Path, fold: int, trainer: str) -> dict:
    """Train the segmentation model ``trainer`` of ``fold``; its folder, validation Dice (foreground mean) and
    seconds."""
    print(f"fold {fold}: training {trainer} ...", flush=True)
    seconds = train(DATASET_ID, CONFIGURATION, fold, trainer, environment,
                    work_dir / "logs" / f"fold_{fold}_{trainer}.log")
    folder = results_folder(environment, DATASET_NAME, trainer, CONFIGURATION)
    summary = json.loads((folder / f"fold_{fold}" / "validation" / "summary.json").read_text())
    dice = summary["foreground_mean"]["Dice"]
    print(f"fold {fold}: {trainer} {seconds:.0f} s, validation Dice (foreground mean) {dice:.3f}", flush=True)
    return {"folder": str(folder), "seconds": seconds, "dice_foreground_mean": dice}


def train_diagnosis_trainer(trainer: str, environment: dict, work_dir: Path, fold: int,
                            segmentation_folder: str, repeat: int = 0) -> dict:
    """Train one diagnosis trainer on ``fold`` beside the segmentation model; its seconds and validation summary."""
    print(f"fold {fold}, repeat {repeat}: training {trainer} ...", flush=True)
    environment = dict(environment, **{SEGMENTATION_MODEL_VARIABLE: segmentation_folder})
    seconds = train(DATASET_ID, CONFIGURATION, fold, trainer, environment,
                    work_dir / "logs" / f"fold_{fold}_repeat_{repeat}_{trainer}.log")
    summary_file = (results_folder(environment, DATASET_NAME, trainer, CONFIGURATION) / f"fold_{fold}"
                    / "validation" / SUMMARY_FILE_NAME)
    summary = json.loads(summary_file.read_text())
    print(f"fold {fold}, repeat {repeat}: {trainer} {seconds:.0f} s, AUC "
          f"{format_value(summary['metrics']['AUC'])}", flush=True)
    return {"seconds": seconds, "summary_file": str(summary_file), "metrics": summary["metrics"],
            "class_names": summary["class_names"], "ordinal": summary["ordinal"], "cases": summary["cases"]}


def pooled_metrics(per_fold: dict) -> dict:
    """Metrics over the validation cases of every fold of one trainer (one row per case, probabilities in the
    order of the class names)."""
    first = next(iter(per_fold.values()))
    class_names = first["class_names"]
    cases = [case for result in per_fold.values() for case in result["cases"]]
    probabilities = np.array([[case["probabilities"][name] for name in class_names] for case in cases])
    targets = np.array([case["target"] for case in cases], dtype=np.int64)
    return diagnosis_metrics(probabilities, targets, class_names, first["ordinal"])


def format_value(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def mean_and_spread(values) -> str:
    """``mean +- sd`` of the defined values (one value: itself); ``n/a`` when none is defined."""
    defined = [v for v in values if v is not None]
    if not defined:
        return "n/a"
    if len(values) == 1:
        return format_value(defined[0])
    text = f"{np.mean(defined):.3f} +- {np.std(defined, ddof=1) if len(defined) > 1 else 0.0:.3f}"
    return text + ("" if len(defined) == len(values) else f" ({len(defined)} of {len(values)} defined)")


def format_table(rows: list, folds: list) -> str:
    """Markdown table, one row per trainer (``rows``: dicts of ``method, trainer, repeats``; each repeat ``metrics,
    per_fold_auc, seconds``). With several repeats each cell is the mean +- sd over them and the last column lists
    each repeat's (pooled) AUC; with several folds and repeats, "AUC per fold and repeat" is the mean +- sd of the
    AUCs of every (fold, repeat) run, each fold's model ranked on its own patient (no pooling across models)."""
    pooled, repeated = len(folds) > 1, len(rows[0]["repeats"]) > 1 if rows else False
    header = ["method", *METRICS, "n val slices (pos.)", "predicted pos."]
    if pooled:
        header += [f"AUC fold {fold}" for fold in folds]
    if pooled and repeated:
        header.append("AUC per fold and repeat")
    if repeated:
        header.append("AUC per repeat")
    header.append("nnUNetv2_train s" + (" (sum of folds)" if pooled else ""))
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        repeats = row["repeats"]
        first = repeats[0]["metrics"]
        cells = [row["method"], *(mean_and_spread([r["metrics"][name] for r in repeats]) for name in METRICS),
                 f"{first['n']} ({first['TP'] + first['FN']})",
                 mean_and_spread([r["metrics"]["TP"] + r["metrics"]["FP"] for r in repeats]).replace(".000", "")]
        if pooled:
            cells += [mean_and_spread([r["per_fold_auc"][fold] for r in repeats]) for fold in folds]
        if pooled and repeated:
            cells.append(mean_and_spread([r["per_fold_auc"][fold] for r in repeats for fold in folds]))
        if repeated:
            cells.append(", ".join(format_value(r["metrics"]["AUC"]) for r in repeats))
        cells.append(f"{np.mean([r['seconds'] for r in repeats]):.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def oddities(rows: list) -> list:
    """Warnings worth reading before the table: predictions all of one class, undefined metrics."""
    notes = []
    for row in rows:
        for index, repeat in enumerate(row["repeats"]):
            metrics = repeat["metrics"]
            where = row["method"] + (f" (repeat {index})" if len(row["repeats"]) > 1 else "")
            predicted_positive = metrics["TP"] + metrics["FP"]
            if predicted_positive in (0, metrics["n"]):
                kind = "negative" if predicted_positive == 0 else "positive"
                notes.append(f"{where}: every validation slice predicted {kind} (threshold 0.5)")
            for name, reason in metrics["undefined"].items():
                notes.append(f"{where}: {name} undefined ({reason})")
    return notes


def environment_with_budget(work_dir: Path, budget: dict) -> dict:
    environment = nnunet_environment(work_dir, budget=budget)
    for variable, value in THREAD_ENVIRONMENT.items():
        environment.setdefault(variable, value)
    return environment


def repeat_environment(environment: dict, work_dir: Path, repeat: int) -> dict:
    """Repeat 0 trains into the work dir's ``nnUNet_results``, repeat k > 0 into ``nnUNet_results_repeat_<k>``."""
    if repeat == 0:
        return environment
    return dict(environment, nnUNet_results=str(work_dir / f"nnUNet_results_repeat_{repeat}"))


def compare(work_dir: Path, budget: dict, segmentation_budget: dict, folds: list, trainers: list,
            repeats: int = 1) -> dict:
    start = time.perf_counter()
    environment = environment_with_budget(work_dir, budget)
    segmentation_environment = environment_with_budget(work_dir, segmentation_budget)
    prepare_dataset(environment, work_dir)
    segmentation_trainers = sorted({SEGMENTATION_MODEL_OF.get(trainer, SEGMENTATION_TRAINER) for trainer in trainers})
    segmentation = {trainer: {} for trainer in segmentation_trainers}
    diagnosis = {trainer: [{} for _ in range(repeats)] for trainer in trainers}
    for fold in folds:
        print(f"fold {fold}: validation patient(s) {validation_patients(environment, fold)}", flush=True)
        for trainer in segmentation_trainers:
            segmentation[trainer][fold] = train_segmentation_model(segmentation_environment, work_dir, fold,
                                                                   trainer)
        for repeat in range(repeats):
            for trainer in trainers:
                model = segmentation[SEGMENTATION_MODEL_OF.get(trainer, SEGMENTATION_TRAINER)][fold]["folder"]
                diagnosis[trainer][repeat][fold] = train_diagnosis_trainer(
                    trainer, repeat_environment(environment, work_dir, repeat), work_dir, fold, model, repeat)
    rows = []
    for trainer in trainers:
        row = {"method": METHODS.get(trainer, trainer), "trainer": trainer, "repeats": []}
        for per_fold in diagnosis[trainer]:
            metrics = pooled_metrics(per_fold) if len(folds) > 1 else per_fold[folds[0]]["metrics"]
            row["repeats"].append({"metrics": metrics,
                                   "per_fold_auc": {fold: per_fold[fold]["metrics"]["AUC"] for fold in folds},
                                   "seconds": sum(per_fold[fold]["seconds"] for fold in folds)})
        rows.append(row)
    return {"dataset": DATASET_NAME, "configuration": CONFIGURATION, "budget": budget,
            "segmentation_budget": segmentation_budget, "folds": folds, "repeats": repeats,
            "validation_patients": {fold: validation_patients(environment, fold) for fold in folds},
            "segmentation": segmentation, "rows": rows,
            "diagnosis": diagnosis, "table": format_table(rows, folds), "notes": oddities(rows),
            "wall_seconds": time.perf_counter() - start}


def report(result: dict) -> str:
    folds = result["folds"]
    budget = result["budget"]
    scope = (f"fold {folds[0]}" if len(folds) == 1 else
             f"folds {', '.join(map(str, folds))}, metrics on the pooled validation slices")
    repeats = result.get("repeats", 1)
    lines = [f"Diagnosis 'enhancing tumour present' on {result['dataset']} ({result['configuration']}, {scope}); "
             f"every trainer {budget['epochs']} epochs x {budget['iterations']} iterations on the CPU"
             + (f", {repeats} repeats (mean +- sd)." if repeats > 1 else "."), "", result["table"], ""]
    for trainer, per_fold in result["segmentation"].items():
        for fold in folds:
            model = per_fold[fold]
            lines.append(f"segmentation model {trainer} ({result['segmentation_budget']['epochs']} x "
                         f"{result['segmentation_budget']['iterations']}), fold {fold} (validation patient(s) "
                         f"{', '.join(result['validation_patients'][fold])}): validation Dice (whole tumour) "
                         f"{model['dice_foreground_mean']:.3f}, trained in {model['seconds']:.0f} s")
    lines += [f"note: {note}" for note in result["notes"]]
    lines.append(f"wall time {result['wall_seconds']:.0f} s")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=Path("diagnosis_comparison_work"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--val-iterations", type=int, default=2,
                        help="validation iterations per epoch (only the logged per-epoch score uses them)")
    parser.add_argument("--segmentation-epochs", type=int, default=None,
                        help="epochs of the segmentation model (default: --epochs)")
    parser.add_argument("--segmentation-iterations", type=int, default=None,
                        help="iterations per epoch of the segmentation model (default: --iterations)")
    parser.add_argument("--folds", type=int, nargs="+", default=[0],
                        help="folds of the leave-one-patient-out split (0-3)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="train every diagnosis trainer this many times per fold (the segmentation models once)")
    parser.add_argument("--trainers", nargs="+", default=list(METHODS), choices=list(METHODS), metavar="TRAINER",
                        help=f"subset of {', '.join(METHODS)}")
    args = parser.parse_args(argv)
    work_dir = args.work_dir.resolve()
    budget = {"epochs": args.epochs, "iterations": args.iterations, "val_iterations": args.val_iterations}
    segmentation_budget = dict(budget, epochs=args.segmentation_epochs or args.epochs,
                               iterations=args.segmentation_iterations or args.iterations)
    result = compare(work_dir, budget, segmentation_budget, sorted(set(args.folds)), args.trainers, args.repeats)
    text = report(result)
    print()
    print(text)
    (work_dir / RESULT_FILE_NAME).write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    print(f"\nwritten {work_dir / RESULT_FILE_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
