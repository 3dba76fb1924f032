"""The divergence attention map (eq. 4 as read in nnunet_ext.architectures.building_blocks.divergence_attention)."""

import math

import pytest
import torch

from nnunet_ext.architectures.building_blocks.divergence_attention import divergence_attention


def masks_disagreeing_in_a_cube(spatial, num_classes=2):
    """Both paths say 0.9 everywhere except a cube where the lower path says 0.1."""
    upper = torch.full((2, num_classes, *spatial), 0.9)
    lower = upper.clone()
    cube = (slice(None), slice(None), *[slice(2, 5)] * len(spatial))
    lower[cube] = 0.1
    inside = torch.zeros_like(upper, dtype=torch.bool)
    inside[cube] = True
    return upper, lower, inside


@pytest.mark.parametrize("spatial", [(8, 8), (6, 8, 8)])
def test_attention_is_largest_exactly_where_the_paths_disagree(spatial):
    upper, lower, inside = masks_disagreeing_in_a_cube(spatial)
    attention = divergence_attention(upper, lower)
    assert attention.shape == upper.shape
    assert attention[inside].min() > attention[~inside].max()
    assert torch.allclose(attention[inside], attention[inside][0])  # equal disagreement, equal attention


def test_attention_increases_with_the_disagreement():
    upper = torch.zeros(1, 1, 5)
    lower = torch.tensor([[[0.0, 0.2, 0.4, 0.6, 0.8]]])
    attention = divergence_attention(upper, lower)[0, 0]
    assert torch.all(attention[1:] > attention[:-1])


@pytest.mark.parametrize("spatial", [(4, 4), (16, 16, 16), (64, 64, 64)])
def test_attention_has_mean_one_whatever_the_patch_size(spatial):
    torch.manual_seed(0)
    attention = divergence_attention(torch.rand(2, 3, *spatial), torch.rand(2, 3, *spatial))
    means = attention.flatten(2).mean(-1)
    assert torch.allclose(means, torch.ones_like(means), atol=1e-4)
    assert attention.min() >= math.exp(-1) - 1e-6 and attention.max() <= math.e + 1e-6


def test_agreeing_paths_give_uniform_attention():
    mask = torch.rand(1, 2, 6, 6, 6)
    assert torch.allclose(divergence_attention(mask, mask), torch.ones_like(mask))


def test_half_precision_stays_finite_and_matches_float32():
    upper, lower, inside = masks_disagreeing_in_a_cube((32, 32, 32))
    attention_half = divergence_attention(upper.half(), lower.half())
    assert attention_half.dtype == torch.float16
    assert torch.isfinite(attention_half).all()
    assert torch.allclose(attention_half.float(), divergence_attention(upper, lower), rtol=1e-2)


def test_gradient_flows_to_both_masks():
    upper = torch.rand(1, 2, 4, 4, requires_grad=True)
    lower = torch.rand(1, 2, 4, 4, requires_grad=True)
    (divergence_attention(upper, lower) * torch.randn(1, 2, 4, 4)).sum().backward()
    assert upper.grad.abs().sum() > 0 and lower.grad.abs().sum() > 0


def test_masks_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        divergence_attention(torch.rand(1, 2, 4, 4), torch.rand(1, 2, 8, 8))
