"""``DiagnosisPredictor`` driven as nnU-Net drives it, on a stub diagnosis network whose diagnosis logit is a known
function of the tile it sees and of the fold's parameters: each case's probabilities come from exactly its own
tiles, every fold, and the unmirrored passes (or every mirror with ``diagnosis_from_mirrors``); a sliding window that
nnU-Net runs again after a RuntimeError on the device counts each tile once; the plans' tile pooling rule is the
one applied."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from nnunet_ext.architectures.diagnosis.diagnosis_tap import DiagnosisTap
from nnunet_ext.core.errors import OutputFileConflictError
from nnunet_ext.core.owned_files import record_written
from nnunet_ext.diagnosis.plans_entry import DIAGNOSIS_PLANS_KEY
from nnunet_ext.diagnosis.predictions_csv import read_diagnosis_csv, write_diagnosis_csv
from nnunet_ext.diagnosis.predictor import DiagnosisPredictor
from nnunet_ext.reliability.network_builds import NetworkSetting, build_network
from nnunet_ext.reliability.tiny_plans import tiny_plans

TRAINER = "BaseMultiDiagnosisTrainer"
MIRROR_AXES = (0, 1)  # a 2D tile: its two axes, 3 mirrored passes
LESION_VALUE = 10.0  # voxels of this value are lesion in the stub's segmentation


class CaseAndFoldStub(nn.Module):
    """``forward(x [B, C, X, Y])`` -> segmentation logits ``[B, K, X, Y]`` (lesion, the last label, where
    ``x >= LESION_VALUE``, background elsewhere); with ``diagnosis_output`` also ``[B, 1]`` diagnosis logits
    ``scale * (mean(x) + 10 mean(x * ramp)) + offset``: the position ramp (-1 to 1 over the tile) makes every mirror
    of an asymmetric tile give another logit, and ``scale``, ``offset`` are the fold's parameters."""

    softmax = True  # label maps: the foreground weight is the sum of 1 - P(background)

    def __init__(self, num_segmentation_heads: int, patch_size):
        super().__init__()
        self.num_segmentation_heads = num_segmentation_heads
        self.scale = nn.Parameter(torch.tensor(1.0))
        self.offset = nn.Parameter(torch.tensor(0.0))
        self.register_buffer("ramp", torch.linspace(-1, 1, int(np.prod(patch_size))).reshape(*patch_size),
                             persistent=False)
        self.diagnosis_output = False
        self.forward_calls = 0
        self.raise_at_call = None  # raise a RuntimeError at this forward call (1-based), once
        self.interrupt_at_call = None  # raise KeyboardInterrupt (Ctrl-C, a killed job) at this forward call

    def diagnosis_logits(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(1, x.ndim))
        return self.scale * (x.mean(dims) + 10 * (x * self.ramp).mean(dims))[:, None] + self.offset

    def forward(self, x: torch.Tensor):
        self.forward_calls += 1
        if self.forward_calls == self.raise_at_call:
            self.raise_at_call = None
            raise RuntimeError("CUDA out of memory (injected once)")
        if self.forward_calls == self.interrupt_at_call:
            raise KeyboardInterrupt
        lesion = (x[:, :1] >= LESION_VALUE).float()
        segmentation = torch.cat([20 * (1 - 2 * lesion)] + [-20 * torch.ones_like(lesion)] *
                                 (self.num_segmentation_heads - 2) + [20 * (2 * lesion - 1)], 1)
        if not self.diagnosis_output:
            return segmentation
        return [segmentation, self.diagnosis_logits(x)]


FOLD_PARAMETERS = [{"scale": torch.tensor(1.0), "offset": torch.tensor(0.0)},
                   {"scale": torch.tensor(-0.7), "offset": torch.tensor(0.4)}]


@pytest.fixture(scope="module")
def setting(planned_synthetic):
    plans_file, dataset_json = planned_synthetic["nnUNetPlans"]
    return NetworkSetting(tiny_plans(json.loads(plans_file.read_text())), "2d", dataset_json)


def stub_predictor(setting, folds=(0,), use_mirroring=False, diagnosis_from_mirrors=False, tile_pooling=None):
    plans = json.loads(json.dumps(setting.plans))
    if tile_pooling is not None:
        plans[DIAGNOSIS_PLANS_KEY]["tile_pooling"] = tile_pooling
    setting = NetworkSetting(plans, setting.configuration, setting.dataset_json)
    labels = setting.plans_manager.get_label_manager(setting.dataset_json)
    network = CaseAndFoldStub(labels.num_segmentation_heads, setting.patch_size)
    predictor = DiagnosisPredictor(tile_step_size=1.0, use_gaussian=True, use_mirroring=use_mirroring,
                                   perform_everything_on_device=False, device=torch.device("cpu"), allow_tqdm=False)
    predictor.manual_initialization(network, setting.plans_manager, setting.configuration_manager,
                                    [FOLD_PARAMETERS[f] for f in folds], setting.dataset_json, TRAINER,
                                    inference_allowed_mirroring_axes=MIRROR_AXES)
    predictor.diagnosis_from_mirrors = diagnosis_from_mirrors
    return predictor, network


def two_tile_image(setting, seed: int) -> torch.Tensor:
    """``[C, 1, 2 * X, Y]``: one slice of two tiles (tile step 1), values that identify the case (``seed``), with a
    gradient inside each tile along both axes, so that each mirror of a tile differs."""
    x, y = setting.patch_size
    generator = torch.Generator().manual_seed(seed)
    gradient = (torch.arange(2 * x) % x / x)[:, None] + 0.5 * (torch.arange(y) / y)[None]
    return 0.5 * torch.rand(setting.num_input_channels, 1, 2 * x, y, generator=generator) + 0.5 * seed + gradient


def tiles_of(setting, image: torch.Tensor):
    """The two sliding-window tiles of :func:`two_tile_image` as nnU-Net's network sees them, ``[1, C, X, Y]``."""
    x = setting.patch_size[0]
    return [image[:, 0, :x][None], image[:, 0, x:][None]]


def expected_probability(setting, image, folds, mirrors: bool) -> float:
    """P(positive) by the mean rule, computed here from the stub's function: per fold the mean of sigmoid(logit)
    over the case's tiles (and their 3 mirrors when ``mirrors``), then the mean over the folds."""
    reference = CaseAndFoldStub(3, setting.patch_size)
    per_fold = []
    for fold in folds:
        reference.load_state_dict({**reference.state_dict(), **FOLD_PARAMETERS[fold]})
        passes = [v for tile in tiles_of(setting, image)
                  for v in ([tile, tile.flip(2), tile.flip(3), tile.flip(2, 3)] if mirrors else [tile])]
        with torch.no_grad():
            per_fold.append(np.mean([torch.sigmoid(reference.diagnosis_logits(v)).item() for v in passes]))
    return float(np.mean(per_fold))


def data_properties(image: torch.Tensor) -> dict:
    """What nnU-Net's preprocessing leaves for the export of an uncropped image of spacing 1."""
    shape = tuple(image.shape[1:])
    return {"spacing": [1.0, 1.0, 1.0], "shape_before_cropping": shape,
            "shape_after_cropping_and_before_resampling": shape, "bbox_used_for_cropping": [[0, s] for s in shape],
            "sitk_stuff": {"spacing": (1.0, 1.0, 1.0), "origin": (0.0, 0.0, 0.0),
                           "direction": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)}}


@pytest.mark.parametrize("diagnosis_from_mirrors", [False, True])
def test_each_case_gets_its_own_tiles_every_fold_and_the_chosen_mirrors(setting, tmp_path, diagnosis_from_mirrors):
    predictor, network = stub_predictor(setting, folds=(0, 1), use_mirroring=True,
                                        diagnosis_from_mirrors=diagnosis_from_mirrors)
    images = {f"case_{i}": two_tile_image(setting, i) for i in range(3)}
    predictor.predict_from_data_iterator(
        [{"data": image, "ofile": str(tmp_path / case), "data_properties": data_properties(image)}
         for case, image in images.items()], num_processes_segmentation_export=1)
    assert sorted(predictor.diagnosis_probabilities) == sorted(images)
    for case, image in images.items():
        probabilities = predictor.diagnosis_probabilities[case]
        assert probabilities[1] == pytest.approx(expected_probability(setting, image, (0, 1), diagnosis_from_mirrors),
                                                 abs=1e-6), case
        assert probabilities.sum() == pytest.approx(1.0)
        assert (tmp_path / f"{case}.nii.gz").is_file()  # nnU-Net's export ran as usual
    # the cases differ, and one fold or the other mirror setting would give other numbers
    p = [predictor.diagnosis_probabilities[c][1] for c in images]
    assert len({round(v, 6) for v in p}) == 3
    assert p[0] != pytest.approx(expected_probability(setting, images["case_0"], (0,), diagnosis_from_mirrors),
                                 abs=1e-4)
    assert p[0] != pytest.approx(expected_probability(setting, images["case_0"], (0, 1), not diagnosis_from_mirrors),
                                 abs=1e-4)
    assert not network.diagnosis_output


def test_a_retried_sliding_window_counts_each_tile_once(setting):
    """nnU-Net runs every tile again, results on the CPU, when the sliding window on the device raises a
    RuntimeError; the tap keeps only the second attempt's passes."""
    image = two_tile_image(setting, 5)
    predictor, network = stub_predictor(setting)
    predictor.perform_everything_on_device = True  # the path with nnU-Net's retry (it is switched off on a CPU)
    network.raise_at_call = 2  # the first attempt records tile 1, then fails at tile 2
    tap = DiagnosisTap()
    with torch.no_grad(), predictor.recording_diagnosis(tap):
        predictor.predict_sliding_window_return_logits(image)
    assert network.forward_calls == 4 and network.raise_at_call is None  # 2 tiles, 1 failed, then 2 tiles again
    num_tiles = len(predictor._internal_get_sliding_window_slicers(image.shape[1:]))
    assert num_tiles == 2 and len(tap.logits) == num_tiles == len(tap.weights)
    expected = [stub_logit.item() for stub_logit in map(network.diagnosis_logits, tiles_of(setting, image))]
    assert [logit.item() for logit in tap.logits] == pytest.approx(expected)


def test_a_retried_case_gets_the_probabilities_of_a_run_without_the_error(setting):
    image = two_tile_image(setting, 6)
    predictor, network = stub_predictor(setting, folds=(0, 1))
    predictor.perform_everything_on_device = True
    network.raise_at_call = 2  # fold 0's first attempt
    predictor._outputs_in_order, predictor.diagnosis_probabilities = ["out/case_6"], {}  # as nnU-Net's lists leave it
    predictor.predict_logits_from_preprocessed_data(image)
    assert predictor.diagnosis_probabilities["case_6"][1] == pytest.approx(
        expected_probability(setting, image, (0, 1), mirrors=False), abs=1e-6)


def test_the_plans_tile_pooling_rule_is_applied(setting):
    """Foreground-weighted pooling: the tile with the lesion decides; the mean would be halfway."""
    image = two_tile_image(setting, 0)
    image[0, 0, setting.patch_size[0] + 3, 4:8] = LESION_VALUE  # 4 lesion voxels in tile 2 only
    tiles = tiles_of(setting, image)
    with torch.no_grad():
        tile_probabilities = [torch.sigmoid(CaseAndFoldStub(3, setting.patch_size).diagnosis_logits(t)).item()
                              for t in tiles]
    results = {}
    for rule in ("mean", "foreground_weighted", "max"):
        predictor, _ = stub_predictor(setting, tile_pooling=rule)
        predictor._outputs_in_order, predictor.diagnosis_probabilities = ["out/case"], {}
        predictor.predict_logits_from_preprocessed_data(image)
        results[rule] = predictor.diagnosis_probabilities["case"][1]
        assert predictor.diagnosis_settings()["tile_pooling"] == rule
    assert results["mean"] == pytest.approx(np.mean(tile_probabilities), abs=1e-6)
    assert results["foreground_weighted"] == pytest.approx(tile_probabilities[1], abs=1e-6)
    assert results["max"] == pytest.approx(max(tile_probabilities), abs=1e-6)


def test_settings_name_the_folds_and_checkpoint_of_the_model_folder(setting, tmp_path):
    """``initialize_from_trained_model_folder`` (folds found by nnU-Net) remembers what it loaded, for the settings
    file."""
    network = build_network(TRAINER, setting, deep_supervision=False)
    (tmp_path / "plans.json").write_text(json.dumps(setting.plans))
    (tmp_path / "dataset.json").write_text(json.dumps(setting.dataset_json))
    for fold in (0, 2):
        (tmp_path / f"fold_{fold}").mkdir()
        torch.save({"network_weights": network.state_dict(), "trainer_name": TRAINER,
                    "init_args": {"configuration": "2d"}, "inference_allowed_mirroring_axes": MIRROR_AXES},
                   tmp_path / f"fold_{fold}" / "checkpoint_best.pth")
    predictor = DiagnosisPredictor(tile_step_size=0.25, use_mirroring=True, device=torch.device("cpu"))
    predictor.initialize_from_trained_model_folder(str(tmp_path), None, "checkpoint_best.pth")
    settings = predictor.diagnosis_settings()
    assert settings["folds"] == [0, 2] and settings["checkpoint"] == "checkpoint_best.pth"
    assert settings["tile_step_size"] == 0.25 and settings["mirroring_axes"] == [0, 1]
    assert settings["tile_pooling"] == "mean" and "tile_pooling 'mean'" in settings["aggregation"]
    assert len(predictor.list_of_parameters) == 2
    predictor.initialize_from_trained_model_folder(str(tmp_path), ("2",), "checkpoint_best.pth")
    assert predictor.diagnosis_settings()["folds"] == [2]  # nnUNetv2_predict -f 2 hands the folds as text


def test_continue_prediction_keeps_the_rows_of_the_cases_predicted_before(setting, planned_synthetic, tmp_path):
    """nnU-Net's ``overwrite=False`` (``--continue_prediction``) skips the cases already segmented: their rows stay;
    without it the file holds this call's cases only."""
    plans_file, _ = planned_synthetic["nnUNetPlans"]
    raw_images = plans_file.parents[2] / "nnUNet_raw" / plans_file.parent.name / "imagesTr"
    images = sorted(raw_images.glob("*_0000.nii.gz"))[:2]
    case_ids = [image.name[:-len("_0000.nii.gz")] for image in images]
    output = tmp_path / "predictions"
    output.mkdir()  # as nnUNetv2_predict makes it
    predictor, _ = stub_predictor(setting)
    predictor.predict_from_files_sequential([[str(image)] for image in images], str(output))
    csv_path = output / "diagnosis_predictions.csv"
    assert [row["case_id"] for row in read_diagnosis_csv(csv_path)] == case_ids
    # an interrupted run: the second case was not exported; the first case's row is marked to see it kept
    (output / f"{case_ids[1]}.nii.gz").unlink()
    record_written(write_diagnosis_csv(csv_path, [case_ids[0]], np.array([[0.25, 0.75]]), ["no", "yes"]))
    predictor.predict_from_files_sequential([[str(image)] for image in images], str(output), overwrite=False)
    rows = {row["case_id"]: row["probabilities"]["yes"] for row in read_diagnosis_csv(csv_path)}
    assert sorted(rows) == case_ids and rows[case_ids[0]] == 0.75
    predictor.predict_from_files_sequential([[str(images[1])]], str(output))  # not continuing: this call's case
    assert [row["case_id"] for row in read_diagnosis_csv(csv_path)] == [case_ids[1]]
    assert predictor.written_diagnosis_csv == str(csv_path)


def raw_training_images(planned_synthetic, count: int):
    plans_file, _ = planned_synthetic["nnUNetPlans"]
    raw_images = plans_file.parents[2] / "nnUNet_raw" / plans_file.parent.name / "imagesTr"
    images = sorted(raw_images.glob("*_0000.nii.gz"))[:count]
    return [[str(image)] for image in images], [image.name[:-len("_0000.nii.gz")] for image in images]


def test_an_interrupted_prediction_keeps_its_rows_and_a_continued_one_completes_them(setting, planned_synthetic,
                                                                                     tmp_path):
    """Each case's row is written once its diagnosis is known: a run stopped at the third of three cases leaves the
    first two, and ``--continue_prediction`` gives the CSV of an uninterrupted run."""
    images, case_ids = raw_training_images(planned_synthetic, 3)
    uninterrupted, interrupted = tmp_path / "uninterrupted", tmp_path / "interrupted"
    uninterrupted.mkdir(), interrupted.mkdir()  # as nnUNetv2_predict makes them
    predictor, network = stub_predictor(setting)
    predictor.predict_from_files_sequential(images, str(uninterrupted))
    calls_per_case = network.forward_calls // 3
    expected = read_diagnosis_csv(uninterrupted / "diagnosis_predictions.csv")

    predictor, network = stub_predictor(setting)
    network.interrupt_at_call = 2 * calls_per_case + 1
    with pytest.raises(KeyboardInterrupt):
        predictor.predict_from_files_sequential(images, str(interrupted))
    kept = read_diagnosis_csv(interrupted / "diagnosis_predictions.csv")
    assert [row["case_id"] for row in kept] == case_ids[:2]
    predictor, network = stub_predictor(setting)
    predictor.predict_from_files_sequential(images, str(interrupted), overwrite=False)
    assert network.forward_calls == calls_per_case  # only the third case was predicted again
    assert read_diagnosis_csv(interrupted / "diagnosis_predictions.csv") == expected


@pytest.mark.parametrize("whose", ["the user's own file", "our file, edited by the user"])
def test_a_file_we_did_not_write_is_left_alone_unless_overwriting_is_asked_for(setting, planned_synthetic, tmp_path,
                                                                               whose):
    images, case_ids = raw_training_images(planned_synthetic, 1)
    output = tmp_path / "predictions"
    output.mkdir()
    if whose == "the user's own file":
        (output / "diagnosis_predictions.csv").write_text("case_id,my own grading\ncase_a,3\n")
    else:
        stub_predictor(setting)[0].predict_from_files_sequential(images, str(output))
        with open(output / "diagnosis_predictions.csv", "a") as handle:
            handle.write("# checked by Dr. A\n")
    before = (output / "diagnosis_predictions.csv").read_bytes()
    predictor, network = stub_predictor(setting)
    with pytest.raises(OutputFileConflictError, match="diagnosis_predictions.csv.*--overwrite_outputs"):
        predictor.predict_from_files_sequential(images, str(output))
    assert network.forward_calls == 0  # refused before any work
    assert (output / "diagnosis_predictions.csv").read_bytes() == before
    predictor.overwrite_outputs = True
    predictor.predict_from_files_sequential(images, str(output))
    assert [row["case_id"] for row in read_diagnosis_csv(output / "diagnosis_predictions.csv")] == case_ids


def test_continuing_into_the_rows_of_another_model_is_refused(setting, planned_synthetic, tmp_path):
    images, _ = raw_training_images(planned_synthetic, 2)
    output = tmp_path / "predictions"
    output.mkdir()
    first, _ = stub_predictor(setting)
    first.model_folder = str(tmp_path / f"{TRAINER}__nnUNetPlans__2d")
    first.predict_from_files_sequential(images[:1], str(output))
    settings = json.loads((output / "diagnosis_predictions_settings.json").read_text())
    assert settings["model"]["trainer"] == TRAINER and settings["model"]["folder"] == first.model_folder
    other, network = stub_predictor(setting, folds=(1,))
    other.model_folder = str(tmp_path / f"{TRAINER}__nnUNetPlans__3d_fullres")
    with pytest.raises(OutputFileConflictError, match="another model.*configuration: '2d'"):
        other.predict_from_files_sequential(images, str(output), overwrite=False)
    assert network.forward_calls == 0
    other.predict_from_files_sequential(images, str(output))  # without --continue_prediction: replaced
    assert json.loads((output / "diagnosis_predictions_settings.json").read_text())["model"]["configuration"] == \
        "3d_fullres"
