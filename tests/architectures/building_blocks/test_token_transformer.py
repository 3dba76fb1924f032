"""The ViT block stack: tokens in and out, hidden states of chosen blocks, attention probabilities computed from the
weights equal to what timm's unfused path computes, token grids from patch sizes with clear refusals."""

import pytest
import torch

from nnunet_ext.architectures.building_blocks.token_grid import patch_divisible_by, token_grid
from nnunet_ext.architectures.building_blocks.token_transformer import (TokenTransformer, evenly_spaced_blocks,
                                                                         grid_to_tokens, tokens_to_grid)
from nnunet_ext.core.errors import UnsupportedConfigurationError


@pytest.mark.parametrize("shape", [(2, 5, 3, 4), (2, 5, 2, 3, 4)])
def test_grid_and_tokens_are_inverse(shape):
    grid = torch.randn(*shape)
    tokens = grid_to_tokens(grid)
    assert tokens.shape == (shape[0], int(torch.tensor(shape[2:]).prod()), shape[1])
    assert torch.equal(tokens_to_grid(tokens, shape[2:]), grid)


def test_hidden_states_are_those_after_the_chosen_blocks():
    transformer = TokenTransformer(num_tokens=6, width=16, depth=3, heads=2).eval()
    tokens = torch.randn(2, 6, 16)
    out, hidden = transformer(tokens, hidden_after=(1, 3))
    x = tokens + transformer.position
    after_first = transformer.blocks[0](x)
    assert torch.allclose(hidden[0], after_first, atol=1e-6)
    last = transformer.blocks[2](transformer.blocks[1](after_first))
    assert torch.allclose(hidden[1], last, atol=1e-6)
    assert torch.allclose(out, transformer.norm(last), atol=1e-6)


def test_attention_maps_equal_timms_unfused_attention():
    transformer = TokenTransformer(num_tokens=5, width=16, depth=2, heads=4).eval()
    tokens = torch.randn(3, 5, 16)
    maps = transformer.attention_maps(tokens)
    captured = []
    for block in transformer.blocks:
        block.attn.fused_attn = False
        block.attn.attn_drop.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0]))
    transformer(tokens)
    assert len(maps) == len(captured) == 2
    for ours, theirs in zip(maps, captured):
        assert ours.shape == (3, 4, 5, 5)
        assert torch.allclose(ours.sum(-1), torch.ones(3, 4, 5))
        assert torch.allclose(ours, theirs, atol=1e-6)


def test_zero_blocks_add_the_position_only():
    transformer = TokenTransformer(num_tokens=4, width=8, depth=0, heads=2)
    tokens = torch.randn(1, 4, 8)
    assert torch.equal(transformer(tokens)[0], tokens + transformer.position)


def test_evenly_spaced_blocks():
    assert evenly_spaced_blocks(12, 4) == (3, 6, 9, 12)
    assert evenly_spaced_blocks(3, 3) == (1, 2, 3)
    assert evenly_spaced_blocks(0, 4) == ()


def test_token_grid_from_the_patch_and_its_refusals():
    assert token_grid((64, 64, 64), (16, 16, 16), "UNETR") == (4, 4, 4)
    assert patch_divisible_by((56, 64, 56), (16, 16, 16)) == (64, 64, 64)
    with pytest.raises(UnsupportedConfigurationError, match="56x64x56.*64x64x64"):
        token_grid((56, 64, 56), (16, 16, 16), "UNETR")
    with pytest.raises(UnsupportedConfigurationError, match="transformer_max_tokens"):
        token_grid((512, 512, 512), (16, 16, 16), "UNETR")
