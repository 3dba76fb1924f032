"""``nnunet_ext_predict``: nnU-Net's ``nnUNetv2_predict`` (same arguments, ``--save_probabilities`` always on), then
the per-case presence probabilities of every class as ``<-o>/presence_probabilities.csv`` (see
``nnunet_ext.evaluation.presence_probabilities``)."""

import argparse
import sys
from typing import List, Optional, Sequence, Tuple

from nnunetv2.inference.predict_from_raw_data import predict_entry_point

from nnunet_ext.evaluation.presence_probabilities import write_presence_probabilities_csv

SAVE_PROBABILITIES_FLAG = "--save_probabilities"


def nnunet_predict_arguments(argv: Sequence[str]) -> Tuple[List[str], Optional[str]]:
    """``argv`` (nnUNetv2_predict's arguments, without the program name) -> (the arguments to hand to nnU-Net, with
    ``--save_probabilities`` added unless given, and the ``-o`` output folder, None if absent). Every other argument
    is passed through untouched for nnU-Net's own parser to check."""
    parser = argparse.ArgumentParser(prog="nnunet_ext_predict", add_help=False)
    parser.add_argument("-o", dest="output_folder", default=None)
    parser.add_argument(SAVE_PROBABILITIES_FLAG, dest="save_probabilities", action="store_true")
    known, _ = parser.parse_known_args(list(argv))
    nnunet_argv = list(argv) if known.save_probabilities else [*argv, SAVE_PROBABILITIES_FLAG]
    return nnunet_argv, known.output_folder


def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    nnunet_argv, output_folder = nnunet_predict_arguments(argv)
    sys.argv = [sys.argv[0], *nnunet_argv]  # predict_entry_point parses sys.argv
    predict_entry_point()
    print(f"Presence probabilities per case: {write_presence_probabilities_csv(output_folder)}")


if __name__ == "__main__":
    main()
