"""The click-guided trainers (Div-attention's Stage 1): one more input channel in every build, the cue appended to
each batch after nnU-Net's transforms from the batch's own full-resolution target (a click inside a target
component, the empty cue without target, fixed clicks at validation), nnU-Net's final validation fed simulated
clicks, and the settings stored in the plans."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_ext.clicks.prediction_cue import CLICK_PLANS_KEY
from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.trainers import ClickGuidedDivAttentionTrainer, ClickGuidedTrainer
from nnunet_ext.trainers.clicks.click_cue_batches import ClickCueBatches
from nnunet_ext.trainers.clicks.click_cue_final_validation import dataset_class_with_click_cues
from nnunet_ext.trainers.clicks.click_cue_settings import plans_with_click_cue


def plans_of(planned_synthetic):
    plans_file, _ = planned_synthetic["nnUNetPlans"]
    return plans_with_click_cue(json.loads(plans_file.read_text()), 20.0)


@pytest.mark.parametrize("trainer", [ClickGuidedTrainer, ClickGuidedDivAttentionTrainer])
def test_the_network_takes_the_cue_as_one_more_channel(planned_synthetic, trainer):
    plans_manager = PlansManager(plans_of(planned_synthetic))
    configuration = plans_manager.get_configuration("3d_fullres")
    network = trainer.build_network_architecture(plans_manager, configuration, 1, 3, False)
    first = next(m for m in network.modules() if isinstance(m, torch.nn.Conv3d))
    assert first.in_channels == 2
    with torch.no_grad():
        assert network(torch.zeros(1, 2, *configuration.patch_size)).shape[1] == 3
    with pytest.raises(UnsupportedConfigurationError, match="cannot be built for a 2D configuration of 3D images"):
        trainer.build_network_architecture(plans_manager, plans_manager.get_configuration("2d"), 1, 3, False)


def test_the_settings_go_into_the_plans_the_model_is_saved_with(planned_synthetic):
    plans = plans_of(planned_synthetic)
    assert plans[CLICK_PLANS_KEY]["radius_mm"] == 20.0 and "nearest click" in plans[CLICK_PLANS_KEY]["encoding"]


def fake_trainer(regions=False):
    return SimpleNamespace(label_manager=SimpleNamespace(has_regions=regions, has_ignore_label=False,
                                                         ignore_label=None),
                           configuration_manager=SimpleNamespace(spacing=[2.0, 1.0, 1.0]),
                           plans_manager=SimpleNamespace(plans={CLICK_PLANS_KEY: {"radius_mm": 20.0}}))


def batch_with_targets():
    labels = torch.zeros(3, 1, 8, 16, 16)
    labels[0, 0, 2:6, 3:9, 3:9] = 1
    labels[1, 0, 4:7, 10:14, 2:5] = 2
    target = [labels, labels[:, :, ::2, ::2, ::2]]  # deep supervision: the full resolution comes first
    return {"data": torch.randn(3, 1, 8, 16, 16), "target": target, "keys": ["a", "b", "c"]}


def test_each_patch_gets_a_click_inside_its_target_and_a_patch_without_target_the_empty_cue():
    batch = batch_with_targets()
    cued = ClickCueBatches.with_click_cues(fake_trainer(), batch, np.random.default_rng(0))
    assert cued["data"].shape == (3, 2, 8, 16, 16) and torch.equal(cued["data"][:, :1], batch["data"])
    assert cued["target"] is batch["target"]
    labels = batch["target"][0][:, 0]
    for sample in (0, 1):
        cue = cued["data"][sample, 1]
        peak = np.unravel_index(int(cue.argmax()), cue.shape)
        assert cue.max() == 1.0 and labels[sample][peak] > 0
    assert torch.count_nonzero(cued["data"][2, 1]) == 0


def test_validation_clicks_are_fixed_by_the_batchs_cases():
    trainer = SimpleNamespace(**vars(fake_trainer()))
    seen = []

    class Base:
        def validation_step(self, batch):
            seen.append(batch["data"][:, 1].clone())
            return {}

    class Trainer(ClickCueBatches, Base):
        pass

    instance = Trainer()
    instance.__dict__.update(vars(trainer))
    instance.validation_step(batch_with_targets())
    instance.validation_step(batch_with_targets())
    assert torch.equal(seen[0], seen[1])


def test_the_final_validation_loads_cases_with_the_cue_of_simulated_clicks():
    labels = np.zeros((1, 8, 16, 16), dtype=np.int8)
    labels[0, 2:6, 3:9, 3:9] = 1

    class Dataset:
        def load_case(self, identifier):
            return np.ones((1, 8, 16, 16), dtype=np.float32), labels, None, {"id": identifier}

    trainer = fake_trainer()
    trainer.preprocessed_spacing = lambda ndim: [2.0, 1.0, 1.0]
    data, seg, _, properties = dataset_class_with_click_cues(Dataset, trainer)().load_case("case_3")
    assert data.shape == (2, 8, 16, 16) and seg is labels and properties == {"id": "case_3"}
    peak = np.unravel_index(int(data[1].argmax()), data[1].shape)
    assert data[1].max() == 1.0 and labels[0][peak] == 1
