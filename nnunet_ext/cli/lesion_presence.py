"""``nnunet_ext_lesion_presence``: image-wise lesion presence precision, recall and F1 of a folder of predicted
segmentations (:mod:`nnunet_ext.evaluation.lesion_presence`)."""

import argparse
import json
from typing import Optional, Sequence

from nnunet_ext.evaluation.lesion_presence import default_summary_file, summarize_lesion_presence, summary_line


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Image-wise lesion presence precision, recall and F1 of predicted "
                                                 "segmentations against the ground truth.")
    parser.add_argument("-pred", required=True, help="folder of predicted segmentations")
    parser.add_argument("-ref", required=True, help="folder of reference segmentations (same file names)")
    parser.add_argument("-djfile", required=True, help="the dataset.json of the dataset")
    parser.add_argument("-pfile", default=None, help="optional plans.json (only needed for a custom label manager)")
    parser.add_argument("-o", default=None, help="output JSON (default: in the prediction folder)")
    parser.add_argument("--per-axial-slice", action="store_true", help="score every axial slice instead of cases")
    args = parser.parse_args(argv)
    with open(args.djfile, encoding="utf-8") as handle:
        dataset_json = json.load(handle)
    plans = None
    if args.pfile is not None:
        with open(args.pfile, encoding="utf-8") as handle:
            plans = json.load(handle)
    summary = summarize_lesion_presence(args.pred, args.ref, dataset_json, plans, args.per_axial_slice, args.o)
    print(f"{summary_line(summary)} -> {args.o or default_summary_file(args.pred, args.per_axial_slice)}")


if __name__ == "__main__":
    main()
