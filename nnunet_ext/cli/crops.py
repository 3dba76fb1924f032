"""``nnunet_ext_crops``: Stage 2's dataset of Div-attention's pipeline, the cubes around the targets of a raw nnU-Net
dataset, written as a new raw dataset that nnU-Net's stock commands plan, preprocess and train
(``nnunet_ext.datasets.crop_dataset``: training cases around their reference components, test cases around a
Stage-1 segmentation, every crop ``--size`` voxels per axis at a nominal 1 mm, the true geometry in ``crops.json``).

    nnunet_ext_crops --raw $nnUNet_raw -s Dataset501_SyntheticLesions -d 601 --stage1 stage1_predictions
    nnUNetv2_plan_and_preprocess -d 601 -c 3d_fullres
    nnUNetv2_train 601 3d_fullres all -tr DivAttentionTrainer
"""

import argparse
import pathlib
from typing import Optional, Sequence

from nnunet_ext.cli.user_errors import reports_user_errors
from nnunet_ext.core.errors import InputFilesError
from nnunet_ext.datasets.crop_dataset import write_crop_dataset
from nnunet_ext.geometry.crop_cubes import DEFAULT_CROP_SIZE, DEFAULT_MARGIN


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnunet_ext_crops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", required=True, type=pathlib.Path, help="nnU-Net raw folder (nnUNet_raw)")
    parser.add_argument("-s", "--source", required=True,
                        help="the source dataset: its folder name in --raw (DatasetXXX_Name) or a path")
    parser.add_argument("-d", "--dataset_id", required=True, type=int, help="id of the crop dataset")
    parser.add_argument("-n", "--name", default=None, help="name of the crop dataset (default <source name>Crops)")
    parser.add_argument("--stage1", type=pathlib.Path, default=None,
                        help="folder of Stage-1 segmentations of the source's imagesTs (crops imagesTs too)")
    parser.add_argument("--size", type=int, default=DEFAULT_CROP_SIZE, help="crop voxels per axis (96, the paper's)")
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                        help="context on each side, as a fraction of the target's longest axis (0.25)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing crop dataset of this id")
    return parser


@reports_user_errors("nnunet_ext_crops")
def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parser().parse_args(argv)
    source = pathlib.Path(args.source)
    if not source.is_absolute() and not source.exists():
        source = args.raw / args.source
    if not (source / "dataset.json").is_file():
        raise InputFilesError(f"{source} is no nnU-Net raw dataset (no dataset.json).", file=source,
                              fix="give -s the dataset's folder name in --raw or its path")
    name = args.name or f"{source.name.split('_', 1)[-1]}Crops"
    try:
        folder = write_crop_dataset(source, args.raw, args.dataset_id, name, args.stage1, args.size, args.margin,
                                    args.overwrite)
    except (FileExistsError, ValueError) as error:
        raise InputFilesError(str(error), fix="check -d, --size and --margin; --overwrite replaces an existing crop "
                                              "dataset of this id") from None
    print(folder)


if __name__ == "__main__":
    main()
