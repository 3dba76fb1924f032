"""Tests of the demo's work-dir guard, options and results table (fast: nothing is trained)."""

import math
from pathlib import Path

import pytest

from nnunet_ext.cli import demo


def _files_with_contents(folder: Path) -> dict:
    """``{relative path: bytes}`` of every file under ``folder``."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def _fail_if_called(*args, **kwargs):
    raise AssertionError("the demo ran a step although the work dir was refused")


@pytest.fixture
def no_demo_steps(monkeypatch):
    """Make any attempt to generate data or run nnU-Net fail the test."""
    monkeypatch.setattr(demo, "run_demo", _fail_if_called)
    monkeypatch.setattr(demo, "generate_synthetic_dataset", _fail_if_called)


def test_refuses_non_empty_unmarked_work_dir_and_leaves_it_untouched(tmp_path, capsys, no_demo_steps):
    work_dir = tmp_path / "mine"
    (work_dir / "nnUNet_raw").mkdir(parents=True)
    (work_dir / "notes.txt").write_text("my notes")
    (work_dir / "nnUNet_raw" / "important.nii.gz").write_bytes(b"\x00\x01data")
    before = _files_with_contents(work_dir)

    exit_code = demo.main(["--work-dir", str(work_dir)])

    assert exit_code == 2
    assert _files_with_contents(work_dir) == before
    assert sorted(p.name for p in work_dir.iterdir()) == ["nnUNet_raw", "notes.txt"]
    message = capsys.readouterr().err
    assert str(work_dir) in message
    assert "--work-dir" in message and "empty" in message


def test_refuses_a_file_as_work_dir(tmp_path, no_demo_steps):
    a_file = tmp_path / "results.csv"
    a_file.write_text("a,b\n")

    assert demo.main(["--work-dir", str(a_file)]) == 2
    assert a_file.read_text() == "a,b\n"


def test_new_work_dir_is_created_with_marker(tmp_path):
    work_dir = tmp_path / "new" / "demo"

    assert demo.prepare_work_dir(work_dir) is False
    assert (work_dir / demo.DEMO_MARKER).is_file()


def test_empty_existing_work_dir_gets_marker(tmp_path):
    assert demo.prepare_work_dir(tmp_path) is False
    assert (tmp_path / demo.DEMO_MARKER).is_file()


def an_earlier_run(work_dir: Path) -> None:
    """The marker, files in every demo folder, and the manifest a finished run leaves."""
    (work_dir / demo.DEMO_MARKER).write_text("")
    for name in demo.DEMO_FOLDERS:
        (work_dir / name / "sub").mkdir(parents=True)
        (work_dir / name / "sub" / "old.txt").write_text("old run")
    demo.record_demo_files(work_dir)


def test_marked_work_dir_is_cleared_of_the_files_the_last_run_wrote_only(tmp_path):
    an_earlier_run(tmp_path)
    (tmp_path / "my_notes.txt").write_text("mine")  # beside the demo's folders: never touched

    assert demo.prepare_work_dir(tmp_path) is True
    assert sorted(p.name for p in tmp_path.iterdir()) == [demo.DEMO_MARKER, "my_notes.txt"]


@pytest.mark.parametrize("change", ["a user's dataset in nnUNet_raw", "an edited result", "a link to elsewhere"])
def test_a_file_the_demo_did_not_write_stops_the_clearing_and_nothing_is_deleted(tmp_path, capsys, change):
    an_earlier_run(tmp_path)
    if change == "a user's dataset in nnUNet_raw":
        (tmp_path / "nnUNet_raw" / "Dataset900_Mine").mkdir()
        (tmp_path / "nnUNet_raw" / "Dataset900_Mine" / "case_0000.nii.gz").write_bytes(b"months of labelling")
        named = "nnUNet_raw/Dataset900_Mine/case_0000.nii.gz"
    elif change == "an edited result":
        (tmp_path / "predictions" / "sub" / "old.txt").write_text("checked by hand, keep")
        named = "predictions/sub/old.txt"
    else:
        outside = tmp_path.parent / f"{tmp_path.name}_outside"
        outside.mkdir()
        (outside / "keep.txt").write_text("keep")
        (tmp_path / "logs" / "elsewhere").symlink_to(outside, target_is_directory=True)
        named = "logs/elsewhere"
    before = _files_with_contents(tmp_path)

    assert demo.main(["--work-dir", str(tmp_path), "--trainers", "nnUNetTrainer"]) == 2
    assert _files_with_contents(tmp_path) == before
    error = capsys.readouterr().err
    assert named in error and "Nothing was deleted" in error and "choose another --work-dir" in error


def test_a_misspelled_trainer_is_refused_before_any_step(tmp_path, capsys, no_demo_steps):
    assert demo.main(["--work-dir", str(tmp_path / "work"), "--trainers", "DivAttentionTrainer_Shrt"]) == 2
    error = capsys.readouterr().err
    assert "no trainer is called 'DivAttentionTrainer_Shrt'" in error and "DivAttentionTrainer_Short" in error
    assert not (tmp_path / "work").exists()


def test_argument_defaults():
    arguments = demo.parse_arguments([])

    assert arguments.work_dir == Path("./demo_work")
    assert (arguments.epochs, arguments.iterations, arguments.val_iterations) == (20, 10, 2)
    assert (arguments.num_training, arguments.num_test) == (10, 4)
    assert list(arguments.shape) == [20, 32, 32]
    assert arguments.trainers == ["DivAttentionTrainer_Short", "PlainUNetTrainer_Short"]


def test_arguments_accept_any_trainer_names_and_a_shape():
    arguments = demo.parse_arguments(["--trainers", "nnUNetTrainer", "MyTrainer", "--shape", "16", "32", "40",
                                      "--epochs", "2", "--work-dir", "/tmp/x"])

    assert arguments.trainers == ["nnUNetTrainer", "MyTrainer"]
    assert list(arguments.shape) == [16, 32, 40]
    assert arguments.epochs == 2
    assert arguments.work_dir == Path("/tmp/x")


@pytest.mark.parametrize("options", [["--epochs", "0"], ["--iterations", "-1"], ["--num-training", "4"],
                                     ["--shape", "4", "48", "48"], ["--num-test", "many"]])
def test_invalid_arguments_are_refused(options):
    with pytest.raises(SystemExit) as exit_info:
        demo.parse_arguments(options)
    assert exit_info.value.code == 2


def _example_rows():
    return [
        demo.TrainerResult("DivAttentionTrainer_Short", {"organ": 0.91234, "lesion": 0.4}, 0.65617, 123.4, 9.6),
        demo.TrainerResult("PlainUNetTrainer_Short", {"organ": 0.8, "lesion": math.nan}, 0.8, 98.0, 12.2),
    ]


def test_results_table_contains_trainers_classes_and_formatted_numbers():
    table = demo.format_results_table(_example_rows())
    lines = table.splitlines()

    assert "Dice organ" in lines[0] and "Dice lesion" in lines[0] and "mean Dice" in lines[0]
    assert lines[0].index("Dice organ") < lines[0].index("Dice lesion")
    div_row = next(line for line in lines if line.startswith("DivAttentionTrainer_Short"))
    plain_row = next(line for line in lines if line.startswith("PlainUNetTrainer_Short"))
    assert div_row.split() == ["DivAttentionTrainer_Short", "0.912", "0.400", "0.656", "123", "s", "10", "s"]
    assert plain_row.split() == ["PlainUNetTrainer_Short", "0.800", "n/a", "0.800", "98", "s", "12", "s"]


def test_results_table_columns_are_aligned():
    lines = demo.format_results_table(_example_rows()).splitlines()

    assert len({len(line) for line in lines}) == 1


def test_trainer_result_reads_nnunet_summary_with_class_names(tmp_path):
    (tmp_path / "dataset.json").write_text('{"labels": {"background": 0, "organ": 1, "lesion": 2}}')
    summary = {"mean": {"1": {"Dice": 0.9}, "2": {"Dice": 0.5}}, "foreground_mean": {"Dice": 0.7}}

    row = demo.trainer_result("T", summary, demo.class_names(tmp_path), 10.0, 2.0)

    assert row == demo.TrainerResult("T", {"organ": 0.9, "lesion": 0.5}, 0.7, 10.0, 2.0)
    assert list(row.dice_per_class) == ["organ", "lesion"]


class FakeNnunet:
    """Stands in for the dataset generator and nnU-Net's commands: records the calls, trains nothing."""

    def __init__(self, failing_command=None):
        self.calls = []
        self.failing_command = failing_command

    def _record(self, command, *details):
        self.calls.append((command, *details))
        if command == self.failing_command:
            raise RuntimeError(f"nnUNetv2_{command} failed with exit code 1")

    def generate_synthetic_dataset(self, raw_root, dataset_id, **kwargs):
        self._record("generate", dataset_id, kwargs["shape"])
        folder = Path(raw_root) / "Dataset501_SyntheticLesions"
        (folder / "imagesTs").mkdir(parents=True)
        (folder / "dataset.json").write_text('{"labels": {"background": 0, "organ": 1, "lesion": 2}}')
        (folder / "imagesTs" / "synth_010_0000.nii.gz").write_bytes(b"")
        return folder

    def plan_and_preprocess(self, dataset_id, configurations, environment, log_file):
        self._record("plan", dataset_id, list(configurations))
        return 1.0

    def train(self, dataset_id, configuration, fold, trainer, environment, log_file):
        self._record("train", trainer, fold, environment["NNUNET_EXT_EPOCHS"], environment["NNUNET_EXT_ITERATIONS"])
        return 42.0

    def predict(self, images, output, dataset_id, configuration, fold, trainer, environment, log_file):
        self._record("predict", trainer, Path(images).name)
        return 7.0

    def evaluate(self, labels, predictions, environment, log_file):
        self._record("evaluate", Path(predictions).name, Path(labels).name)
        return {"mean": {"1": {"Dice": 0.875}, "2": {"Dice": 0.25}}, "foreground_mean": {"Dice": 0.5625}}

    def run_nnunet_command(self, arguments, environment, log_file):
        arguments = [str(a) for a in arguments]
        self._record(arguments[0], arguments[arguments.index("-tr") + 1], sorted(Path(arguments[2]).iterdir()))
        return 3.0


@pytest.fixture
def fake_nnunet(monkeypatch):
    def install(failing_command=None):
        fake = FakeNnunet(failing_command)
        monkeypatch.setattr(demo, "check_trainer_names", lambda names: None)  # the fake trains any name
        monkeypatch.setattr(demo, "generate_synthetic_dataset", fake.generate_synthetic_dataset)
        for name in ("plan_and_preprocess", "train", "predict", "evaluate", "run_nnunet_command"):
            monkeypatch.setattr(demo.nnunet_commands, name, getattr(fake, name))
        return fake
    return install


def test_main_runs_the_steps_in_order_and_prints_the_table(tmp_path, capsys, fake_nnunet):
    fake = fake_nnunet()

    exit_code = demo.main(["--work-dir", str(tmp_path / "work"), "--epochs", "3", "--iterations", "4",
                           "--trainers", "A_Short", "B_Short"])

    assert exit_code == 0
    assert [call[0] for call in fake.calls] == ["generate", "plan", "train", "train", "predict", "predict",
                                                "evaluate", "evaluate"]
    assert ("train", "A_Short", 0, "3", "4") in fake.calls
    assert ("predict", "B_Short", "imagesTs") in fake.calls
    assert ("evaluate", "B_Short", "labelsTs") in fake.calls
    output = capsys.readouterr().out
    for number in (1, 2, 3, 4, 5, 7):  # step 6, the Div-attention maps, only for a Div-attention trainer
        assert f"[{number}/7]" in output
    assert "[6/7]" not in output
    assert "training A_Short (3 epochs x 4 iterations)" in output
    assert "done in" in output
    table_rows = [line.split() for line in output.splitlines() if line.startswith(("A_Short", "B_Short"))]
    assert table_rows == [[name, "0.875", "0.250", "0.562", "42", "s", "7", "s"] for name in ("A_Short", "B_Short")]
    assert str(tmp_path / "work" / "logs") in output


def test_the_div_attention_model_writes_the_maps_of_the_first_test_case(tmp_path, capsys, fake_nnunet):
    fake = fake_nnunet()
    work_dir = tmp_path / "work"
    assert demo.main(["--work-dir", str(work_dir)]) == 0
    attention = [call for call in fake.calls if call[0] == "nnunet_ext_attention"]
    assert attention == [("nnunet_ext_attention", "DivAttentionTrainer_Short",
                          [work_dir / "attention_maps" / "input" / "synth_010_0000.nii.gz"])]
    output = capsys.readouterr().out
    assert "[6/7] writing the Div-attention maps of the first test case with DivAttentionTrainer_Short" in output
    figure = work_dir / "attention_maps" / "DivAttentionTrainer_Short" / "synth_010" / "synth_010_attention.png"
    assert f"figure {figure.resolve()}" in output


def test_main_returns_1_and_no_table_when_a_step_fails(tmp_path, capsys, fake_nnunet):
    fake_nnunet(failing_command="train")

    assert demo.main(["--work-dir", str(tmp_path / "work")]) == 1
    captured = capsys.readouterr()
    assert "failed" in captured.out
    assert "mean Dice" not in captured.out
    assert "nnUNetv2_train failed" in captured.err


def test_second_run_in_marked_work_dir_says_it_starts_fresh(tmp_path, capsys, fake_nnunet):
    fake_nnunet()
    work_dir = tmp_path / "work"
    assert demo.main(["--work-dir", str(work_dir)]) == 0
    capsys.readouterr()

    assert demo.main(["--work-dir", str(work_dir)]) == 0
    assert "starting fresh" in capsys.readouterr().out
