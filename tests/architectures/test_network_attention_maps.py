"""Which attention maps each network built from real nnU-Net plans has, and that reading them changes nothing the
network computes: ``forward_with_attention`` returns ``forward``'s output, the Div-attention maps are the junctions'
eq. (4) maps, the SeATrans and SiAN maps come from the branch's attention."""

import json

import pytest
import torch

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_ext.architectures.attention.network_maps import MapTile, NetworkAttention, available_families
from nnunet_ext.diagnosis.labels import DiagnosisLabels
from nnunet_ext.diagnosis.plans_entry import add_diagnosis_settings
from nnunet_ext.trainers import (DivAttentionFeaturesTrainer, DivAttentionTrainer, DivAttentionUNETRTrainer_Tiny,
                                 LNetTrainer, SeATransSMCADiagnosisTrainer, SiANDiagnosisTrainer,
                                 SiANDiagnosisTrainer_FrozenDivAttentionSegmentation, TransUNetTrainer_Tiny,
                                 UNETRTrainer_Tiny)

from .planned_networks import build

CHANNELS = ["background", "organ", "lesion"]
TRANSFORMER = ["attention", "rollout", "relevance", "distance"]
EXPECTED = [
    (nnUNetTrainer, "3d_fullres", []), (LNetTrainer, "3d_fullres", []),
    (DivAttentionTrainer, "3d_fullres", ["div_attention"]), (DivAttentionTrainer, "2d", ["div_attention"]),
    (DivAttentionFeaturesTrainer, "2d", ["div_attention"]),
    (UNETRTrainer_Tiny, "3d_fullres", TRANSFORMER), (TransUNetTrainer_Tiny, "2d", TRANSFORMER),
    (DivAttentionUNETRTrainer_Tiny, "3d_fullres", ["div_attention", *TRANSFORMER]),
    (SeATransSMCADiagnosisTrainer, "2d", ["seatrans"]), (SiANDiagnosisTrainer, "3d_fullres", ["sian"]),
    (SiANDiagnosisTrainer_FrozenDivAttentionSegmentation, "2d", ["div_attention", "sian"]),
]


def network_of(planned_synthetic, trainer, configuration):
    plans_file, dataset_json = planned_synthetic["nnUNetPlans"]
    plans = json.loads(plans_file.read_text())
    if hasattr(trainer, "diagnosis_method"):
        labels = DiagnosisLabels(classes=["no", "yes"], ordinal=False, labels={}, source=plans_file)
        plans = add_diagnosis_settings(plans, labels, segmentation_softmax=True)
    if hasattr(trainer, "plans_for_training"):  # UNETR's patch rounded to its 16-voxel tokens, as in training
        plans = trainer.plans_for_training(plans, configuration)
    torch.manual_seed(0)
    network, configuration_manager, _ = build(plans, dataset_json, configuration, deep_supervision=False,
                                              trainer=trainer)
    return network.eval(), configuration_manager.patch_size


@pytest.mark.parametrize("trainer, configuration, families", EXPECTED,
                         ids=[f"{t.__name__}-{c}" for t, c, _ in EXPECTED])
def test_each_network_has_the_maps_of_its_modules(planned_synthetic, trainer, configuration, families):
    network, _ = network_of(planned_synthetic, trainer, configuration)
    assert available_families(network) == families


@pytest.mark.parametrize("trainer, configuration", [
    (DivAttentionTrainer, "3d_fullres"), (DivAttentionFeaturesTrainer, "2d"), (SeATransSMCADiagnosisTrainer, "2d"),
    (SiANDiagnosisTrainer_FrozenDivAttentionSegmentation, "2d"), (DivAttentionUNETRTrainer_Tiny, "3d_fullres")])
def test_the_maps_leave_the_output_unchanged_and_cover_the_tile(planned_synthetic, trainer, configuration):
    network, patch = network_of(planned_synthetic, trainer, configuration)
    attention = NetworkAttention(network, CHANNELS)
    x = torch.randn(1, 1, *patch)
    whole = [f for f in attention.families if f in ("div_attention", "seatrans", "sian")]
    with torch.no_grad():
        plain = network(x)
    result = attention.run(x, whole)
    assert torch.allclose(result.logits, plain[0], atol=1e-5)
    assert result.maps and all(tile.family in whole for tile in result.maps.values())
    for name, tile in result.maps.items():
        full = tile.at_size(patch)
        assert full.shape == (len(tile.channels), *patch)
        assert torch.isfinite(full).all() and (full >= 0).all()


def test_div_attention_maps_are_the_junctions_eq4_maps_per_class(planned_synthetic):
    network, patch = network_of(planned_synthetic, DivAttentionTrainer, "3d_fullres")
    x = torch.randn(1, 1, *patch)
    with torch.no_grad():
        output, maps = network.forward_with_attention(x)
        # eq. 1-4 by hand on the highest junction: the two paths' masks and their divergence
        from nnunet_ext.architectures.div_attention_unet import every_path_logits
        paths = every_path_logits(network.decoder, network.encoder(x))
        refined = paths[0]
        for junction, upper in zip(network.div_attention, paths[1:]):
            expected = (torch.sigmoid(upper) - torch.sigmoid(junction.align_lower(refined))).abs()
            refined = junction(upper, refined, x)
    assert torch.allclose(maps[-1], expected, atol=1e-6)
    assert torch.allclose(output, network(x), atol=1e-6)
    tiles = NetworkAttention(network, CHANNELS).run(x, ["div_attention"]).maps
    assert list(tiles) == [f"div_attention_junction{k}" for k in range(1, len(network.div_attention) + 1)]
    assert tiles[f"div_attention_junction{len(network.div_attention)}"].channels == CHANNELS
    assert (maps[-1] <= 1).all() and maps[-1].std() > 0


def test_seatrans_maps_are_the_decoder_attention_over_the_segmentation_positions(planned_synthetic):
    network, patch = network_of(planned_synthetic, SeATransSMCADiagnosisTrainer, "2d")
    x = torch.randn(1, 1, *patch)
    with torch.no_grad():
        _, _, attention = network.forward_with_attention(x)
    tiles = NetworkAttention(network, CHANNELS).run(x, ["seatrans"]).maps
    for key, maps in attention.items():
        tile = tiles["seatrans_" + key.replace("/", "_")]
        expected = maps.weights["decoder"][0].mean(dim=(0, 1)).reshape(1, *maps.token_grid)
        assert torch.allclose(tile.values, expected, atol=1e-6)
        assert torch.isclose(tile.values.sum(), torch.tensor(1.0), atol=1e-4)  # a distribution over positions


def test_maps_are_brought_to_the_tile_by_nearest_token_or_linear_interpolation():
    token = MapTile(torch.tensor([[[1.0, 2.0], [3.0, 4.0]]]), ["t"], "rollout", "nearest")
    assert torch.equal(token.at_size((4, 4))[0, :2, :2], torch.ones(2, 2))
    assert torch.equal(token.at_size((4, 4))[0, 2:, 2:], torch.full((2, 2), 4.0))
    feature = MapTile(torch.tensor([[[0.0, 1.0]]]), ["f"], "sian", "linear")
    assert torch.allclose(feature.at_size((1, 4))[0, 0], torch.tensor([0.0, 0.25, 0.75, 1.0]))
