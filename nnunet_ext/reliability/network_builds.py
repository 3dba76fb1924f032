"""The distinct network builds of the trainer registry on given plans.

Many trainers build the same network (``DivAttentionTrainer`` and ``DivAttentionWBCEDiceTrainer`` differ in their
loss only; ``UNetDualLossTrainer`` keeps nnU-Net's network; variants and deprecated names build their parent's). A
network is identified by what
``build_network_architecture(plans_manager, configuration_manager, channels, classes, enable_deep_supervision)``
builds it (its module tree with each module's ``extra_repr``, and its state dict's shapes), every network built to take
the same number of input channels; the first trainer (in the order given) with a new network is its representative.
Equal input channels: a click-guided trainer's network is its parent's with one input channel for the cue (built on
the dataset's channels plus ``added_input_channels``), so the parent's network checks cover it; what the cue adds is
in the trainer's ``train_step``, which the DDP checks run for every trainer, and in the click tests.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.trainers.registry import families, get_trainer, list_trainers

PLAIN_NNUNET = "nnUNetTrainer"  # nnU-Net's own trainer and network: the reference every check compares with


def trainer_class(name: str) -> type:
    """A registered trainer's class, or nnU-Net's own ``nnUNetTrainer`` for :data:`PLAIN_NNUNET`."""
    return nnUNetTrainer if name == PLAIN_NNUNET else get_trainer(name).trainer_class


def added_input_channels(name: str) -> int:
    """The channels a trainer adds to the dataset's (a click-guided trainer's cue), which its network takes too."""
    return int(getattr(trainer_class(name), "added_input_channels", 0))


def full_width_only(name: str) -> bool:
    """A transformer trainer at the papers' width (ViT-B), checked through its ``_Tiny`` variant: the same code at
    64 channels (a ViT-B per check would cost minutes of CPU each)."""
    tags = get_trainer(name).tags
    return "full_width" in tags and "tiny" not in tags


def checked_trainers() -> List[str]:
    """The trainers whose builds the checks cover: nnU-Net's own, then every registered trainer but the short
    budgets and the deprecated names (which build and train exactly as their parents) and the full-width
    transformers (:func:`full_width_only`), sorted."""
    return [PLAIN_NNUNET, *(n for n in list_trainers(exclude=["short", "deprecated"]) if not full_width_only(n))]


def family_representatives() -> List[str]:
    """One trainer per family, with nnU-Net's own: nnU-Net's trainer for the baseline family (whose only registered
    trainer is a short budget), else the family's shortest-named trainer written as a class of its own (its base
    trainer, e.g. ``LNetTrainer`` rather than ``DivAttentionDualLossTrainer``; ties in alphabetical order; for a
    full-width transformer its ``_Tiny`` variant)."""
    representatives = []
    for family in families():
        names = list_trainers(tag=family, exclude=["short", "variant", "deprecated"])
        representative = min(names, key=lambda name: (len(name), name)) if names else PLAIN_NNUNET
        if representative != PLAIN_NNUNET and full_width_only(representative):
            representative = f"{representative}_Tiny"
        representatives.append(representative)
    return sorted(set(representatives) | {PLAIN_NNUNET})


@dataclass(frozen=True)
class NetworkSetting:
    """Plans and configuration to build on, with the dataset's channel and class counts; ``added_input_channels``:
    the channels a trainer adds to the dataset's (a click-guided trainer's cue), which its network takes too."""

    plans: dict
    configuration: str
    dataset_json: dict
    added_input_channels: int = 0

    @property
    def plans_manager(self) -> PlansManager:
        return PlansManager(self.plans)

    @property
    def configuration_manager(self):
        return self.plans_manager.get_configuration(self.configuration)

    @property
    def dataset_input_channels(self) -> int:
        """The channels of the dataset's cases (what nnU-Net passes to ``build_network_architecture``)."""
        return determine_num_input_channels(self.plans_manager, self.configuration_manager, self.dataset_json)

    @property
    def num_input_channels(self) -> int:
        """The channels the network takes: the dataset's and the trainer's added ones."""
        return self.dataset_input_channels + self.added_input_channels

    @property
    def num_outputs(self) -> int:
        return self.plans_manager.get_label_manager(self.dataset_json).num_segmentation_heads

    @property
    def patch_size(self) -> Tuple[int, ...]:
        return tuple(self.configuration_manager.patch_size)

    def for_trainer(self, trainer: str) -> "NetworkSetting":
        """The setting as ``trainer`` trains on it: the plans of its ``plans_for_training`` where it has one (the
        transformer trainers round the patch up to their token size), and the input channels it adds (a
        click-guided trainer's cue)."""
        adjust = getattr(trainer_class(trainer), "plans_for_training", None)
        plans = self.plans if adjust is None else adjust(self.plans, self.configuration)
        return NetworkSetting(plans, self.configuration, self.dataset_json, added_input_channels(trainer))


def trains_with_deep_supervision(trainer: str) -> bool:
    """False for a trainer that switches nnU-Net's deep supervision off (``trains_with_deep_supervision = False``:
    UNETR's, whose network has one output)."""
    return bool(getattr(trainer_class(trainer), "trains_with_deep_supervision", True))


def build_network(trainer: str, setting: NetworkSetting, deep_supervision: bool = True, seed: int = 0,
                  extra_dataset_channels: int = 0) -> nn.Module:
    """The network ``trainer`` trains (``deep_supervision=True``) or nnU-Net's predictor builds (False), on the
    setting as the trainer trains on it (:meth:`NetworkSetting.for_trainer`); ``extra_dataset_channels``: build it
    for a dataset with that many more channels (to compare networks at equal input channels)."""
    setting = setting.for_trainer(trainer)
    torch.manual_seed(seed)
    return trainer_class(trainer).build_network_architecture(
        setting.plans_manager, setting.configuration_manager, setting.dataset_input_channels + extra_dataset_channels,
        setting.num_outputs, deep_supervision and trains_with_deep_supervision(trainer))


def network_signature(network: nn.Module) -> tuple:
    """Module tree (names, classes and ``extra_repr``, so that parameter-free modules and options fixed at
    construction count, e.g. Div-attention's attention form) and state-dict shapes."""
    return (tuple((name, type(module).__qualname__, module.extra_repr()) for name, module in network.named_modules()),
            tuple((k, tuple(v.shape)) for k, v in network.state_dict().items()))


@dataclass
class NetworkBuilds:
    """``representative``: trainer -> the trainer whose (identical) network is checked for it; ``refused``: trainer
    -> the :class:`UnsupportedConfigurationError` message of a trainer whose network these plans cannot carry."""

    representative: Dict[str, str]
    refused: Dict[str, str]

    @property
    def distinct(self) -> List[str]:
        return sorted({r for t, r in self.representative.items() if t == r})


def distinct_network_builds(setting: NetworkSetting, trainers: Optional[Sequence[str]] = None) -> NetworkBuilds:
    """Each trainer's representative among ``trainers`` (default :func:`checked_trainers`), networks compared at
    equal input channels (the module docstring), and the trainers these plans cannot carry."""
    trainers = checked_trainers() if trainers is None else list(trainers)
    added = {name: added_input_channels(name) for name in trainers}
    most_added = max(added.values(), default=0)
    first_with: Dict[tuple, str] = {}
    representative, refused = {}, {}
    for name in trainers:
        try:
            network = build_network(name, setting, extra_dataset_channels=most_added - added[name])
            signature = network_signature(network)
        except UnsupportedConfigurationError as error:
            refused[name] = str(error)
            continue
        representative[name] = first_with.setdefault(signature, name)
    return NetworkBuilds(representative, refused)
