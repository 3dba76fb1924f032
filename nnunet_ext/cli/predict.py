"""``nnunet_ext_predict``: nnU-Net's ``nnUNetv2_predict`` (same arguments, parsed by nnU-Net's own parser,
``--save_probabilities`` always on), then

* the per-case presence probabilities of every class as ``<-o>/presence_probabilities.csv`` (see
  ``nnunet_ext.evaluation.presence_probabilities``);
* for a model trained by a diagnosis trainer, one diagnosis per case as ``<-o>/diagnosis_predictions.csv``
  (probability per class, predicted class and its name) with ``diagnosis_predictions_settings.json`` beside it (tile
  step, mirroring, tile pooling, folds, checkpoint, the aggregation rule). An earlier ``diagnosis_predictions.csv``
  is merged only with ``--continue_prediction``. With ``-num_parts N -part_id k`` each part writes
  ``diagnosis_predictions_part<k>of<N>.csv``, and the part that finds all ``N`` part files there joins them into
  ``diagnosis_predictions.csv`` (under a file lock); see ``nnunet_ext.diagnosis.predictions_csv``.

nnU-Net's entry point builds its ``nnUNetPredictor`` itself; for the duration of the call (in this process only) it
builds our ``DiagnosisPredictor`` instead, which predicts the segmentations exactly as nnU-Net's does."""

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from unittest import mock

from nnunetv2.inference import predict_from_raw_data

from nnunet_ext.diagnosis.predictor import DIAGNOSIS_CSV_NAME, DiagnosisPredictor
from nnunet_ext.evaluation.presence_probabilities import write_presence_probabilities_csv

SAVE_PROBABILITIES_FLAG = "--save_probabilities"


class DiagnosisPredictorOfThisRun(DiagnosisPredictor):
    """``DiagnosisPredictor`` that :func:`main` hands nnU-Net's entry point; keeps the instances it built, to report
    the files they wrote."""

    instances: List[DiagnosisPredictor] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        DiagnosisPredictorOfThisRun.instances.append(self)


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


def diagnosis_files_message(written_csv: Optional[str]) -> Optional[str]:
    """What to tell the user about the diagnosis CSV a predictor wrote (None: it wrote none)."""
    if written_csv is None:
        return None
    written = Path(written_csv)
    if written.name == DIAGNOSIS_CSV_NAME:
        return f"Diagnosis per case: {written}"
    joined = written.parent / DIAGNOSIS_CSV_NAME
    if joined.is_file():
        return f"Diagnosis per case: {joined} (all parts joined; this part's cases: {written})"
    return (f"Diagnosis per case of this part: {written}; {joined} is written when the last part of -num_parts "
            f"finishes")


def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    nnunet_argv, output_folder = nnunet_predict_arguments(argv)
    sys.argv = [sys.argv[0], *nnunet_argv]  # predict_entry_point parses sys.argv
    DiagnosisPredictorOfThisRun.instances = []
    with mock.patch.object(predict_from_raw_data, "nnUNetPredictor", DiagnosisPredictorOfThisRun):
        predict_from_raw_data.predict_entry_point()
    print(f"Presence probabilities per case: {write_presence_probabilities_csv(output_folder)}")
    for predictor in DiagnosisPredictorOfThisRun.instances:
        message = diagnosis_files_message(predictor.written_diagnosis_csv)
        if message is not None:
            print(message)


if __name__ == "__main__":
    main()
