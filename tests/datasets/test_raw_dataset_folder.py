"""Tests for nnunet_ext.datasets.raw_dataset_folder: output checks, staged publication, dataset.json."""

import json

import pytest

from nnunet_ext.datasets.raw_dataset_folder import (check_output_folder, staged_dataset_folder,
                                                    validate_dataset_id_and_name, write_dataset_json)

FOLDER_NAME = "Dataset042_Example"


@pytest.mark.parametrize("dataset_id, name, message", [(0, "Example", "dataset_id"), (1000, "Example", "dataset_id"),
                                                       (42, "bad/name", "name"), (42, "", "name")])
def test_invalid_id_or_name_is_rejected(dataset_id, name, message):
    with pytest.raises(ValueError, match=message):
        validate_dataset_id_and_name(dataset_id, name)


def test_valid_id_and_name_are_accepted():
    validate_dataset_id_and_name(1, "Example_2-b")
    validate_dataset_id_and_name(999, "x")


def test_missing_folder_passes_the_check(tmp_path):
    check_output_folder(tmp_path, FOLDER_NAME, 42, overwrite=False)


def test_existing_folder_is_refused_without_overwrite_and_accepted_with_it(tmp_path):
    (tmp_path / FOLDER_NAME).mkdir()
    with pytest.raises(FileExistsError, match="overwrite=True") as error:
        check_output_folder(tmp_path, FOLDER_NAME, 42, overwrite=False)
    assert str(tmp_path / FOLDER_NAME) in str(error.value)
    check_output_folder(tmp_path, FOLDER_NAME, 42, overwrite=True)


def test_other_folder_with_the_same_id_is_refused_even_with_overwrite(tmp_path):
    (tmp_path / "Dataset042_Other").mkdir()
    with pytest.raises(FileExistsError, match="Dataset042_Other"):
        check_output_folder(tmp_path, FOLDER_NAME, 42, overwrite=True)
    check_output_folder(tmp_path, "Dataset043_Example", 43, overwrite=False)


def test_staged_folder_is_hidden_then_published(tmp_path):
    with staged_dataset_folder(tmp_path, FOLDER_NAME) as staging:
        assert staging.parent == tmp_path and staging.name.startswith(f".{FOLDER_NAME}.")
        assert list(staging.iterdir()) == []
        (staging / "file.txt").write_text("new")
        assert not (tmp_path / FOLDER_NAME).exists()
    assert (tmp_path / FOLDER_NAME / "file.txt").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == [FOLDER_NAME]


def test_staged_folder_replaces_an_existing_target(tmp_path):
    (tmp_path / FOLDER_NAME).mkdir()
    (tmp_path / FOLDER_NAME / "stale.txt").write_text("old")
    with staged_dataset_folder(tmp_path, FOLDER_NAME) as staging:
        (staging / "file.txt").write_text("new")
    assert sorted(p.name for p in (tmp_path / FOLDER_NAME).iterdir()) == ["file.txt"]


def test_failure_removes_the_staging_folder_and_keeps_the_target(tmp_path):
    (tmp_path / FOLDER_NAME).mkdir()
    (tmp_path / FOLDER_NAME / "kept.txt").write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with staged_dataset_folder(tmp_path, FOLDER_NAME) as staging:
            (staging / "partial.txt").write_text("partial")
            raise RuntimeError("boom")
    assert [p.name for p in tmp_path.iterdir()] == [FOLDER_NAME]
    assert sorted(p.name for p in (tmp_path / FOLDER_NAME).iterdir()) == ["kept.txt"]


def test_dataset_json_is_indented_and_ends_with_a_newline(tmp_path):
    content = {"name": "Example", "labels": {"background": 0, "lesion": [1, 2]}}
    write_dataset_json(tmp_path, content)
    text = (tmp_path / "dataset.json").read_text()
    assert text == json.dumps(content, indent=2) + "\n"
    assert json.loads(text) == content
