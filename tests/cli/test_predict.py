"""``nnunet_ext_predict`` hands nnUNetv2_predict's own arguments to nnU-Net with ``--save_probabilities`` (once), then
writes the presence CSV into the ``-o`` folder. No real prediction here: nnU-Net's entry point is replaced."""

import sys

import pytest
import torch
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

import nnunet_ext.cli.predict as predict
from nnunet_ext.cli.predict import diagnosis_files_message, nnunet_predict_arguments
from nnunet_ext.diagnosis.predictor import DiagnosisPredictor

BASE = ["-i", "images", "-o", "predictions", "-d", "501", "-c", "3d_fullres", "-f", "0", "1", "-device", "cpu"]


def test_save_probabilities_is_added_and_the_output_folder_found():
    nnunet_argv, output_folder = nnunet_predict_arguments(BASE)
    assert nnunet_argv == [*BASE, "--save_probabilities"]
    assert output_folder == "predictions"


def test_save_probabilities_given_by_the_user_is_not_repeated():
    argv = ["-d", "501", "--save_probabilities", "-c", "2d", "-i", "images", "-o", "out"]
    nnunet_argv, output_folder = nnunet_predict_arguments(argv)
    assert nnunet_argv == argv and nnunet_argv.count("--save_probabilities") == 1
    assert output_folder == "out"


@pytest.mark.parametrize("output_argument", [["-o", "out dir"], ["-o=out dir"], ["-oout dir"]])
def test_every_argparse_spelling_of_the_output_folder_is_found(output_argument):
    _, output_folder = nnunet_predict_arguments(["-i", "images", *output_argument, "-d", "501", "-c", "2d"])
    assert output_folder == "out dir"


def test_missing_output_folder_is_left_for_nnunet_to_report():
    nnunet_argv, output_folder = nnunet_predict_arguments(["-i", "images"])
    assert output_folder is None and nnunet_argv == ["-i", "images", "--save_probabilities"]


@pytest.fixture
def checked(monkeypatch, tmp_path):
    """The checks before prediction (tests/checks) pass; our files go to a real folder."""
    monkeypatch.setattr(predict, "check_before_predicting", lambda arguments, overwrite, clicks=None: {})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "predictions").mkdir()


def fake_presence_csv(folder):
    path = f"{folder}/presence_probabilities.csv"
    open(path, "w").write("case\n")
    return path


def test_main_runs_nnunet_on_the_prepared_arguments_then_writes_the_csv(monkeypatch, capsys, checked):
    seen = {}
    monkeypatch.setattr(sys, "argv", ["nnunet_ext_predict"])
    monkeypatch.setattr(predict.predict_from_raw_data, "predict_entry_point",
                        lambda: seen.setdefault("argv", list(sys.argv)))
    monkeypatch.setattr(predict, "write_presence_probabilities_csv",
                        lambda folder: fake_presence_csv(seen.setdefault("csv_folder", folder)))
    predict.main(BASE)
    assert seen["argv"] == ["nnunet_ext_predict", *BASE, "--save_probabilities"]
    assert seen["csv_folder"] == "predictions"
    assert "predictions/presence_probabilities.csv" in capsys.readouterr().out


def test_nnunet_builds_our_predictor_and_main_names_the_diagnosis_file_it_wrote(monkeypatch, capsys, tmp_path,
                                                                                checked):
    csv_path = str(tmp_path / "diagnosis_predictions.csv")

    def entry_point():  # what nnU-Net's predict_entry_point does with the class, then a prediction's result
        predictor = predict.predict_from_raw_data.nnUNetPredictor(device=torch.device("cpu"))
        assert isinstance(predictor, DiagnosisPredictor)
        predictor.written_diagnosis_csv = csv_path

    monkeypatch.setattr(sys, "argv", ["nnunet_ext_predict"])
    monkeypatch.setattr(predict.predict_from_raw_data, "predict_entry_point", entry_point)
    monkeypatch.setattr(predict, "write_presence_probabilities_csv", fake_presence_csv)
    predict.main(BASE)
    assert f"Diagnosis per case: {csv_path}" in capsys.readouterr().out
    assert predict.predict_from_raw_data.nnUNetPredictor is nnUNetPredictor  # only for the call


def test_a_part_says_where_the_joined_file_will_be(tmp_path):
    part = tmp_path / "diagnosis_predictions_part0of2.csv"
    assert "written when the last part" in diagnosis_files_message(str(part))
    (tmp_path / "diagnosis_predictions.csv").write_text("")
    assert diagnosis_files_message(str(part)).startswith(f"Diagnosis per case: {tmp_path}/diagnosis_predictions.csv")
    assert diagnosis_files_message(None) is None


def test_click_options_are_taken_out_of_nnunets_arguments():
    rest, clicks = predict.click_arguments(["-i", "in", "--clicks", "c.json", "--click_seed", "3", "-o", "out"])
    assert rest == ["-i", "in", "-o", "out"] and clicks.clicks == "c.json" and clicks.click_seed == 3
    rest, clicks = predict.click_arguments(["-i", "in", "--c"])  # nnU-Net's own flags are left alone
    assert rest == ["-i", "in", "--c"] and clicks.clicks is None


def test_a_click_model_needs_clicks_for_every_case_and_no_other_model_takes_them(tmp_path):
    from argparse import Namespace

    from nnunet_ext.core.errors import InputFilesError

    none = Namespace(clicks=None, simulated_clicks=None, click_seed=0)
    assert predict.click_options(False, none, ["a"], "nnUNetTrainer") == {}
    with pytest.raises(InputFilesError, match="trained with a click cue and needs clicks: none were given"):
        predict.click_options(True, none, ["a"], "ClickGuidedTrainer")
    clicks_file = tmp_path / "clicks.json"
    clicks_file.write_text('{"a": [1, 2, 3]}')
    with_file = Namespace(clicks=str(clicks_file), simulated_clicks=None, click_seed=0)
    with pytest.raises(InputFilesError, match="was not trained with a click cue"):
        predict.click_options(False, with_file, ["a"], "nnUNetTrainer")
    assert predict.click_options(True, with_file, ["a"], "ClickGuidedTrainer")["clicks"] == {"a": [[1.0, 2.0, 3.0]]}
    with pytest.raises(InputFilesError, match="no click for case"):
        predict.click_options(True, with_file, ["a", "b"], "ClickGuidedTrainer")
    both = Namespace(clicks=str(clicks_file), simulated_clicks=str(tmp_path), click_seed=0)
    with pytest.raises(InputFilesError, match="not both"):
        predict.click_options(True, both, ["a"], "ClickGuidedTrainer")
    simulated = Namespace(clicks=None, simulated_clicks=str(tmp_path), click_seed=5)
    assert predict.click_options(True, simulated, ["a"], "ClickGuidedTrainer") == {
        "simulated_reference": str(tmp_path), "simulated_seed": 5}
    with pytest.raises(InputFilesError, match="does not exist"):
        predict.click_options(True, Namespace(clicks=None, simulated_clicks=str(tmp_path / "no"), click_seed=0),
                              ["a"], "ClickGuidedTrainer")
