"""The diagnosis at prediction comes from each sliding-window tile's unmirrored pass; nnU-Net's mirrored passes run
the segmentation alone (``DiagnosisPredictor.diagnosis_from_mirrors``), and the segmentation is nnU-Net's own."""

import json

import pytest
import torch

from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

from nnunet_ext.diagnosis.predictor import DiagnosisPredictor
from nnunet_ext.reliability.network_builds import NetworkSetting, build_network
from nnunet_ext.reliability.tiny_plans import tiny_plans

TRAINER = "BaseMultiDiagnosisTrainer"


def predictor_for(predictor_class, network, setting, diagnosis_from_mirrors=False):
    predictor = predictor_class(tile_step_size=0.5, use_mirroring=True, perform_everything_on_device=False,
                                device=torch.device("cpu"), allow_tqdm=False)
    predictor.manual_initialization(network, setting.plans_manager, setting.configuration_manager,
                                    [network.state_dict()],
                                    setting.dataset_json, TRAINER, inference_allowed_mirroring_axes=(0, 1))
    predictor.diagnosis_from_mirrors = diagnosis_from_mirrors
    # as DiagnosisPredictor._manage_input_and_output_lists leaves them for one case
    predictor._outputs_in_order, predictor.diagnosis_probabilities = ["predictions/case_0"], {}
    return predictor


@pytest.fixture(scope="module")
def setting_and_network(planned_synthetic):
    plans_file, dataset_json = planned_synthetic["nnUNetPlans"]
    setting = NetworkSetting(tiny_plans(json.loads(plans_file.read_text())), "2d", dataset_json)
    return setting, build_network(TRAINER, setting, deep_supervision=False).eval()


@pytest.mark.parametrize("from_mirrors, passes_per_tile", [(False, 1), (True, 4)])
def test_the_diagnosis_branch_runs_on_the_passes_chosen(setting_and_network, from_mirrors, passes_per_tile):
    setting, network = setting_and_network
    patch = setting.patch_size
    image = torch.randn(setting.num_input_channels, 1, patch[0] * 3 // 2, patch[1])  # 2 x 1 tiles at step 0.5
    branch_calls = []
    hook = network.diagnosis.register_forward_hook(lambda module, args, output: branch_calls.append(1))
    try:
        predictor = predictor_for(DiagnosisPredictor, network, setting, from_mirrors)
        with torch.no_grad():
            logits = predictor.predict_logits_from_preprocessed_data(image)
    finally:
        hook.remove()
    num_tiles = 2
    assert len(branch_calls) == num_tiles * passes_per_tile  # 4 = the unmirrored pass and 3 mirrors (2 axes)
    assert list(predictor.diagnosis_probabilities) == ["case_0"]
    assert not network.diagnosis_output  # switched off again after the case
    with torch.no_grad():
        reference = predictor_for(nnUNetPredictor, network, setting).predict_logits_from_preprocessed_data(image)
    assert torch.allclose(logits, reference, atol=1e-5)  # the segmentation is nnU-Net's, mirrors included


def test_a_sliding_window_retried_after_a_device_error_counts_each_tile_once(setting_and_network):
    """nnU-Net runs every tile again (results on the CPU) when the sliding window on the device raises a
    RuntimeError; the diagnosis of the case must be the one of a run without the error."""
    setting, network = setting_and_network
    patch = setting.patch_size
    torch.manual_seed(1)
    image = torch.randn(setting.num_input_channels, 1, patch[0] * 3 // 2, patch[1])  # 2 tiles
    with torch.no_grad():
        clean = predictor_for(DiagnosisPredictor, network, setting)
        clean.predict_logits_from_preprocessed_data(image)
    branch_calls = []

    def fail_once_at_the_second_tile(module, args, output):
        branch_calls.append(1)
        if len(branch_calls) == 2:
            raise RuntimeError("CUDA out of memory (injected)")

    hook = network.diagnosis.register_forward_hook(fail_once_at_the_second_tile)
    try:
        retried = predictor_for(DiagnosisPredictor, network, setting)
        retried.perform_everything_on_device = True  # as on a GPU: the path with nnU-Net's retry
        with torch.no_grad():
            retried.predict_logits_from_preprocessed_data(image)
    finally:
        hook.remove()
    assert len(branch_calls) == 4  # tile 1, tile 2 (failed), then both again
    assert retried.diagnosis_probabilities["case_0"] == pytest.approx(clean.diagnosis_probabilities["case_0"],
                                                                     abs=1e-6)
