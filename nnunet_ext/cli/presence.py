"""``nnunet_ext_presence``: per-case presence probabilities from the output of ``nnUNetv2_predict
--save_probabilities`` (:mod:`nnunet_ext.evaluation.presence_probabilities`)."""

import argparse
from typing import Optional, Sequence

from nnunet_ext.evaluation.presence_probabilities import DEFAULT_CSV_NAME, write_presence_probabilities_csv


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="nnunet_ext_presence",
                                     description="Per-case presence probability of every class (maximum voxel "
                                                 "probability) from the *.npz files of nnUNetv2_predict "
                                                 "--save_probabilities, as a CSV.")
    parser.add_argument("-i", required=True, help="output folder of nnUNetv2_predict --save_probabilities")
    parser.add_argument("-o", default=None, help=f"output CSV (default: <-i>/{DEFAULT_CSV_NAME})")
    args = parser.parse_args(argv)
    print(f"Presence probabilities per case: {write_presence_probabilities_csv(args.i, args.o)}")


if __name__ == "__main__":
    main()
