"""What a transformer block attends to, recorded while the network runs: the recorded weights are the blocks'
softmax attention; rollout, relevance and the mean attention distance follow their papers' formulas."""

import math

import pytest
import torch
from torch import nn

from dynamic_network_architectures.architectures.primus import Primus

from nnunet_ext.architectures.attention.network_maps import NetworkAttention
from nnunet_ext.architectures.attention.token_attention import (mean_attention_distance, query_token,
                                                                 recording_attention, relevance_row, rollout_row,
                                                                 token_distances_mm, token_layout,
                                                                 uniform_attention_distance)
from nnunet_ext.architectures.building_blocks.token_transformer import TokenTransformer
from nnunet_ext.architectures.unetr import UNETR

BLOCK_KWARGS = {"conv_bias": True, "norm_op": nn.InstanceNorm3d, "norm_op_kwargs": {"eps": 1e-5, "affine": True},
                "nonlin": nn.LeakyReLU, "nonlin_kwargs": {"inplace": True}}


def tiny_unetr(depth=3):
    torch.manual_seed(0)
    return UNETR(nn.Conv3d, 1, 3, (2, 2, 2), (16, 16, 16), 32, depth, 4, feature_size=8,
                 block_kwargs=BLOCK_KWARGS).eval()


def test_recorded_weights_are_the_blocks_softmax_attention_and_the_fused_kernel_comes_back():
    torch.manual_seed(0)
    transformer = TokenTransformer(10, 16, 3, 4).eval()
    network = nn.Module()
    network.transformer, network.token_grid = transformer, (2, 5)
    layout = token_layout(network)
    tokens = torch.randn(2, 10, 16)
    recorded = {}
    fused_before = [module.fused_attn for module in layout.attention_modules]
    with torch.no_grad():
        expected_output, _ = transformer(tokens)
        with recording_attention(layout, lambda index, weights: recorded.__setitem__(index, weights.clone())):
            output, _ = transformer(tokens)
        expected = transformer.attention_maps(tokens)
    assert torch.allclose(output, expected_output, atol=1e-5)  # recording changes nothing the network computes
    assert sorted(recorded) == [0, 1, 2]
    for index, weights in recorded.items():
        assert torch.allclose(weights, expected[index], atol=1e-6)
    assert [module.fused_attn for module in layout.attention_modules] == fused_before


def test_rollout_row_is_the_query_row_of_the_product_of_the_averaged_attentions():
    torch.manual_seed(0)
    means = [torch.softmax(torch.randn(6, 6), dim=-1) for _ in range(3)]
    identity = torch.eye(6)
    product = identity
    for mean in means:  # R = Ã_L ... Ã_1
        product = (0.5 * (mean + identity)) @ product
    row = rollout_row(means, 4)
    assert torch.allclose(row, product[4], atol=1e-6)
    assert math.isclose(float(row.sum()), 1.0, rel_tol=1e-5)


def test_relevance_row_follows_chefer_et_als_update_without_the_identity():
    torch.manual_seed(0)
    weighted = [torch.rand(5, 5) for _ in range(3)]
    relevance = torch.eye(5)
    for block in weighted:  # R <- R + Ā_b R, from R = I
        relevance = relevance + block @ relevance
    assert torch.allclose(relevance_row(weighted, 2), (relevance - torch.eye(5))[2], atol=1e-5)


def test_mean_attention_distance_is_zero_for_self_attention_and_the_uniform_distance_for_uniform_attention():
    grid, cell = (2, 3, 4), (2.0, 1.0, 1.5)
    distances = token_distances_mm(grid, cell)
    size = distances.shape[0]
    assert torch.allclose(mean_attention_distance(torch.eye(size).expand(1, 2, size, size), distances),
                          torch.zeros(2))
    uniform = torch.full((1, 2, size, size), 1.0 / size)
    assert torch.allclose(mean_attention_distance(uniform, distances),
                          torch.full((2,), uniform_attention_distance(grid, cell)), atol=1e-5)
    assert math.isclose(float(distances[0, 1]), 1.5)  # neighbours on the last axis: one cell of 1.5 mm


def test_query_token_is_the_row_major_index_of_the_cell_holding_the_voxel():
    assert query_token((0, 0, 0), (32, 32, 32), (2, 2, 2)) == 0
    assert query_token((20, 5, 31), (32, 32, 32), (2, 2, 2)) == 4 + 0 + 1
    assert query_token((79, 40), (80, 80), (5, 5)) == 4 * 5 + 2


def test_relevance_of_the_tile_equals_chefer_et_al_with_every_gradient_taken_at_once():
    """The hooks that reduce each block's gradient as it arrives give what autograd's gradients of all attention
    maps, taken together, give."""
    network = tiny_unetr()
    x = torch.randn(1, 1, 32, 32, 32)
    query_position = (20, 5, 9)
    attention = NetworkAttention(network, ["background", "organ", "lesion"])
    result = attention.run(x, ["relevance"], query_position)
    recorded = []
    with torch.enable_grad():
        with recording_attention(token_layout(network), lambda index, weights: recorded.append(weights)):
            logits = network(x)[0]
        target = logits[(result.target_class, *query_position)]
        gradients = torch.autograd.grad(target, recorded)
    weighted = [(g * a).clamp_min(0).mean(dim=1)[0] for g, a in zip(gradients, recorded)]
    query = query_token(query_position, (32, 32, 32), (2, 2, 2))
    expected = relevance_row(weighted, query)
    assert torch.allclose(result.maps["attention_relevance"].values.flatten(), expected, atol=1e-6)
    assert int(logits[(slice(None), *query_position)].argmax()) == result.target_class


def test_primus_register_tokens_are_left_out_of_the_maps():
    torch.manual_seed(0)
    network = Primus(1, 96, (8, 8, 8), 3, 2, 2, (32, 32, 32), num_register_tokens=2).eval()
    layout = token_layout(network)
    assert layout.prefix_tokens == 2 and layout.depth == 2
    attention = NetworkAttention(network, ["a", "b", "c"])
    assert attention.families == ["attention", "rollout", "relevance", "distance"]
    result = attention.run(torch.randn(1, 1, 32, 32, 32), attention.families, (3, 30, 17), (1.0, 1.0, 1.0))
    assert result.maps["attention_block01"].values.shape == (2, 4, 4, 4)  # heads x the 4x4x4 grid
    for name in ("attention_block01", "attention_block02", "attention_rollout"):
        sums = result.maps[name].values.flatten(1).sum(dim=1)  # renormalised over the grid tokens
        assert torch.allclose(sums, torch.ones_like(sums), atol=1e-4)
    assert result.distances.shape == (2, 2)


def test_a_network_without_blocks_has_no_transformer_maps():
    assert token_layout(tiny_unetr(depth=0)) is None
    assert NetworkAttention(tiny_unetr(depth=0), ["a", "b", "c"]).families == []


def test_query_maps_need_a_query():
    attention = NetworkAttention(tiny_unetr(), ["a", "b", "c"])
    with pytest.raises(ValueError, match="query"):
        attention.run(torch.randn(1, 1, 32, 32, 32), ["rollout"])
