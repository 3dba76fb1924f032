"""The diagnosis trainers' mixins on a stand-in for nnUNetTrainer: how the segmentation part starts (from scratch,
from a trained model and frozen, or trained further) follows the trainer's attributes whatever the order of the
mixins, and a mixin placed after the trainer class is refused instead of silently never running."""

import copy
import itertools

import pytest
import torch
from torch import nn

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.diagnosis.labels import DiagnosisLabels
from nnunet_ext.diagnosis.plans_entry import add_diagnosis_settings
from nnunet_ext.diagnosis.segmentation_model import SEGMENTATION_MODEL_VARIABLE
from nnunet_ext.losses.segmentation_assisted_diagnosis import SegmentationAssistedDiagnosisLoss
from nnunet_ext.trainers.diagnosis.loss import DiagnosisLoss
from nnunet_ext.trainers.diagnosis.paper_optimizers import SeATransPaperOptimizer, SiANPaperOptimizer
from nnunet_ext.trainers.diagnosis.segmentation_model import SegmentationFromTrainedModel
from nnunet_ext.trainers.diagnosis.variants import FROZEN_SEGMENTATION, PRETRAINED_SEGMENTATION
from nnunet_ext.trainers.network_builders.diagnosis_network import build_segmentation_assisted_diagnosis_network
from nnunet_ext.trainers.registry import check_mixin_order

CONFIGURATION = "2d"


class SegmentationLoss(nn.Module):
    """What nnUNetTrainer._build_loss would return (its Dice + CE)."""


class StandInTrainer:
    """The end of each hook chain, as nnUNetTrainer's own methods would be (a real nnUNetTrainer needs a
    preprocessed dataset on disk)."""

    def __init__(self, network, plans, dataset_json):
        self.network, self.dataset_json, self.fold = network, dataset_json, 0
        self.enable_deep_supervision = True
        self.plans_manager, self.configuration_name = PlansManager(plans), CONFIGURATION
        self.log = []

    def configure_optimizers(self):
        return "optimizer", "lr scheduler"

    def _build_loss(self):
        return SegmentationLoss()

    def print_to_log_file(self, *args, **kwargs):
        self.log.append(" ".join(map(str, args)))


@pytest.fixture
def setting(segmentation_model, monkeypatch):
    """The shared segmentation model folder, and the plans of a diagnosis network for it."""
    monkeypatch.setenv(SEGMENTATION_MODEL_VARIABLE, str(segmentation_model["folder"]))
    labels = DiagnosisLabels(classes=["no", "yes"], ordinal=False, labels={}, source=segmentation_model["plans_file"])
    diagnosis_plans = add_diagnosis_settings(copy.deepcopy(segmentation_model["plans"]), labels,
                                             segmentation_softmax=True)
    return {"plans": diagnosis_plans, "dataset_json": segmentation_model["dataset_json"],
            "segmentation": segmentation_model["network"].state_dict()}


def trainer(setting, mixins, attributes):
    """The mixins in the given order before the stand-in, then a subclass that sets the attributes, as the
    registry's variants do."""
    manager = PlansManager(setting["plans"])
    network = build_segmentation_assisted_diagnosis_network("sian", manager, manager.get_configuration(CONFIGURATION),
                                                            1, 3)
    composed = type("Composed", (*mixins, StandInTrainer), {})
    check_mixin_order(composed, base=StandInTrainer)
    variant = type("Variant", (composed,), dict(attributes))
    return variant(network, setting["plans"], setting["dataset_json"])


def segmentation_loaded(trainer_instance, setting) -> bool:
    ours = trainer_instance.network.state_dict()
    return all(torch.equal(ours[k], v) for k, v in setting["segmentation"].items())


MIXINS = (SegmentationFromTrainedModel, DiagnosisLoss)
ORDERS = list(itertools.permutations(MIXINS))
VARIANTS = {"joint": {}, "frozen": FROZEN_SEGMENTATION.attributes, "pretrained": PRETRAINED_SEGMENTATION.attributes}


@pytest.mark.parametrize("order", ORDERS, ids=lambda o: "-".join(c.__name__ for c in o))
@pytest.mark.parametrize("variant", VARIANTS)
def test_the_segmentation_part_starts_as_the_attributes_say_in_any_mixin_order(setting, order, variant):
    stand_in = trainer(setting, order, VARIANTS[variant])
    assert stand_in.configure_optimizers() == ("optimizer", "lr scheduler")
    loss = stand_in._build_loss()
    assert isinstance(loss, SegmentationAssistedDiagnosisLoss)
    network = stand_in.network
    if variant == "joint":
        assert not segmentation_loaded(stand_in, setting) and not network.segmentation_frozen
        assert isinstance(loss.segmentation_loss, SegmentationLoss)
    elif variant == "frozen":
        assert segmentation_loaded(stand_in, setting) and network.segmentation_frozen
        assert not any(p.requires_grad for p in network.encoder.parameters())
        assert loss.segmentation_loss is None  # the diagnosis loss alone
        assert any("(frozen)" in line for line in stand_in.log)
    else:
        assert segmentation_loaded(stand_in, setting) and not network.segmentation_frozen
        assert all(p.requires_grad for p in network.parameters())
        assert isinstance(loss.segmentation_loss, SegmentationLoss)


def test_freezing_without_a_trained_model_is_refused(setting):
    stand_in = trainer(setting, MIXINS, {"freeze_segmentation": True})
    with pytest.raises(UnsupportedConfigurationError, match="randomly initialised segmentation would stay fixed"):
        stand_in.configure_optimizers()


@pytest.mark.parametrize("mixin", MIXINS, ids=lambda c: c.__name__)
def test_a_mixin_after_the_trainer_class_is_refused(mixin):
    with pytest.raises(TypeError, match=f"{mixin.__name__}.*come after StandInTrainer"):
        check_mixin_order(type("Misordered", (StandInTrainer, mixin), {}), base=StandInTrainer)


@pytest.mark.parametrize("optimizer_mixin, kind, settings", [
    (SiANPaperOptimizer, torch.optim.SGD, {"lr": 1e-3, "momentum": 0.95, "weight_decay": 1e-4}),
    (SeATransPaperOptimizer, torch.optim.Adam, {"lr": 1e-4}),
], ids=["SiAN", "SeATrans"])
def test_the_papers_optimiser_trains_the_branch_alone_after_the_segmentation_is_frozen(setting, optimizer_mixin,
                                                                                       kind, settings):
    stand_in = trainer(setting, (optimizer_mixin, *MIXINS), FROZEN_SEGMENTATION.attributes)
    optimizer, scheduler = stand_in.configure_optimizers()
    assert isinstance(optimizer, kind) and segmentation_loaded(stand_in, setting)
    for name, value in settings.items():
        assert optimizer.param_groups[0][name] == pytest.approx(value)
    optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
    branch = {id(p) for p in stand_in.network.parameters() if p.requires_grad}
    assert optimised == branch and branch
    assert not optimised & {id(p) for p in stand_in.network.encoder.parameters()}


@pytest.mark.parametrize("method", ["SiANDiagnosisTrainer", "SiANCWMaxPoolDiagnosisTrainer",
                                    "SeATransDiagnosisTrainer"])
def test_the_frozen_variants_use_the_papers_optimiser_and_the_nnunet_sgd_variant_does_not(method):
    import nnunet_ext.trainers  # noqa: F401  (registers the trainers)
    from nnunet_ext.trainers.registry import get_trainer

    papers = (SiANPaperOptimizer, SeATransPaperOptimizer)
    frozen = get_trainer(f"{method}_FrozenSegmentation").trainer_class
    nnunet_sgd = get_trainer(f"{method}_FrozenSegmentationNnUNetSGD").trainer_class
    assert any(issubclass(frozen, paper) for paper in papers)
    assert not any(issubclass(nnunet_sgd, paper) for paper in papers)
    defining = [c for c in nnunet_sgd.__mro__ if "configure_optimizers" in vars(c)]
    assert defining == [SegmentationFromTrainedModel, nnUNetTrainer]  # loads + freezes, then nnU-Net's SGD
    assert nnunet_sgd.freeze_segmentation and nnunet_sgd.start_from_segmentation_model
