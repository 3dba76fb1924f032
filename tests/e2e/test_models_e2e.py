"""Every family's end-to-end model (the registry's ``e2e_models``) trains through ``nnUNetv2_train``, is validated by
nnU-Net, predicts the held-out cases through the stock ``nnUNetv2_predict -tr`` and is evaluated by
``nnUNetv2_evaluate_folder``. A trainer registered with ``e2e_configuration`` is covered here without a new test."""

import pytest
import torch

from nnunet_ext.trainers.registry import e2e_models

pytestmark = pytest.mark.e2e
SHARED_RUNS = [(kind, trainer, configuration) for trainer, configuration in e2e_models()
               for kind in ("model", "stock_predictions", "evaluation")]


@pytest.mark.parametrize("trainer, configuration", e2e_models())
def test_trains_validates_predicts_and_evaluates(trainer, configuration, trained_model, stock_predictions,
                                                 evaluation, e2e):
    model = trained_model(trainer, configuration)
    checkpoint = torch.load(model.fold_0 / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert checkpoint["trainer_name"] == trainer
    assert (model.fold_0 / "validation" / "summary.json").is_file()  # nnU-Net's own final validation ran
    predictions = stock_predictions(trainer, configuration)
    assert sorted(p.name for p in predictions.glob("*.nii.gz")) == [f"{c}.nii.gz" for c in e2e.test_cases]
    e2e.assert_valid_dice(evaluation(trainer, configuration))
