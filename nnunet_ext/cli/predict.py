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

A click-guided model (Div-attention's Stage 1, ``ClickGuidedTrainer``) needs its cue: ``--clicks clicks.json`` (per
case id one or more points in world coordinates, mm) or ``--simulated_clicks <reference labels folder>`` (one click
inside each reference component, seed ``--click_seed``, 0 by default: for scoring on a labelled test set); the cue
is built on nnU-Net's preprocessed grid and nnU-Net's sliding window predicts as usual
(``nnunet_ext.clicks.prediction_cue``). Without them such a model is refused, as clicks for another model are.

Before nnU-Net starts (``nnunet_ext.checks``): the model folder of ``-d -tr -p -c`` exists (else the model folders
of the dataset, the closest trainer names first), the folds of ``-f`` hold ``-chk`` (else the folds and checkpoints
there), each checkpoint was written by the folder's trainer, and every case of ``-i`` has exactly the model's
channels ``_0000 ..`` and finite voxel values. Files of ours already in ``-o`` are replaced only if we wrote them
and they are unchanged (``nnunet_ext.core.owned_files``); ``--overwrite_outputs`` replaces them anyway. A mistake
is one line on stderr and exit status 2 (``--debug``: the traceback).

nnU-Net's entry point builds its ``nnUNetPredictor`` itself; for the duration of the call (in this process only) it
builds our ``DiagnosisPredictor`` instead, which predicts the segmentations exactly as nnU-Net's does."""

import argparse
import contextlib
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from unittest import mock

from nnunetv2.inference import predict_from_raw_data

from nnunet_ext.checks.input_images import check_prediction_inputs
from nnunet_ext.clicks.clicks_file import check_clicks_for, read_clicks
from nnunet_ext.clicks.prediction_cue import ClickCuePrediction, click_settings
from nnunet_ext.checks.model_folder import check_trained_model, model_folder_of
from nnunet_ext.cli.user_errors import reports_user_errors
from nnunet_ext.core.errors import InputFilesError
from nnunet_ext.core.owned_files import check_may_replace, record_written
from nnunet_ext.diagnosis.predictor import DIAGNOSIS_CSV_NAME, OVERWRITE_FLAG, DiagnosisPredictor
from nnunet_ext.evaluation.presence_probabilities import DEFAULT_CSV_NAME as PRESENCE_CSV_NAME
from nnunet_ext.evaluation.presence_probabilities import write_presence_probabilities_csv

SAVE_PROBABILITIES_FLAG = "--save_probabilities"
NNUNET_DEFAULT_FOLDS = ("0", "1", "2", "3", "4")  # nnUNetv2_predict's default -f


class DiagnosisPredictorOfThisRun(ClickCuePrediction, DiagnosisPredictor):
    """``DiagnosisPredictor`` (with the click cue of a click-guided model) that :func:`main` hands nnU-Net's entry
    point; keeps the instances it built, to report the files they wrote. :func:`main` checked the model folder
    before nnU-Net started (every checkpoint loaded once there), so the predictor does not check it again."""

    instances: List[DiagnosisPredictor] = []
    checks_model_folder = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        DiagnosisPredictorOfThisRun.instances.append(self)


def prediction_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """The arguments of ``nnUNetv2_predict`` that the checks need (nnU-Net's parser checks them all later). Every
    option of nnU-Net's parser is declared, so that argparse splits the command line as nnU-Net's does (``-device``
    is not ``-d evice``, abbreviations resolve alike)."""
    parser = argparse.ArgumentParser(prog="nnunet_ext_predict", add_help=False)
    for flag, default in (("-i", None), ("-o", None), ("-d", None), ("-c", None), ("-p", "nnUNetPlans"),
                          ("-tr", "nnUNetTrainer"), ("-chk", "checkpoint_final.pth"), ("-step_size", None),
                          ("-npp", None), ("-nps", None), ("-prev_stage_predictions", None), ("-num_parts", None),
                          ("-part_id", None), ("-device", None)):
        parser.add_argument(flag, default=default)
    parser.add_argument("-f", nargs="+", default=list(NNUNET_DEFAULT_FOLDS))
    for flag in ("--continue_prediction", "--disable_tta", "--verbose", SAVE_PROBABILITIES_FLAG,
                 "--disable_progress_bar"):
        parser.add_argument(flag, action="store_true")
    known, _ = parser.parse_known_args(list(argv))
    return known


def click_arguments(argv: Sequence[str]) -> Tuple[List[str], argparse.Namespace]:
    """``argv`` without our click options (nnU-Net's parser does not know them), and their values."""
    parser = argparse.ArgumentParser(prog="nnunet_ext_predict", add_help=False, allow_abbrev=False)
    parser.add_argument("--clicks", default=None)
    parser.add_argument("--simulated_clicks", default=None)
    parser.add_argument("--click_seed", type=int, default=0)
    known, rest = parser.parse_known_args(list(argv))
    return rest, known


def check_before_predicting(arguments: argparse.Namespace, overwrite_outputs: bool,
                            clicks: Optional[argparse.Namespace] = None) -> dict:
    """The checks of the module docstring, before nnU-Net starts any worker (nothing is checked where nnU-Net's own
    parser will refuse the arguments anyway). Returns the clicks to predict with (class attributes of
    :class:`ClickCuePrediction`; empty for a model without click cue)."""
    import json

    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    clicks = clicks or argparse.Namespace(clicks=None, simulated_clicks=None, click_seed=0)
    if None in (arguments.i, arguments.o, arguments.d, arguments.c):
        return {}
    model_folder = model_folder_of(arguments.d, arguments.tr, arguments.p, arguments.c)
    check_trained_model(model_folder, arguments.f, arguments.chk)
    dataset_json = json.loads((model_folder / "dataset.json").read_text())
    plans_manager = PlansManager(str(model_folder / "plans.json"))
    cases = check_prediction_inputs(arguments.i, dataset_json, plans_manager.image_reader_writer_class)
    check_may_replace(Path(arguments.o) / PRESENCE_CSV_NAME, OVERWRITE_FLAG, overwrite_outputs)
    return click_options(click_settings(plans_manager.plans) is not None, clicks, list(cases), arguments.tr)


def click_options(click_model: bool, clicks: argparse.Namespace, cases: List[str], trainer: str) -> dict:
    """The clicks of :class:`ClickCuePrediction` for this run, after checking that a click-guided model gets them,
    for every case, and that no other model does."""
    given = [flag for flag in ("--clicks", "--simulated_clicks") if getattr(clicks, flag[2:]) is not None]
    if not click_model:
        if given:
            raise InputFilesError(f"{' and '.join(given)} given, but the model of {trainer} was not trained with a "
                                  f"click cue.", fix=f"leave out {' and '.join(given)}, or predict with a "
                                                     f"click-guided model (ClickGuidedTrainer)")
        return {}
    if len(given) != 1:
        raise InputFilesError(
            f"The model of {trainer} was trained with a click cue and needs clicks: "
            + ("give --clicks or --simulated_clicks, not both." if given else "none were given."),
            fix="--clicks clicks.json ({\"<case id>\": [[x, y, z], ...]} in world mm) or --simulated_clicks "
                "<folder of reference labels> to score on a labelled test set")
    if clicks.clicks is not None:
        points = read_clicks(clicks.clicks)
        check_clicks_for(cases, points, clicks.clicks)
        return {"clicks": points, "clicks_source": str(clicks.clicks)}
    folder = Path(clicks.simulated_clicks)
    if not folder.is_dir():
        raise InputFilesError(f"The folder of reference labels {folder} does not exist.", file=folder,
                              fix="give --simulated_clicks the folder of the cases' label files (e.g. labelsTs)")
    return {"simulated_reference": str(folder), "simulated_seed": int(clicks.click_seed)}


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


@reports_user_errors("nnunet_ext_predict")
def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    overwrite_outputs = OVERWRITE_FLAG in argv
    argv = [a for a in argv if a != OVERWRITE_FLAG]
    argv, clicks = click_arguments(argv)
    click_attributes = check_before_predicting(prediction_arguments(argv), overwrite_outputs, clicks)
    nnunet_argv, output_folder = nnunet_predict_arguments(argv)
    sys.argv = [sys.argv[0], *nnunet_argv]  # predict_entry_point parses sys.argv
    DiagnosisPredictorOfThisRun.instances = []
    with contextlib.ExitStack() as patches:
        patches.enter_context(mock.patch.object(predict_from_raw_data, "nnUNetPredictor",
                                                DiagnosisPredictorOfThisRun))
        patches.enter_context(mock.patch.object(DiagnosisPredictorOfThisRun, "overwrite_outputs", overwrite_outputs))
        for name, value in click_attributes.items():
            patches.enter_context(mock.patch.object(DiagnosisPredictorOfThisRun, name, value))
        predict_from_raw_data.predict_entry_point()
    presence_csv = Path(output_folder) / PRESENCE_CSV_NAME
    check_may_replace(presence_csv, OVERWRITE_FLAG, overwrite_outputs)
    print(f"Presence probabilities per case: {record_written(write_presence_probabilities_csv(output_folder))}")
    for predictor in DiagnosisPredictorOfThisRun.instances:
        message = diagnosis_files_message(predictor.written_diagnosis_csv)
        if message is not None:
            print(message)


if __name__ == "__main__":
    main()
