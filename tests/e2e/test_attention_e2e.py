"""``nnunet_ext_attention`` end to end on the session's models of every family with maps: Div-attention (3D), UNETR
(3D, a query at the test case's lesion), SeATrans with SMCA's prior and SiAN (2D configurations of the 3D cases).
Every map is written on the grid of the stock ``nnUNetv2_predict`` segmentation of the same case; the Div-attention
map and the rollout respond to the lesion (the case is also given with its lesion painted over); a map the model does
not have, and a query outside the image, stop the command with the fix."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from nnunet_ext.cli.nnunet_commands import run_nnunet_command

pytestmark = pytest.mark.e2e

DIV_ATTENTION, UNETR = ("DivAttentionTrainer_Short", "3d_fullres"), ("UNETRTrainer_Tiny_Short", "3d_fullres")
SEATRANS = ("SeATransSMCADiagnosisTrainer_FrozenSegmentation_Short", "2d")
SIAN = ("SiANDiagnosisTrainer_FrozenSegmentation_Short", "2d")
CASE, PAINTED = "synth_010", "synth_010painted"  # the first test case (it has a lesion) and the same without it
SHARED_RUNS = [("model", *DIV_ATTENTION), ("model", *UNETR), ("model", *SEATRANS), ("model", *SIAN),
               ("stock_predictions", *DIV_ATTENTION), ("stock_predictions", *SEATRANS)]


def lesion_of(workspace) -> np.ndarray:
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(workspace.raw / "labelsTs" / f"{CASE}.nii.gz")))
    return labels == 2


def inputs_with_the_lesion_painted_over(workspace, folder: Path) -> Path:
    """The test case, and a copy whose lesion voxels hold the organ's median intensity (same geometry)."""
    folder.mkdir(parents=True)
    source = workspace.raw / "imagesTs" / f"{CASE}_0000.nii.gz"
    shutil.copy(source, folder / source.name)
    image = sitk.ReadImage(str(source))
    array = sitk.GetArrayFromImage(image)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(workspace.raw / "labelsTs" / f"{CASE}.nii.gz")))
    array[labels == 2] = np.median(array[labels == 1])
    painted = sitk.GetImageFromArray(array)
    painted.CopyInformation(image)
    sitk.WriteImage(painted, str(folder / f"{PAINTED}_0000.nii.gz"))
    return folder


def attention_maps(runs, model_key, folder: Path, inputs: Path, extra=()) -> Path:
    workspace, model = runs.workspace().result(), runs.model(*model_key).result()
    output = folder / "maps"
    run_nnunet_command(["nnunet_ext_attention", "-i", inputs, "-o", output, "-d", runs.dataset_id, "-c", model_key[1],
                        "-f", 0, "-tr", model_key[0], "-device", "cpu", *extra], model.environment,
                       workspace.log(f"attention_{model_key[0]}"))
    return output


def div_attention_maps(runs, folder: Path) -> Path:
    inputs = inputs_with_the_lesion_painted_over(runs.workspace().result(), folder / "inputs")
    return attention_maps(runs, DIV_ATTENTION, folder, inputs)


def transformer_maps(runs, folder: Path) -> Path:
    workspace = runs.workspace().result()
    inputs = inputs_with_the_lesion_painted_over(workspace, folder / "inputs")
    reference = sitk.ReadImage(str(workspace.raw / "labelsTs" / f"{CASE}.nii.gz"))
    centre_zyx = np.argwhere(lesion_of(workspace)).mean(axis=0)
    query = reference.TransformContinuousIndexToPhysicalPoint([float(v) for v in centre_zyx[::-1]])
    return attention_maps(runs, UNETR, folder, inputs, ["--query", *query])


def diagnosis_maps(runs, folder: Path) -> dict:
    inputs = folder / "inputs"
    inputs.mkdir(parents=True)
    shutil.copy(runs.workspace().result().raw / "imagesTs" / f"{CASE}_0000.nii.gz", inputs)
    return {"seatrans": attention_maps(runs, SEATRANS, folder / "seatrans", inputs),
            "sian": attention_maps(runs, SIAN, folder / "sian", inputs)}


SHARED_PIPELINES = {"div_attention_maps": (div_attention_maps, [("model", *DIV_ATTENTION)]),
                    "transformer_maps": (transformer_maps, [("model", *UNETR)]),
                    "diagnosis_maps": (diagnosis_maps, [("model", *SEATRANS), ("model", *SIAN)])}


def read(path: Path) -> np.ndarray:
    array = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    return array if array.ndim == 3 else np.moveaxis(array, -1, 0).mean(axis=0)  # vector image: channel mean


def assert_on_the_grid_of(map_file: Path, prediction: Path) -> None:
    written, reference = sitk.ReadImage(str(map_file)), sitk.ReadImage(str(prediction))
    assert written.GetSize() == reference.GetSize(), map_file.name
    assert np.allclose(written.GetSpacing(), reference.GetSpacing())
    assert np.allclose(written.GetOrigin(), reference.GetOrigin())
    assert np.allclose(written.GetDirection(), reference.GetDirection())


def test_div_attention_maps_lie_on_the_predictions_grid_and_respond_to_the_lesion(shared_pipeline,
                                                                                   stock_predictions,
                                                                                   e2e_workspace):
    output = shared_pipeline("div_attention_maps")
    index = json.loads((output / "attention_maps.json").read_text())
    files = index["cases"][CASE]["files"]
    junctions = sorted(files)
    assert junctions and all(name.startswith("div_attention_junction") for name in junctions)
    prediction = stock_predictions(*DIV_ATTENTION) / f"{CASE}.nii.gz"
    for name in junctions:
        assert files[name]["channels"] == ["background", "organ", "lesion"]
        assert_on_the_grid_of(output / files[name]["file"], prediction)
    assert (output / index["cases"][CASE]["png"]).is_file()
    full_resolution = junctions[-1]
    with_lesion, painted = (read(output / c / f"{full_resolution}.nii.gz") for c in (CASE, PAINTED))
    assert with_lesion.std() > 0  # not a constant
    change = np.abs(with_lesion - painted)
    lesion = lesion_of(e2e_workspace)
    near = ndimage.binary_dilation(lesion, iterations=2)
    far = ~ndimage.binary_dilation(lesion, iterations=8)
    assert change[near].mean() > 2 * change[far].mean(), (change[near].mean(), change[far].mean())


def test_transformer_maps_of_a_query_the_rollout_responds_and_the_distances_are_written(shared_pipeline):
    output = shared_pipeline("transformer_maps")
    index = json.loads((output / "attention_maps.json").read_text())
    entry = index["cases"][CASE]
    blocks = [name for name in entry["files"] if name.startswith("attention_block")]
    assert len(blocks) == 12 and entry["files"]["attention_block01"]["channels"] == [f"head_{h}"
                                                                                     for h in range(1, 5)]
    assert {"attention_rollout", "attention_relevance"} <= set(entry["files"])
    assert entry["query"]["relevance_target_classes"]
    rollout, painted = (read(output / c / "attention_rollout.nii.gz") for c in (CASE, PAINTED))
    assert rollout.std() > 0 and np.abs(rollout - painted).max() > 1e-6
    distance = json.loads((output / "attention_distance.json").read_text())
    assert distance["blocks"] == 12 and distance["heads"] == 4 and distance["unit"] == "mm"
    assert 0 < min(distance["per_block_head_mean"]) and max(distance["per_block_head_mean"]) < 200
    assert distance["first_global_block"] is None or 1 <= distance["first_global_block"] <= 12
    assert (output / "attention_distance.png").is_file()


def test_seatrans_and_sian_maps_of_a_2d_configuration_lie_on_the_3d_predictions_grid(shared_pipeline,
                                                                                      stock_predictions):
    outputs = shared_pipeline("diagnosis_maps")
    prediction = stock_predictions(*SEATRANS) / f"{CASE}.nii.gz"
    for family, output in outputs.items():
        files = json.loads((output / "attention_maps.json").read_text())["cases"][CASE]["files"]
        assert files and all(name.startswith(family) for name in files)
        for entry in files.values():
            assert_on_the_grid_of(output / entry["file"], prediction)
            assert entry["maximum"] > 0


def cli_error(capsys, monkeypatch, model, arguments) -> str:
    """Run the command in this process (its checks fail before any tile) and return its one-line error."""
    from nnunet_ext.cli import attention

    monkeypatch.setenv("nnUNet_results", model.environment["nnUNet_results"])
    with pytest.raises(SystemExit) as exit_info:
        attention.main(arguments)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_a_map_the_model_lacks_and_a_query_outside_the_image_stop_with_the_fix(trained_model, e2e_workspace,
                                                                              e2e, capsys, monkeypatch, tmp_path):
    model = trained_model(*DIV_ATTENTION)
    arguments = ["-i", str(e2e_workspace.raw / "imagesTs"), "-o", str(tmp_path / "out"), "-d", str(e2e.dataset_id),
                 "-c", DIV_ATTENTION[1], "-f", "0", "-tr", DIV_ATTENTION[0], "-device", "cpu"]
    message = cli_error(capsys, monkeypatch, model, [*arguments, "--maps", "rollout"])
    assert "has no rollout map(s); its maps are: div_attention" in message and "--maps" in message
    message = cli_error(capsys, monkeypatch, model, [*arguments, "--query", "500", "0", "0"])
    assert "lies outside the image" in message and " mm" in message and "synth_010" in message
    assert not (tmp_path / "out").exists()  # nothing written
