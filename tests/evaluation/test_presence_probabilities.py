"""Per-case presence probabilities from ``nnUNetv2_predict --save_probabilities`` exports: named columns, one row
per case, the maximum voxel probability per channel, background left out, and clear errors."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from nnunet_ext.cli.presence import main
from nnunet_ext.evaluation.presence_probabilities import write_presence_probabilities_csv

SOFTMAX_JSON = {"labels": {"background": 0, "edema": 1, "tumor": 2}, "file_ending": ".nii.gz"}
REGIONS_JSON = {"labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": 3},
                "regions_class_order": [1, 2, 3], "file_ending": ".nii.gz"}
SPATIAL = (3, 4, 5)


def probabilities_with_maxima(maxima) -> np.ndarray:
    """(C, *SPATIAL) float32 probabilities whose channel c peaks at ``maxima[c]`` in a different voxel per channel."""
    rng = np.random.default_rng(0)
    probabilities = np.zeros((len(maxima), *SPATIAL), dtype=np.float32)
    for channel, maximum in enumerate(maxima):
        probabilities[channel] = rng.uniform(0, maximum / 2, SPATIAL)
        probabilities[channel].flat[channel * 7] = maximum
    return probabilities


def write_prediction_folder(folder: Path, dataset_json: dict, maxima_by_case: dict) -> None:
    """What nnUNetv2_predict --save_probabilities leaves: <case>.npz (key probabilities), <case>.nii.gz, dataset.json."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset.json").write_text(json.dumps(dataset_json))
    for case, maxima in maxima_by_case.items():
        np.savez_compressed(folder / f"{case}.npz", probabilities=probabilities_with_maxima(maxima))
        (folder / f"{case}.nii.gz").write_bytes(b"segmentation of " + case.encode())


def read_csv(path: Path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_softmax_dataset_rows_hold_the_maximum_of_each_foreground_channel(tmp_path):
    write_prediction_folder(tmp_path, SOFTMAX_JSON, {"case_b": [1.0, 0.2, 0.61234], "case_a": [0.95, 0.73214, 0.1]})
    output = write_presence_probabilities_csv(tmp_path)
    assert output == tmp_path / "presence_probabilities.csv"
    assert read_csv(output) == [["case", "edema", "tumor"], ["case_a", "0.7321", "0.1000"],
                                ["case_b", "0.2000", "0.6123"]]


def test_region_dataset_has_one_column_per_region_channel(tmp_path):
    write_prediction_folder(tmp_path, REGIONS_JSON, {"case_a": [0.9, 0.45, 0.05]})
    rows = read_csv(write_presence_probabilities_csv(tmp_path))
    assert rows == [["case", "whole tumor", "tumor core", "enhancing tumor"], ["case_a", "0.9000", "0.4500", "0.0500"]]


def test_nothing_but_the_csv_is_written(tmp_path):
    write_prediction_folder(tmp_path, SOFTMAX_JSON, {"case_a": [0.9, 0.4, 0.3]})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    write_presence_probabilities_csv(tmp_path)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(after) - set(before) == {"presence_probabilities.csv"}
    assert all(after[name] == content for name, content in before.items())
    with pytest.raises(ValueError):
        write_presence_probabilities_csv(tmp_path, tmp_path / "case_a.nii.gz")
    assert (tmp_path / "case_a.nii.gz").read_bytes() == before["case_a.nii.gz"]


def test_missing_probabilities_name_the_folder_and_the_fix(tmp_path):
    write_prediction_folder(tmp_path, SOFTMAX_JSON, {})
    (tmp_path / "case_a.nii.gz").write_bytes(b"segmentation only")
    with pytest.raises(FileNotFoundError) as error:
        write_presence_probabilities_csv(tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message and "--save_probabilities" in message and "nnunet_ext_predict" in message


def test_missing_dataset_json_is_reported(tmp_path):
    write_prediction_folder(tmp_path, SOFTMAX_JSON, {"case_a": [0.9, 0.4, 0.3]})
    (tmp_path / "dataset.json").unlink()
    with pytest.raises(FileNotFoundError, match="dataset.json"):
        write_presence_probabilities_csv(tmp_path)


def test_channel_count_must_match_the_dataset(tmp_path):
    write_prediction_folder(tmp_path, SOFTMAX_JSON, {"case_a": [0.9, 0.4]})
    with pytest.raises(ValueError, match="case_a.npz"):
        write_presence_probabilities_csv(tmp_path)


def test_command_line_writes_to_the_given_csv(tmp_path, capsys):
    predictions = tmp_path / "predictions"
    write_prediction_folder(predictions, SOFTMAX_JSON, {"case_a": [0.9, 0.4, 0.3]})
    main(["-i", str(predictions), "-o", str(tmp_path / "out.csv")])
    assert read_csv(tmp_path / "out.csv")[1] == ["case_a", "0.4000", "0.3000"]
    assert str(tmp_path / "out.csv") in capsys.readouterr().out
    assert not (predictions / "presence_probabilities.csv").exists()
