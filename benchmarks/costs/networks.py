"""Which networks the cost benchmark compares with plain nnU-Net: one trainer per distinct network build of the
registry on the given plans (budget variants, deprecated names and loss-only variants share their parent's network;
trainers that start from a trained segmentation model build their joint twin's network)."""

from typing import List, Tuple

from nnunet_ext.reliability.network_builds import PLAIN_NNUNET, NetworkSetting, distinct_network_builds
from nnunet_ext.trainers.registry import list_trainers

NOT_OWN_NETWORKS = ["short", "deprecated", "needs_segmentation_model"]


def _by_name_length(names):
    return sorted(names, key=lambda name: (len(name), name))  # a family's base trainer before its loss variants


def segmentation_networks(setting: NetworkSetting) -> Tuple[List[str], dict]:
    """(trainers with a distinct segmentation network, refused trainer -> reason), plain nnU-Net's excluded."""
    trainers = _by_name_length([PLAIN_NNUNET, *list_trainers(exclude=[*NOT_OWN_NETWORKS, "diagnosis"])])
    builds = distinct_network_builds(setting, trainers)
    return [name for name in builds.distinct if name != PLAIN_NNUNET], builds.refused


def diagnosis_networks(setting: NetworkSetting) -> Tuple[List[str], dict]:
    """(diagnosis trainers with a distinct network, refused trainer -> reason)."""
    builds = distinct_network_builds(setting, _by_name_length(list_trainers(tag="diagnosis",
                                                                            exclude=NOT_OWN_NETWORKS)))
    return builds.distinct, builds.refused
