"""``nnunet_ext_brats2013`` (``python -m nnunet_ext.cli.brats2013_dataset``): convert the real BraTS 2013 sample of
``../shared/data`` into a region-based nnU-Net raw dataset (:mod:`nnunet_ext.datasets.brats2013`)."""

import pathlib

from nnunet_ext.cli.dataset_command_line import command_line_parser, run_command_line
from nnunet_ext.datasets.brats2013 import (SAMPLE_FOLDER_NAME, SHARED_DATA_ENV_VAR, convert_brats2013_sample,
                                           default_brats_sample_dir)


def main(argv: list | None = None) -> None:
    """Command line entry point; prints the created dataset folder, or exits with status 2 and the error."""
    parser = command_line_parser("Convert the BraTS 2013 sample to a region-based nnU-Net v2 raw dataset.")
    parser.add_argument("--source", default=None,
                        help=f"folder holding the case folders (default: ${SHARED_DATA_ENV_VAR}/{SAMPLE_FOLDER_NAME} "
                             f"or ../shared/data/{SAMPLE_FOLDER_NAME} from the current directory)")
    parser.add_argument("--id", type=int, default=502, help="dataset id (default 502)")
    parser.add_argument("--name", default="BraTS2013Sample", help="dataset name (default BraTS2013Sample)")
    parser.add_argument("--spacing", type=float, default=3.0, help="isotropic target spacing in mm (default 3.0)")
    parser.add_argument("--margin", type=float, default=10.0, help="margin around the brain in mm (default 10)")
    parser.add_argument("--test-cases", type=int, default=1, help="cases held out to imagesTs (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    args = parser.parse_args(argv)
    source = pathlib.Path(args.source) if args.source else default_brats_sample_dir()
    run_command_line(parser, convert_brats2013_sample, source, args.raw, dataset_id=args.id, name=args.name,
                     target_spacing_mm=args.spacing, margin_mm=args.margin, test_cases=args.test_cases,
                     overwrite=args.overwrite)


if __name__ == "__main__":
    main()
