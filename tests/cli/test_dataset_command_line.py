"""The dataset builders' shared command line: ``--raw``, and expected errors as a message with exit status 2."""

import pytest

from nnunet_ext.cli.dataset_command_line import command_line_parser, run_command_line


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
