"""``nnunet_ext_brats_slices``: the BraTS 2013 sample as a 2D segmentation-assisted diagnosis dataset of axial slices
(:mod:`nnunet_ext.datasets.brats2013_slices`), with a leave-one-patient-out ``splits_final.json``."""

import argparse
import os
import pathlib

from nnunet_ext.cli.dataset_command_line import run_command_line
from nnunet_ext.datasets.brats2013 import SAMPLE_FOLDER_NAME, SHARED_DATA_ENV_VAR, default_brats_sample_dir
from nnunet_ext.datasets.brats2013_slices import (DEFAULT_IN_PLANE_SPACING_MM, DEFAULT_SLICE_STEP,
                                                  convert_brats2013_slices)


def main(argv: list | None = None) -> None:
    """Command line entry point; prints the summary, or exits with status 2 and the error."""
    parser = argparse.ArgumentParser(
        description="Convert the BraTS 2013 sample to a 2D nnU-Net v2 dataset of axial slices (whole tumour "
                    "segmentation, 'enhancing tumour present' image-level labels) and, when a preprocessed folder "
                    "is known, write a leave-one-patient-out splits_final.json.")
    parser.add_argument("--source", default=None,
                        help=f"folder holding the case folders (default: ${SHARED_DATA_ENV_VAR}/{SAMPLE_FOLDER_NAME} "
                             f"or ../shared/data/{SAMPLE_FOLDER_NAME} from the current directory)")
    parser.add_argument("--raw", default=os.environ.get("nnUNet_raw"),
                        help="nnU-Net raw folder to write into (default: $nnUNet_raw)")
    parser.add_argument("--preprocessed", default=os.environ.get("nnUNet_preprocessed"),
                        help="nnU-Net preprocessed folder for splits_final.json (default: $nnUNet_preprocessed; "
                             "no splits file when neither is given)")
    parser.add_argument("--id", type=int, default=503, help="dataset id (default 503)")
    parser.add_argument("--name", default="BraTS2013Slices", help="dataset name (default BraTS2013Slices)")
    parser.add_argument("--spacing", type=float, default=DEFAULT_IN_PLANE_SPACING_MM,
                        help=f"in-plane spacing in mm (default {DEFAULT_IN_PLANE_SPACING_MM:g})")
    parser.add_argument("--slice-step", type=int, default=DEFAULT_SLICE_STEP,
                        help=f"keep every n-th axial slice (default {DEFAULT_SLICE_STEP})")
    parser.add_argument("--num-folds", type=int, default=None,
                        help="folds of the patient split (default: one per patient)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing dataset folder and a different splits_final.json")
    args = parser.parse_args(argv)
    if not args.raw:
        parser.error("no nnU-Net raw folder: pass --raw or set nnUNet_raw")
    source = pathlib.Path(args.source) if args.source else default_brats_sample_dir()
    run_command_line(parser, convert_brats2013_slices, source, args.raw, dataset_id=args.id, name=args.name,
                     in_plane_spacing_mm=args.spacing, slice_step=args.slice_step,
                     preprocessed_root=args.preprocessed, num_folds=args.num_folds, overwrite=args.overwrite)


if __name__ == "__main__":
    main()
