"""Batch targets by case key; one diagnosis per case from many passes; the classes inside the plans."""

from pathlib import Path

import numpy as np
import pytest
import torch

from nnunet_ext.core.errors import IncompatibleCheckpointError
from nnunet_ext.diagnosis.aggregation import case_probabilities
from nnunet_ext.diagnosis.batch_targets import diagnosis_targets
from nnunet_ext.diagnosis.labels import DiagnosisLabels
from nnunet_ext.diagnosis.plans_entry import DIAGNOSIS_PLANS_KEY, add_diagnosis_settings, diagnosis_settings

LABELS = DiagnosisLabels(classes=["healthy", "ill"], ordinal=False, labels={"a": 0, "b": 1, "c": 1},
                         source=Path("diagnosis_labels.json"))


def test_targets_follow_the_keys_in_order():
    assert diagnosis_targets(LABELS, ["c", "a", "b", "a"], torch.device("cpu")).tolist() == [1, 0, 1, 0]
    with pytest.raises(KeyError, match="'zz'"):
        diagnosis_targets(LABELS, ["a", "zz"], torch.device("cpu"))


def test_case_probabilities_are_the_mean_over_passes():
    binary = case_probabilities([torch.tensor([[0.0], [np.log(3.0)]]), torch.tensor([[-np.log(3.0)]])])
    assert binary == pytest.approx([(0.5 + 0.25 + 0.75) / 3, (0.5 + 0.75 + 0.25) / 3])
    three = case_probabilities([torch.tensor([[10.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, 10.0]])])
    assert three.sum() == pytest.approx(1.0) and three[1] < 1e-3 and three[0] == pytest.approx(three[2])
    with pytest.raises(ValueError):
        case_probabilities([])


def test_classes_travel_in_the_plans():
    plans = add_diagnosis_settings({"plans_name": "p"}, LABELS, segmentation_softmax=False)
    assert diagnosis_settings(plans) == {"classes": ["healthy", "ill"], "ordinal": False,
                                         "segmentation_softmax": False, "tile_pooling": "mean"}
    del plans[DIAGNOSIS_PLANS_KEY]
    with pytest.raises(IncompatibleCheckpointError, match="not the plans.json of a model trained by a diagnosis"):
        diagnosis_settings(plans)
