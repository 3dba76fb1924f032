"""The divergence attention maps (eq. 4 in both readings of nnunet_ext.architectures.building_blocks.divergence_attention)
and the masks (eq. 2-3)."""

import math

import pytest
import torch

from nnunet_ext.architectures.building_blocks.divergence_attention import (divergence_attention, divergence_map,
                                                                           sigmoid_masks, softmax_masks)
from nnunet_ext.reliability.float32_ops import SensitiveOpRecorder


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


# --- the paper's literal reading (div_attention_map = "divergence") and the masks (div_attention_masks) ---

@pytest.mark.parametrize("spatial", [(8, 8), (6, 8, 8)])
def test_divergence_map_is_zero_where_the_paths_agree_and_largest_where_they_disagree(spatial):
    upper, lower, inside = masks_disagreeing_in_a_cube(spatial)
    attention = divergence_map(upper, lower)
    assert attention.shape == upper.shape
    assert attention[~inside].abs().max() < 1e-6
    assert torch.allclose(attention[inside], torch.tensor(0.8))
    assert attention[inside].min() > attention[~inside].max()


@pytest.mark.parametrize("spatial", [(8, 8), (6, 8, 8)])
def test_divergence_map_is_near_zero_where_the_paths_nearly_agree_and_in_zero_one(spatial):
    torch.manual_seed(0)
    upper = torch.rand(2, 3, *spatial)
    lower = (upper + 1e-3 * torch.randn_like(upper)).clamp(0, 1)
    assert divergence_map(upper, lower).max() < 1e-2
    opposite = divergence_map(torch.zeros(1, 1, *spatial), torch.ones(1, 1, *spatial))
    assert torch.all(opposite == 1.0)
    attention = divergence_map(torch.rand(2, 3, *spatial), torch.rand(2, 3, *spatial))
    assert attention.min() >= 0 and attention.max() <= 1


def test_divergence_map_does_not_depend_on_the_patch_size():
    """No size normalisation: the same local disagreement gives the same values in a small and a large patch."""
    small, large = masks_disagreeing_in_a_cube((8, 8, 8)), masks_disagreeing_in_a_cube((32, 32, 32))
    cube = (slice(None), slice(None), *[slice(2, 5)] * 3)
    assert torch.equal(divergence_map(*small[:2])[cube], divergence_map(*large[:2])[cube])
    assert divergence_map(*large[:2])[~large[2]].max() == 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_divergence_map_is_float32_under_autocast(dtype):
    upper, lower, _ = masks_disagreeing_in_a_cube((6, 8, 8))
    upper, lower = upper.to(dtype), lower.to(dtype)  # as a low-precision layer leaves them
    with torch.autocast("cpu", dtype=dtype):
        attention = divergence_map(upper, lower)
    assert attention.dtype == torch.float32
    assert torch.equal(attention, (upper.float() - lower.float()).abs())


def test_divergence_map_of_masks_of_different_shapes_is_refused():
    with pytest.raises(ValueError, match="same shape"):
        divergence_map(torch.rand(1, 2, 4, 4), torch.rand(1, 2, 8, 8))


def test_softmax_masks_ignore_a_constant_added_to_every_class_of_a_voxel_and_sigmoid_masks_do_not():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 6, 8)
    shifted = logits + 5 * torch.randn(2, 1, 6, 8)  # one constant per voxel, the same for every class
    assert torch.allclose(softmax_masks(shifted), softmax_masks(logits), atol=1e-6)
    assert torch.allclose(softmax_masks(logits).sum(1), torch.ones(2, 6, 8))
    assert not torch.allclose(sigmoid_masks(shifted), sigmoid_masks(logits), atol=1e-2)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_softmax_masks_are_float32_under_autocast(dtype):
    with torch.autocast("cpu", dtype=dtype), SensitiveOpRecorder() as recorder:
        masks = softmax_masks(torch.randn(2, 3, 6, 8).to(dtype))
    assert masks.dtype == torch.float32
    assert recorder.calls and recorder.low_precision() == []
