"""Every distinct network build of the registry with deep supervision on (what the trainer builds) and off (what
nnU-Net's predictor builds from the checkpoint): the same parameters under the same names, a checkpoint of one loads
strictly into the other, one logits tensor without deep supervision, nnU-Net's full-resolution-first list with it
(one tensor for a trainer that trains without deep supervision);
and ``forward`` sets no attribute of any module (a flag switched and restored inside ``forward`` is state that
``torch.compile`` must guard, and that a hook or a second thread sees half-way)."""

import pytest
import torch
from torch import nn

from nnunet_ext.architectures.diagnosis.diagnosis_tap import set_diagnosis_output
from nnunet_ext.reliability.network_builds import build_network, trains_with_deep_supervision

from .conftest import CASE_IDS, CASES, case_ids


@pytest.mark.parametrize("trainer, key", CASES, ids=CASE_IDS)
def test_deep_supervision_on_and_off_build_the_same_parameters(trainer, key, distinct_build):
    setting = distinct_build(trainer, key)
    training, predicting = build_network(trainer, setting, True), build_network(trainer, setting, False, seed=1)
    assert list(training.state_dict()) == list(predicting.state_dict())
    predicting.load_state_dict(training.state_dict(), strict=True)
    training.load_state_dict(predicting.state_dict(), strict=True)
    batch = torch.randn(1, setting.num_input_channels, *setting.patch_size)
    with torch.no_grad():
        single, every_scale = predicting.eval()(batch), training.eval()(batch)
    assert isinstance(single, torch.Tensor) and single.shape == (1, setting.num_outputs, *setting.patch_size)
    if not trains_with_deep_supervision(trainer):  # one output in training too (UNETR)
        assert isinstance(every_scale, torch.Tensor) and torch.allclose(single, every_scale, atol=1e-5)
        return
    assert isinstance(every_scale, list) and every_scale[0].shape == single.shape
    assert torch.allclose(single, every_scale[0], atol=1e-5)


CASES_2D = [case for case in CASES if case[1] == "2d"]


@pytest.mark.parametrize("trainer, key", CASES_2D, ids=case_ids(CASES_2D))
def test_forward_sets_no_module_attribute(trainer, key, distinct_build, monkeypatch):
    setting = distinct_build(trainer, key)
    network = build_network(trainer, setting)
    set_diagnosis_output(network, True)
    writes = []
    original = nn.Module.__setattr__

    def recording(module, name, value):
        writes.append(f"{type(module).__name__}.{name}")
        original(module, name, value)

    monkeypatch.setattr(nn.Module, "__setattr__", recording)
    network(torch.randn(1, setting.num_input_channels, *setting.patch_size))
    monkeypatch.undo()
    assert writes == []
