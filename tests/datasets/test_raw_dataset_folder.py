"""Tests for nnunet_ext.datasets.raw_dataset_folder: output checks, staged publication, dataset.json, command line."""

import json

import pytest

from nnunet_ext.datasets.raw_dataset_folder import (check_output_folder, command_line_parser, run_command_line,
                                                    staged_dataset_folder, validate_dataset_id_and_name,
                                                    write_dataset_json)

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


def test_parser_requires_raw(capsys):
    parser = command_line_parser("Example builder.")
    assert parser.parse_args(["--raw", "some/folder"]).raw == "some/folder"
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([])
    assert exit_info.value.code == 2
    assert "--raw" in capsys.readouterr().err


def test_run_command_line_prints_the_created_folder(tmp_path, capsys):
    def create(raw, name="x"):
        return tmp_path / raw / name

    run_command_line(command_line_parser("Example builder."), create, "raw", name="Example")
    assert capsys.readouterr().out.strip() == str(tmp_path / "raw" / "Example")


@pytest.mark.parametrize("error_type", [FileNotFoundError, FileExistsError, ValueError])
def test_run_command_line_reports_expected_errors_with_status_2(capsys, error_type):
    def create():
        raise error_type("something is wrong")

    with pytest.raises(SystemExit) as exit_info:
        run_command_line(command_line_parser("Example builder."), create)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert "error: something is wrong" in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


def test_run_command_line_lets_unexpected_errors_through():
    def create():
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        run_command_line(command_line_parser("Example builder."), create)
