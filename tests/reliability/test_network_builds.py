"""The distinct network builds that the network checks (compile, autocast, deep supervision) run on: networks are
compared at equal input channels, so a click-guided trainer's network, its parent's with one channel more for the
cue, is checked through its parent; a network that differs is its own build."""

import pytest

from nnunet_ext.reliability.network_builds import PLAIN_NNUNET

PARENTS = {"ClickGuidedTrainer": PLAIN_NNUNET, "ClickGuidedDivAttentionTrainer": "DivAttentionTrainer"}


@pytest.mark.parametrize("key", ["3d", "resenc_3d"])  # on 2d plans of 3D images click models are refused
def test_a_click_guided_network_is_checked_through_its_parent(key, network_builds):
    builds = network_builds[key]
    for click_trainer, parent in PARENTS.items():
        if click_trainer not in builds.representative:  # the ResEnc plans check one trainer per family
            continue
        assert builds.representative[click_trainer] == parent
        assert parent in builds.distinct and click_trainer not in builds.distinct
    assert builds.representative["DivAttentionTrainer"] == "DivAttentionTrainer"  # a different network stays apart

