"""``nnunet_ext_synthetic_dataset`` (``python -m nnunet_ext.cli.synthetic_dataset``): generate the synthetic
organ/lesion dataset of :mod:`nnunet_ext.datasets.synthetic` in nnU-Net's raw format."""

from nnunet_ext.cli.dataset_command_line import command_line_parser, run_command_line
from nnunet_ext.datasets.synthetic import generate_synthetic_dataset


def main(argv: list | None = None) -> None:
    """Command line entry point; prints the created dataset folder, or exits with status 2 and the error."""
    parser = command_line_parser("Generate a synthetic organ/lesion CT dataset in nnU-Net v2 raw format.")
    parser.add_argument("--id", type=int, default=501, help="dataset id (default 501)")
    parser.add_argument("--name", default="SyntheticLesions", help="dataset name (default SyntheticLesions)")
    parser.add_argument("--num-training", type=int, default=16)
    parser.add_argument("--num-test", type=int, default=4)
    parser.add_argument("--shape", type=int, nargs=3, default=(40, 64, 64), metavar=("Z", "Y", "X"))
    parser.add_argument("--spacing", type=float, nargs=3, default=(2.0, 1.0, 1.0), metavar=("SZ", "SY", "SX"),
                        help="voxel size in mm, numpy (z, y, x) order")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    args = parser.parse_args(argv)
    run_command_line(parser, generate_synthetic_dataset, args.raw, dataset_id=args.id, name=args.name,
                     num_training=args.num_training, num_test=args.num_test, shape=tuple(args.shape),
                     spacing=tuple(args.spacing), seed=args.seed, overwrite=args.overwrite)


if __name__ == "__main__":
    main()
