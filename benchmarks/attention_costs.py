"""What ``nnunet_ext_attention`` costs against ``nnUNetv2_predict`` of the same model, in the same run (the
attention-map issue: "say what it costs").

On nnU-Net's plans of the synthetic dataset (``3d_fullres``; ``benchmarks.costs``' planning, 3 held-out test
cases), a model folder per trainer with freshly initialised weights (the values do not change the cost), then per
trainer, interleaved and repeated: ``nnUNetv2_predict`` (nnU-Net's defaults: test-time mirroring, step 0.5; in one
process, ``-npp 0 -nps 0``) and ``nnunet_ext_attention`` with every map the model has (a query at each image's
centre for the transformer maps). Printed: seconds per case with the start-up (imports, model), seconds per case
after it (from the first case on), and the peak resident memory of the process (``VmHWM``), as ratios to
``nnUNetv2_predict``.

    python -m benchmarks.attention_costs [--repeats 3] [--trainers DivAttentionTrainer UNETRTrainer ...] \
        [--work-dir benchmark_work]
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import SimpleITK as sitk

from benchmarks.costs.plans import planned_datasets
from benchmarks.costs.prediction import (FOLD, PeakMemoryWatcher, _high_water_mark_bytes, timed_prediction,
                                         with_diagnosis_classes, write_model_folder)
from benchmarks.costs.report import markdown_table, mib, ratio_cell
from nnunet_ext.cli.nnunet_commands import command_path, nnunet_environment
from nnunet_ext.datasets.brats2013 import default_brats_sample_dir

TRAINERS = ("DivAttentionTrainer", "SeATransDiagnosisTrainer", "SiANDiagnosisTrainer", "UNETRTrainer",
            "TransUNetTrainer")
START_OF_CASES = "attention maps of "  # the command's line as it starts the first case


def image_centre_mm(images: Path) -> list:
    image = sitk.ReadImage(str(sorted(images.glob("*_0000.nii.gz"))[0]))
    return list(image.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in image.GetSize()]))


def timed_attention(work_dir: Path, dataset_id: int, trainer: str, setting, images: Path, output: Path,
                    query) -> dict:
    shutil.rmtree(output, ignore_errors=True)
    num_cases = len(list(images.glob("*_0000.nii.gz")))
    arguments = [command_path("nnunet_ext_attention"), "-i", str(images), "-o", str(output), "-d", str(dataset_id),
                 "-c", setting.configuration, "-f", str(FOLD), "-tr", trainer, "-p", setting.plans["plans_name"],
                 "-device", "cpu", *(["--query", *map(str, query)] if query else [])]
    start, cases_start, lines = time.perf_counter(), None, []
    process = subprocess.Popen(arguments, env=nnunet_environment(work_dir), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    watcher = PeakMemoryWatcher(process.pid)
    watcher.start()
    for line in process.stdout:
        lines.append(line)
        watcher.peak_bytes = max(watcher.peak_bytes, _high_water_mark_bytes(process.pid))
        if cases_start is None and line.startswith(START_OF_CASES):
            cases_start = time.perf_counter()
    process.wait()
    end = time.perf_counter()
    watcher.finished.set()
    if process.returncode != 0 or cases_start is None:
        raise RuntimeError(f"{' '.join(arguments)} failed:\n" + "".join(lines[-30:]))
    index = json.loads((output / "attention_maps.json").read_text())
    maps = len(next(iter(index["cases"].values()))["files"])
    return {"seconds_per_case": (end - start) / num_cases, "seconds_per_case_after_start_up":
            (end - cases_start) / num_cases, "peak_bytes": watcher.peak_bytes, "maps_per_case": maps}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=Path("benchmark_work"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trainers", nargs="+", default=list(TRAINERS))
    args = parser.parse_args(argv)
    work_dir = args.work_dir.resolve()
    dataset = next(d for d in planned_datasets(work_dir, default_brats_sample_dir(), num_test=3)
                   if d.test_images is not None)
    results = work_dir / "nnUNet_results"
    rows, figures = [], {}
    for trainer in args.trainers:
        setting = dataset.setting("3d_fullres")
        if "Diagnosis" in trainer:
            setting = type(setting)(with_diagnosis_classes(setting.plans), setting.configuration,
                                    setting.dataset_json)
        setting = setting.for_trainer(trainer)
        write_model_folder(results, dataset.name, trainer, setting)
        query = image_centre_mm(dataset.test_images) if trainer.startswith(("UNETR", "TransUNet", "CATS")) else None
        measured = {"nnUNetv2_predict": [], "nnunet_ext_attention": []}
        for _ in range(args.repeats):
            run = timed_prediction("nnUNetv2_predict", work_dir, dataset.dataset_id, trainer, setting,
                                   dataset.test_images, work_dir / "attention_cost_predictions")
            measured["nnUNetv2_predict"].append({"seconds_per_case": run.seconds_per_case,
                                                 "seconds_per_case_after_start_up":
                                                     run.seconds_per_case_after_start_up,
                                                 "peak_bytes": run.peak_bytes})
            measured["nnunet_ext_attention"].append(timed_attention(
                work_dir, dataset.dataset_id, trainer, setting, dataset.test_images,
                work_dir / "attention_cost_maps", query))
        medians = {command: {field: statistics.median(run[field] for run in runs) for field in runs[0]}
                   for command, runs in measured.items()}
        figures[trainer] = medians
        plain, ours = medians["nnUNetv2_predict"], medians["nnunet_ext_attention"]
        rows.append([trainer, f"{plain['seconds_per_case']:.2f} s", f"{plain['seconds_per_case_after_start_up']:.2f} s",
                     mib(plain["peak_bytes"]), f"{int(ours['maps_per_case'])}",
                     ratio_cell(ours["seconds_per_case"], plain["seconds_per_case"]),
                     ratio_cell(ours["seconds_per_case_after_start_up"], plain["seconds_per_case_after_start_up"]),
                     ratio_cell(ours["peak_bytes"], plain["peak_bytes"])])
        print(f"{trainer}: {json.dumps(medians)}", flush=True)
    print()
    print(f"Plans: {dataset.label}, 3d_fullres; {len(list(dataset.test_images.glob('*_0000.nii.gz')))} test cases; "
          f"median of {args.repeats} interleaved runs")
    print(markdown_table(["model", "nnUNetv2_predict s/case", "after start-up", "peak memory",
                          "maps per case", "nnunet_ext_attention s/case", "after start-up", "peak memory"], rows))
    (work_dir / "attention_costs.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
