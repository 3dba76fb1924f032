"""``nnunet_ext_predict`` stops a user's mistake before nnU-Net starts, with one line naming the file, the case and
the fix (exit status 2; ``--debug`` shows the traceback): a misspelled trainer, a fold or checkpoint that is not
there, a checkpoint of another trainer in the model's folder, input files without the channel suffix or with the
wrong channels, NaN voxels, a user's own file where ours would go, ``nnUNet_results`` unset. nnU-Net's entry point
is replaced by a recorder: a check that passes lets it run."""

import json
import sys
from pathlib import Path

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk
import torch

import nnunet_ext.cli.predict as predict
from nnunet_ext.core.errors import IncompatibleCheckpointError, InputFilesError

TRAINER = "DivAttentionTrainer"
DATASET = "Dataset501_Tiny"


def write_image(path, array):
    sitk.WriteImage(sitk.GetImageFromArray(np.asarray(array, dtype=np.float32)), str(path))


@pytest.fixture
def model(tmp_path, monkeypatch):
    """A model folder of ``TRAINER`` (fold 0, checkpoint_final.pth written by it, 2 channels), an input folder of
    one good case, and the recorder in place of nnU-Net's entry point."""
    results = tmp_path / "nnUNet_results"
    folder = results / DATASET / f"{TRAINER}__nnUNetPlans__2d"
    (folder / "fold_0").mkdir(parents=True)
    (folder / "dataset.json").write_text(json.dumps({"channel_names": {"0": "T1", "1": "T2"},
                                                     "labels": {"background": 0, "lesion": 1},
                                                     "file_ending": ".nii.gz", "numTraining": 5}))
    (folder / "plans.json").write_text(json.dumps({"plans_name": "nnUNetPlans", "image_reader_writer": "SimpleITKIO",
                                                   "configurations": {}}))
    torch.save({"trainer_name": TRAINER, "network_weights": {}}, folder / "fold_0" / "checkpoint_final.pth")
    images = tmp_path / "images"
    images.mkdir()
    for channel in (0, 1):
        write_image(images / f"case_a_{channel:04d}.nii.gz", np.ones((4, 8, 8)))
    monkeypatch.setenv("nnUNet_results", str(results))
    monkeypatch.delenv("NNUNET_EXT_DEBUG", raising=False)
    ran = []
    monkeypatch.setattr(sys, "argv", ["nnunet_ext_predict"])
    monkeypatch.setattr(predict.predict_from_raw_data, "predict_entry_point", lambda: ran.append(list(sys.argv)))
    monkeypatch.setattr(predict, "write_presence_probabilities_csv", lambda output: _presence_csv(Path(output)))
    return {"folder": folder, "images": images, "output": tmp_path / "predictions", "ran": ran}


def _presence_csv(output):
    output.mkdir(parents=True, exist_ok=True)
    (output / "presence_probabilities.csv").write_text("case,lesion\ncase_a,0.5\n")
    return output / "presence_probabilities.csv"


def arguments(model, *extra, trainer=TRAINER, folds=("0",)):
    return ["-i", str(model["images"]), "-o", str(model["output"]), "-d", "501", "-c", "2d", "-tr", trainer,
            "-f", *folds, "-device", "cpu", *extra]


def refused(model, argv, capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        predict.main(argv)
    assert stop.value.code == 2 and model["ran"] == []  # stopped before nnU-Net started
    error = capsys.readouterr().err
    assert error.startswith("nnunet_ext_predict: error: ") and "Traceback" not in error
    return error


def test_valid_input_reaches_nnunet(model):
    predict.main(arguments(model))
    assert len(model["ran"]) == 1 and (model["output"] / "presence_probabilities.csv").is_file()
    predict.main(arguments(model))  # our own file from the first run is replaced
    assert len(model["ran"]) == 2


def test_a_misspelled_trainer_gets_the_closest_trained_ones(model, capsys):
    error = refused(model, arguments(model, trainer="DivAtentionTrainer"), capsys)
    assert "no trained model 'DivAtentionTrainer__nnUNetPlans__2d'" in error
    assert f"Did you mean {TRAINER}" in error and f"{TRAINER}__nnUNetPlans__2d" in error


def test_a_fold_that_is_not_there_lists_the_folds_that_are(model, capsys):
    error = refused(model, arguments(model, folds=("0", "1")), capsys)
    assert "has no fold 1 (folds present: 0)" in error and "pass -f 0" in error


def test_nnunets_default_five_folds_on_a_one_fold_model_say_which_fold_to_pass(model, capsys):
    argv = [a for a in arguments(model) if a not in ("-f",)]
    argv.remove("0")
    assert "has no fold 1, 2, 3, 4" in refused(model, argv, capsys)


def test_a_checkpoint_that_is_not_there_lists_the_ones_that_are(model, capsys):
    error = refused(model, arguments(model, "-chk", "checkpoint_best.pth"), capsys)
    assert "fold 0" in error and "has no checkpoint_best.pth" in error and "checkpoint_final.pth" in error


def test_a_checkpoint_of_another_trainer_in_the_models_folder_is_refused(model, capsys):
    torch.save({"trainer_name": "nnUNetTrainer", "network_weights": {}},
               model["folder"] / "fold_0" / "checkpoint_final.pth")
    error = refused(model, arguments(model), capsys)
    assert "written by trainer 'nnUNetTrainer'" in error and f"model folder of '{TRAINER}'" in error


def test_a_file_without_the_channel_suffix_is_named_with_its_new_name(model, capsys):
    write_image(model["images"] / "case_b.nii.gz", np.ones((4, 8, 8)))
    error = refused(model, arguments(model), capsys)
    assert "case_b.nii.gz has no channel suffix" in error and "rename it to case_b_0000.nii.gz" in error


def test_a_case_without_all_channels_names_the_missing_one(model, capsys):
    write_image(model["images"] / "case_c_0000.nii.gz", np.ones((4, 8, 8)))
    error = refused(model, arguments(model), capsys)
    assert "case 'case_c' has channels _0000" in error and "missing _0001" in error and "_0001 (T2)" in error


def test_nan_voxels_are_counted_in_the_file_that_holds_them(model, capsys):
    image = np.ones((4, 8, 8))
    image[1, 2, 3] = np.nan
    image[2, 2, 2] = np.inf
    # as the user's own pipeline wrote it (SimpleITK would store NaN, but reads it back as 0, as nnU-Net does)
    nibabel.save(nibabel.Nifti1Image(image.astype(np.float32), np.eye(4)), model["images"] / "case_a_0001.nii.gz")
    error = refused(model, arguments(model), capsys)
    assert "case_a_0001.nii.gz holds 2 NaN or infinite voxel(s)" in error and "Case: case_a" in error


def test_the_users_own_file_where_ours_would_go_is_left_alone(model, capsys):
    model["output"].mkdir()
    (model["output"] / "presence_probabilities.csv").write_text("my own table\n")
    error = refused(model, arguments(model), capsys)
    assert "presence_probabilities.csv exists and was not written by nnunet_ext" in error
    assert "--overwrite_outputs" in error
    assert (model["output"] / "presence_probabilities.csv").read_text() == "my own table\n"
    predict.main(arguments(model, "--overwrite_outputs"))
    assert "--overwrite_outputs" not in model["ran"][0]  # our flag, not handed to nnU-Net


def test_unset_nnunet_results_is_said(model, capsys, monkeypatch):
    monkeypatch.delenv("nnUNet_results")
    assert "nnUNet_results is not set" in refused(model, arguments(model), capsys)


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_debug_shows_the_traceback(model, monkeypatch, how):
    if how == "environment":
        monkeypatch.setenv("NNUNET_EXT_DEBUG", "1")
    with pytest.raises(InputFilesError, match="no trained model"):
        predict.main(arguments(model, *(["--debug"] if how == "flag" else []), trainer="Nope"))


def test_errors_are_of_our_user_error_type():
    from nnunet_ext.core.errors import UserInputError

    error = InputFilesError("Something is wrong.", file="a.json", case="case_1", fix="do this.")
    assert str(error) == "Something is wrong. File: a.json. Case: case_1. Fix: do this."
    assert isinstance(error, ValueError) and isinstance(IncompatibleCheckpointError("x"), UserInputError)


def test_the_python_api_refuses_a_checkpoint_of_another_trainer_too(model):
    """``DiagnosisPredictor.initialize_from_trained_model_folder`` (the Python API, no command line) runs the model
    folder checks first: a plain nnU-Net checkpoint in the folder of another trainer stops there."""
    from nnunet_ext.diagnosis.predictor import DiagnosisPredictor

    torch.save({"trainer_name": "nnUNetTrainer", "network_weights": {}},
               model["folder"] / "fold_0" / "checkpoint_final.pth")
    predictor = DiagnosisPredictor(device=torch.device("cpu"))
    with pytest.raises(IncompatibleCheckpointError, match="written by trainer 'nnUNetTrainer'"):
        predictor.initialize_from_trained_model_folder(str(model["folder"]), (0,), "checkpoint_final.pth")
    with pytest.raises(InputFilesError, match="has no fold 3"):
        predictor.initialize_from_trained_model_folder(str(model["folder"]), (3,), "checkpoint_final.pth")
