"""``nnunet_ext_attention``: the attention maps of a trained model for a folder of cases, in each case's original
geometry (the grid of ``nnUNetv2_predict``'s segmentation), as NIfTI files a viewer overlays on the image, with one
PNG per case.

The model is given as to ``nnUNetv2_predict`` (``-d -c -f -tr -p -chk -device``); ``-i`` holds the cases
(``<case>_0000.nii.gz`` ...), ``-o`` receives ``<case>/<map>.nii.gz``, ``<case>/<case>_attention.png`` and
``attention_maps.json``. Maps (``--maps``; default: every map the model has, the query maps when a query is given):

* ``div_attention``: each Div-attention junction's map (eq. 4), per class or region channel, at full resolution;
* ``seatrans``: per SeA-block, the attention the diagnosis tokens pay to each position of the segmentation
  embedding (eq. 2); ``sian``: SiAN's weight maps (channel mean);
* ``attention`` (per block, one channel per head), ``rollout``, ``relevance``: a transformer's attention of the query
  point (``--query X Y Z`` in mm, or ``--queries cases.json``); ``distance``: the mean attention distance per block
  and head in mm, as ``attention_distance.json`` and ``.png`` with the first block that attends globally.

Before any work: the model folder, folds and checkpoints (as ``nnunet_ext_predict``), the input cases (channels,
finite voxels), the maps asked for (the model's maps are listed otherwise), and that no file of someone else's would
be replaced. A query outside an image stops with the image's extent in mm.

    nnunet_ext_attention -i imagesTs -o maps -d 501 -c 3d_fullres -f 0 -tr DivAttentionTrainer -device cpu
    nnunet_ext_attention -i one_case -o maps -d 501 -c 3d_fullres -f 0 -tr UNETRTrainer --query 12.5 -40 7
"""

import argparse
import json
from pathlib import Path
from typing import Optional, Sequence

import torch
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_ext.attention_maps.attention_distance import DEFAULT_GLOBAL_FRACTION
from nnunet_ext.attention_maps.export import (OVERWRITE_FLAG, export_attention_maps, queries_per_case,
                                              select_families)
from nnunet_ext.attention_maps.map_predictor import AttentionMapPredictor
from nnunet_ext.architectures.attention.network_maps import FAMILIES
from nnunet_ext.checks.input_images import check_prediction_inputs
from nnunet_ext.checks.model_folder import check_trained_model, model_folder_of
from nnunet_ext.cli.user_errors import reports_user_errors
from nnunet_ext.core.network_wrappers import inner_network


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnunet_ext_attention", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", required=True, help="folder of the cases' images, named as for nnUNetv2_predict")
    parser.add_argument("-o", required=True, help="output folder")
    parser.add_argument("-d", required=True, help="dataset id or name")
    parser.add_argument("-c", required=True, help="configuration")
    parser.add_argument("-f", nargs="+", default=["0", "1", "2", "3", "4"], help="folds (mean of their maps)")
    parser.add_argument("-tr", default="nnUNetTrainer", help="trainer")
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier")
    parser.add_argument("-chk", default="checkpoint_final.pth", help="checkpoint file name")
    parser.add_argument("-device", default="cuda", choices=("cuda", "cpu", "mps"))
    parser.add_argument("-step_size", type=float, default=0.5, help="sliding-window step (nnU-Net's 0.5)")
    parser.add_argument("--maps", nargs="+", choices=FAMILIES, default=None,
                        help="map families (default: every map the model has; query maps with a query)")
    parser.add_argument("--query", nargs="+", type=float, default=None, metavar="MM",
                        help="query point in world coordinates (mm), for every case")
    parser.add_argument("--queries", type=Path, default=None,
                        help='JSON file {"<case id>": [x, y, z], ...}: a query point per case (mm)')
    parser.add_argument("--global_fraction", type=float, default=DEFAULT_GLOBAL_FRACTION,
                        help="distance: a block attends globally when its head-mean distance reaches this fraction "
                             "of uniform attention's")
    parser.add_argument(OVERWRITE_FLAG, action="store_true",
                        help="replace files there that we did not write (or that were changed since)")
    return parser


@reports_user_errors("nnunet_ext_attention")
def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parser().parse_args(argv)
    if args.query is not None and args.queries is not None:
        parser().error("give --query or --queries, not both")
    model_folder = model_folder_of(args.d, args.tr, args.p, args.c)
    folds = check_trained_model(model_folder, args.f, args.chk)
    dataset_json = json.loads((model_folder / "dataset.json").read_text())
    reader = PlansManager(str(model_folder / "plans.json")).image_reader_writer_class
    cases = check_prediction_inputs(args.i, dataset_json, reader)
    queries = queries_per_case(list(cases), args.query, args.queries)
    predictor = AttentionMapPredictor(args.step_size, torch.device(args.device))
    predictor.initialize_from_trained_model_folder(str(model_folder), folds, args.chk)
    with_query = any(q is not None for q in queries.values())
    families = select_families(predictor.attention.families, args.maps, with_query,
                               f"{args.tr} ({inner_network(predictor.network).__class__.__name__})")
    model = {"trainer": args.tr, "plans": args.p, "configuration": args.c, "folder": str(model_folder),
             "folds": [str(f) for f in folds], "checkpoint": args.chk}
    index = export_attention_maps(predictor, cases, Path(args.o), families, queries, args.overwrite_outputs, model,
                                  args.global_fraction)
    output = Path(args.o)
    for case, entry in index["cases"].items():
        print(f"{case}: {len(entry['files'])} map(s) in {output / case}" +
              (f"; figure {output / entry['png']}" if entry["png"] else ""))
    if "distance" in index:
        print(f"attention distance: {output / index['distance']['json']}, {output / index['distance']['png']} "
              f"(first global block: {index['distance']['first_global_block']})")
    print(f"index: {output / 'attention_maps.json'}")


if __name__ == "__main__":
    main()
