"""``nnunet_ext_coarse_to_fine``: Div-attention's two-stage pipeline on a folder of cases, through nnU-Net's own
commands (Jiang et al., "Pipeline": Stage 1 segments coarsely, with a click; the image is "cropped into a smaller
patch and resized to a uniform size, then fed into the model of Stage 2").

1. **Stage 1**: ``nnunet_ext_predict`` of the Stage-1 model (``--stage1 DATASET CONFIGURATION TRAINER``) into
   ``<-o>/stage1`` (a click-guided model with ``--clicks`` or ``--simulated_clicks``, any other model as it is).
2. **Crops**: one cube per target component of each Stage-1 segmentation, as the Stage-2 model's training crops
   were made (size and margin from its ``dataset.json``, written by ``nnunet_ext_crops``;
   ``nnunet_ext.geometry.crop_cubes``), into ``<-o>/stage2_input`` with ``crops.json``.
3. **Stage 2**: ``nnUNetv2_predict`` of the Stage-2 model (``--stage2 ...``) on the crops, into ``<-o>/stage2``.
4. **Paste back**: each refined crop, on its true cube geometry, resampled (nearest neighbour) onto the case's
   grid and pasted into its Stage-1 segmentation: inside a cube the crop's labels replace Stage 1's (background
   included); a voxel inside several cubes takes the crop whose cube centre is nearest; outside every cube, and for
   components too small for a crop, Stage 1's prediction stays. ``<-o>/<case>.nii.gz`` has exactly the case's
   geometry (that of ``nnUNetv2_predict``'s segmentation).
5. **Evaluation** (``--reference labelsTs``): ``nnUNetv2_evaluate_folder`` of the final segmentations and of Stage 1
   alone (``<-o>/summary.json``, ``<-o>/stage1/summary.json``).

``<-o>/coarse_to_fine.json`` records the models, the crops of every case and the components left to Stage 1.

    nnunet_ext_coarse_to_fine -i imagesTs -o pipeline --stage1 501 3d_fullres ClickGuidedTrainer \\
        --stage2 601 3d_fullres DivAttentionTrainer --stage2_folds all --simulated_clicks labelsTs \\
        --reference labelsTs -device cpu
"""

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import List, Optional, Sequence

import SimpleITK as sitk

from nnunet_ext.checks.model_folder import check_trained_model, model_folder_of
from nnunet_ext.cli.nnunet_commands import run_nnunet_command
from nnunet_ext.cli.user_errors import reports_user_errors
from nnunet_ext.core.errors import InputFilesError, OutputFileConflictError
from nnunet_ext.core.owned_files import check_may_replace, read_manifest, record_written
from nnunet_ext.datasets.crop_dataset import CROP_SETTINGS_KEY, cases_of, crop_cases
from nnunet_ext.geometry.crop_cubes import CropCube, paste_crops

OVERWRITE_FLAG = "--overwrite_outputs"
RECORD_NAME = "coarse_to_fine.json"


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnunet_ext_coarse_to_fine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", required=True, type=Path, help="folder of the cases' images (<case>_0000.nii.gz ...)")
    parser.add_argument("-o", required=True, type=Path, help="output folder")
    for stage, folds in (("stage1", ["0"]), ("stage2", ["all"])):
        parser.add_argument(f"--{stage}", nargs=3, required=True, metavar=("DATASET", "CONFIGURATION", "TRAINER"),
                            help=f"the {stage.replace('stage', 'Stage-')} model")
        parser.add_argument(f"--{stage}_folds", nargs="+", default=folds)
        parser.add_argument(f"--{stage}_plans", default="nnUNetPlans")
        parser.add_argument(f"--{stage}_checkpoint", default="checkpoint_final.pth")
    parser.add_argument("--clicks", default=None, help="clicks file for a click-guided Stage-1 model")
    parser.add_argument("--simulated_clicks", default=None, help="reference labels to simulate Stage-1 clicks from")
    parser.add_argument("--click_seed", type=int, default=0)
    parser.add_argument("--reference", type=Path, default=None, help="reference labels: evaluate with nnU-Net")
    parser.add_argument("-device", default="cuda", choices=("cuda", "cpu", "mps"))
    parser.add_argument("-npp", type=int, default=3, help="nnU-Net's preprocessing processes (0: sequential)")
    parser.add_argument("-nps", type=int, default=3, help="nnU-Net's export processes (0: sequential)")
    parser.add_argument("--disable_tta", action="store_true", help="both stages without test-time mirroring")
    parser.add_argument(OVERWRITE_FLAG, action="store_true",
                        help="use an output folder that holds files we did not write")
    return parser


def stage_model(args, stage: str) -> dict:
    dataset, configuration, trainer = getattr(args, stage)
    plans = getattr(args, f"{stage}_plans")
    folder = model_folder_of(dataset, trainer, plans, configuration)
    folds = check_trained_model(folder, getattr(args, f"{stage}_folds"), getattr(args, f"{stage}_checkpoint"))
    return {"dataset": dataset, "configuration": configuration, "trainer": trainer, "plans": plans,
            "folds": [str(f) for f in folds], "checkpoint": getattr(args, f"{stage}_checkpoint"),
            "folder": str(folder)}


def model_arguments(model: dict) -> list:
    return ["-d", model["dataset"], "-c", model["configuration"], "-tr", model["trainer"], "-p", model["plans"],
            "-f", *model["folds"], "-chk", model["checkpoint"]]


def crop_settings_of(model: dict) -> dict:
    dataset_json = json.loads((Path(model["folder"]) / "dataset.json").read_text())
    settings = dataset_json.get(CROP_SETTINGS_KEY)
    if settings is None:
        raise InputFilesError(f"The Stage-2 model {model['trainer']} of {model['dataset']} was not trained on crops "
                              f"of nnunet_ext_crops (its dataset.json has no {CROP_SETTINGS_KEY!r}).",
                              file=Path(model["folder"]) / "dataset.json",
                              fix="train Stage 2 on a dataset written by nnunet_ext_crops")
    return settings


def check_output_folder(output: Path, cases: List[str], overwrite: bool) -> None:
    if output.is_dir() and any(output.iterdir()) and not read_manifest(output) and not overwrite:
        raise OutputFileConflictError(f"The output folder {output} holds files that nnunet_ext_coarse_to_fine did "
                                      f"not write.", file=output,
                                      fix=f"choose a new or empty folder, or pass {OVERWRITE_FLAG}")
    for name in [RECORD_NAME, "dataset.json", "plans.json", *[f"{case}.nii.gz" for case in cases]]:
        check_may_replace(output / name, OVERWRITE_FLAG, overwrite)


def paste_back(output: Path, stage1: Path, stage2: Path, crops: dict, cases: List[str], ending: str) -> dict:
    """Every case's final segmentation; returns per case its crops."""
    pasted = {}
    for case in cases:
        segmentation = sitk.ReadImage(str(stage1 / f"{case}{ending}"))
        refined = [(sitk.ReadImage(str(stage2 / f"{crop}{ending}")), CropCube.from_json(entry))
                   for crop, entry in sorted(crops["crops"].items()) if entry["case"] == case]
        final = paste_crops(segmentation, refined)
        path = output / f"{case}{ending}"
        sitk.WriteImage(final, str(path), True)
        record_written(path)
        pasted[case] = {"crops": sorted(crop for crop, entry in crops["crops"].items() if entry["case"] == case),
                        "components_left_to_stage1": crops["skipped"].get(case, [])}
    return pasted


def evaluate(reference: Path, folder: Path, log: Path) -> dict:
    """``nnUNetv2_evaluate_folder`` of ``folder`` against ``reference`` (its ``summary.json``, parsed)."""
    run_nnunet_command(["nnUNetv2_evaluate_folder", reference, folder, "-djfile", folder / "dataset.json",
                        "-pfile", folder / "plans.json", "-np", 1], dict(os.environ), log)
    return json.loads((folder / "summary.json").read_text())


@reports_user_errors("nnunet_ext_coarse_to_fine")
def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parser().parse_args(argv)
    stage1, stage2 = stage_model(args, "stage1"), stage_model(args, "stage2")
    settings = crop_settings_of(stage2)
    dataset_json = json.loads((Path(stage1["folder"]) / "dataset.json").read_text())
    ending = dataset_json["file_ending"]
    cases = cases_of(args.i, ending)
    if not cases:
        raise InputFilesError(f"{args.i} holds no case ({ending} files named <case>_0000{ending}).", file=args.i,
                              fix="check -i")
    output = args.o.resolve()
    check_output_folder(output, cases, args.overwrite_outputs)
    logs, environment = output / "logs", dict(os.environ)
    stage1_folder, crops_folder, stage2_folder = output / "stage1", output / "stage2_input", output / "stage2"
    tta = ["--disable_tta"] if args.disable_tta else []
    clicks = (["--clicks", args.clicks] if args.clicks else []) + \
        (["--simulated_clicks", args.simulated_clicks, "--click_seed", args.click_seed] if args.simulated_clicks
         else [])
    print(f"[1/4] Stage 1: {stage1['trainer']} on {len(cases)} case(s) ...", flush=True)
    run_nnunet_command(["nnunet_ext_predict", "-i", args.i, "-o", stage1_folder, *model_arguments(stage1),
                        "-device", args.device, "-npp", args.npp, "-nps", args.nps, *tta, *clicks],
                       environment, logs / "stage1.log")
    print(f"[2/4] cropping around the Stage-1 targets ({settings['size']} voxels per axis, margin "
          f"{settings['margin']}) ...", flush=True)
    crops = crop_cases(args.i, stage1_folder, crops_folder, dataset_json, settings["size"], settings["margin"])
    print(f"[3/4] Stage 2: {stage2['trainer']} on {len(crops['crops'])} crop(s) ...", flush=True)
    if crops["crops"]:
        run_nnunet_command(["nnUNetv2_predict", "-i", crops_folder, "-o", stage2_folder, *model_arguments(stage2),
                            "-device", args.device, "-npp", args.npp, "-nps", args.nps, *tta],
                           environment, logs / "stage2.log")
    print("[4/4] pasting the refined crops into the Stage-1 segmentations ...", flush=True)
    pasted = paste_back(output, stage1_folder, stage2_folder, crops, cases, ending)
    for name in ("dataset.json", "plans.json"):  # as in nnU-Net's prediction folders: its evaluation reads them
        shutil.copy(stage1_folder / name, output / name)
        record_written(output / name)
    record = {"stage1": stage1, "stage2": stage2, "crops": settings, "clicks": args.clicks or
              (f"simulated from {args.simulated_clicks}, seed {args.click_seed}" if args.simulated_clicks else None),
              "overlaps": "a voxel inside several cubes takes the crop whose cube centre is nearest",
              "cases": pasted}
    (output / RECORD_NAME).write_text(json.dumps(record, indent=2) + "\n")
    record_written(output / RECORD_NAME)
    print(f"final segmentations: {output} ({len(cases)} case(s), {len(crops['crops'])} crop(s) refined); "
          f"record: {output / RECORD_NAME}")
    if args.reference is not None:
        final = evaluate(args.reference, output, logs / "evaluate.log")
        alone = evaluate(args.reference, stage1_folder, logs / "evaluate_stage1.log")
        for label in final["mean"]:
            print(f"Dice {label}: Stage 1 {alone['mean'][label]['Dice']:.3f}, two stages "
                  f"{final['mean'][label]['Dice']:.3f}")


if __name__ == "__main__":
    main()
