"""``python -m benchmarks.costs``: the cost benchmark of issue 10 (see the package docstring and the README's
"Benchmark" section). Every figure is relative to plain nnU-Net (``nnUNetTrainer``'s network) on the same plans, in
the same run."""

import argparse
import os
import sys
from pathlib import Path

import torch

from nnunet_ext.cli.nnunet_commands import nnunet_environment
from nnunet_ext.datasets.brats2013 import default_brats_sample_dir
from nnunet_ext.reliability.network_builds import PLAIN_NNUNET, NetworkSetting, family_representatives
from nnunet_ext.reliability.tiny_plans import tiny_plans

from benchmarks.costs.inductor import inductor_step
from benchmarks.costs.networks import diagnosis_networks, segmentation_networks
from benchmarks.costs.plans import planned_datasets
from benchmarks.costs.prediction import interleaved_predictions, with_diagnosis_classes, write_model_folder
from benchmarks.costs.report import inductor_table, prediction_table, training_table
from benchmarks.costs.training import (interleaved_seconds, parameter_count, peak_training_memory,
                                       saved_activation_bytes)

PARTS = ("training", "prediction", "inductor")
BATCH_SIZES = (1, 2)


def say(text: str) -> None:
    print(text, flush=True)


def training_part(dataset, repeats: int, only=None) -> None:
    setting = dataset.setting()
    trainers, refused = segmentation_networks(setting)
    trainers = [PLAIN_NNUNET, *(t for t in trainers if only is None or t in only)]
    say(f"\n### Training, {dataset.label} plans (3d_fullres, patch {list(setting.patch_size)}, "
        f"{setting.num_input_channels} input channels, {setting.num_outputs} outputs)\n")
    figures = {trainer: {"seconds": {}} for trainer in trainers}
    for batch_size in BATCH_SIZES:
        for trainer, seconds in interleaved_seconds(trainers, setting, batch_size, repeats).items():
            figures[trainer]["seconds"][batch_size] = seconds
    plans_batch = setting.configuration_manager.batch_size
    for trainer in trainers:
        figures[trainer]["parameters"] = parameter_count(trainer, setting)
        figures[trainer]["saved_bytes"] = saved_activation_bytes(trainer, setting, plans_batch)
        figures[trainer]["peak_bytes"] = peak_training_memory(trainer, str(dataset.plans_file),
                                                              str(dataset.dataset_json_file), "3d_fullres",
                                                              plans_batch)
    say(training_table(figures, PLAIN_NNUNET))
    say(f"\nMedian of {repeats} interleaved passes; memory at the plans' batch size {plans_batch}."
        + "".join(f"\n{trainer}: not built on these plans ({reason.split(':')[0]})."
                  for trainer, reason in refused.items()))


def prediction_part(dataset, work_dir: Path, repeats: int) -> None:
    setting = dataset.setting()
    results = Path(nnunet_environment(work_dir)["nnUNet_results"])
    segmentation, _ = segmentation_networks(setting)
    diagnosis_setting = NetworkSetting(with_diagnosis_classes(setting.plans), setting.configuration,
                                       setting.dataset_json)
    diagnosis, _ = diagnosis_networks(diagnosis_setting)
    for trainer in [PLAIN_NNUNET, *segmentation]:
        write_model_folder(results, dataset.name, trainer, setting)
    for trainer in diagnosis:
        write_model_folder(results, dataset.name, trainer, diagnosis_setting)
    num_cases = len(list(dataset.test_images.glob("*_0000.nii.gz")))
    out = work_dir / "predictions"

    def run(command, trainer, run_setting):
        return (command, work_dir, dataset.dataset_id, trainer, run_setting, dataset.test_images,
                out / f"{command}_{trainer}")

    say(f"\n### Prediction through nnUNetv2_predict, {dataset.label} plans (3d_fullres, {num_cases} test cases, "
        f"test-time mirroring on, -npp 0 -nps 0)\n")
    figures = interleaved_predictions({trainer: run("nnUNetv2_predict", trainer, setting)
                                       for trainer in [PLAIN_NNUNET, *segmentation]}, repeats)
    say(prediction_table(figures, PLAIN_NNUNET, "prediction"))
    say(f"\n### A diagnosis branch at prediction: nnunet_ext_predict of a diagnosis model against the same command on "
        f"the segmentation alone (plain nnU-Net's network), {dataset.label} plans\n")
    segmentation_alone = f"{PLAIN_NNUNET} (segmentation alone)"
    runs = {segmentation_alone: run("nnunet_ext_predict", PLAIN_NNUNET, setting)}
    runs.update({trainer: run("nnunet_ext_predict", trainer, diagnosis_setting) for trainer in diagnosis})
    say(prediction_table(interleaved_predictions(runs, repeats), segmentation_alone, "diagnosis branch"))
    say(f"\nMedians of {repeats} interleaved runs; untrained weights of the right shapes.")


def inductor_part(dataset) -> None:
    say("\n### inductor on this CPU, one network per family (tiny plans: widths / 8, patch halved), training step "
        "compiled against eager\n")
    plans = tiny_plans(dataset.setting().plans)
    results = {}
    for configuration in ("2d", "3d_fullres"):
        setting = NetworkSetting(plans, configuration, dataset.setting().dataset_json)
        for trainer in family_representatives():
            results[(trainer, configuration)] = inductor_step(trainer, setting)
            say(f"  {trainer} {configuration}: {results[(trainer, configuration)]}")
    say(inductor_table(results))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work-dir", type=Path, default=Path("benchmark_work"),
                        help="folder for the generated datasets, nnU-Net's plans and the model folders")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved forward+backward passes per network")
    parser.add_argument("--prediction-repeats", type=int, default=3, help="interleaved prediction runs per model")
    parser.add_argument("--test-cases", type=int, default=3, help="synthetic held-out cases to predict")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--trainers", nargs="+", default=None,
                        help="training part: only these networks (and plain nnU-Net's), e.g. a default's check")
    parser.add_argument("--brats-source", type=Path, default=None,
                        help="the BraTS 2013 sample (default: ../shared/data/brats2013_sample)")
    args = parser.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    work_dir = args.work_dir.resolve()
    say(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; parts {parts}")
    datasets = planned_datasets(work_dir, args.brats_source or default_brats_sample_dir(), args.test_cases)
    if "training" in parts:
        for dataset in datasets:
            training_part(dataset, args.repeats, args.trainers)
    if "prediction" in parts:
        prediction_part(datasets[0], work_dir, args.prediction_repeats)
    if "inductor" in parts:
        inductor_part(datasets[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
