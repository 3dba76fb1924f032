"""SMCA's spatial prior (Gao et al. 2021, sec. 3.1): log G in closed form, float32, never a row of -inf; centres and
scales predicted per query and head, or starting on the segmentation's lesion."""

import pytest
import torch

from nnunet_ext.architectures.building_blocks.spatial_prior import (GaussianSpatialPrior, lesion_statistics,
                                                                     normalised_token_centres,
                                                                     worst_log_prior_at_nearest_key)


def peak_position(log_prior: torch.Tensor, grid) -> torch.Tensor:
    """Normalised position of the largest prior of each (batch, head, query): ``[B, h, N_q, ndim]``."""
    return normalised_token_centres(grid)[log_prior.argmax(dim=-1)]


@pytest.mark.parametrize("grid", [(8, 12), (4, 6, 5)])
def test_shape_float32_and_finite_under_autocast(grid):
    torch.manual_seed(0)
    prior = GaussianSpatialPrior(16, 4, len(grid))
    queries = torch.randn(2, 7, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        log_prior = prior(queries, grid)
    assert log_prior.shape == (2, 4, 7, int(torch.tensor(grid).prod()))
    assert log_prior.dtype == torch.float32
    assert torch.isfinite(log_prior).all() and (log_prior <= 0).all()


@pytest.mark.parametrize("grid", [(16, 16), (4, 8, 8)])
def test_no_row_is_all_minus_infinity_at_the_smallest_scale_and_a_corner_centre(grid):
    """The scale's floor (one token cell): even with the scale driven to it and the centre in a corner, every row
    keeps a finite maximum at least -ndim / (4 beta) at the key nearest the centre, and softmax stays finite."""
    torch.manual_seed(0)
    prior = GaussianSpatialPrior(8, 2, len(grid))
    with torch.no_grad():
        prior.scale_fc.bias.fill_(-1e4)  # exp(-1e4) = 0: the scale is its floor
        prior.centre_mlp[-1].weight.zero_()
        prior.centre_mlp[-1].bias.fill_(1e4)  # sigmoid -> the far corner
    log_prior = prior(torch.randn(1, 5, 8), grid)
    assert torch.isfinite(log_prior).all()
    assert (log_prior.max(dim=-1).values >= worst_log_prior_at_nearest_key(len(grid)) - 1e-4).all()
    logits = torch.randn_like(log_prior) + log_prior
    assert torch.isfinite(torch.softmax(logits, dim=-1)).all()


def test_the_query_variant_starts_broad_and_its_centre_follows_the_mlp():
    torch.manual_seed(0)
    grid = (16, 16)
    prior = GaussianSpatialPrior(8, 2, 2)
    with torch.no_grad():
        prior.centre_mlp[-1].weight.zero_()
        prior.centre_mlp[-1].bias.zero_()  # sigmoid(0): the middle of the map
    middle = peak_position(prior(torch.randn(1, 3, 8), grid), grid)
    assert torch.allclose(middle, torch.full_like(middle, 0.5), atol=1 / 16)
    with torch.no_grad():
        prior.centre_mlp[-1].bias.copy_(torch.tensor([-2.0, 1.0, 2.0, 2.0]))  # head 1: (0.12, 0.73), head 2: (0.88, 0.88)
    moved = peak_position(prior(torch.randn(1, 3, 8), grid), grid)
    assert torch.allclose(moved[0, 0], torch.tensor([0.12, 0.73]), atol=1 / 16)
    assert torch.allclose(moved[0, 1], torch.tensor([0.88, 0.88]), atol=1 / 16)


def test_lesion_statistics_are_the_centroid_and_the_spread():
    lesion = torch.zeros(1, 8, 8)
    lesion[0, 2, 5] = lesion[0, 4, 5] = 1.0
    centre, extent, mass = lesion_statistics(lesion)
    assert torch.allclose(centre, torch.tensor([[3.5 / 8, 5.5 / 8]]))
    assert torch.allclose(extent, torch.tensor([[1 / 8, 0.0]]), atol=1e-6)
    assert mass.item() == 2.0


def test_the_lesion_variant_starts_every_query_on_the_lesion_and_falls_back_without_one():
    torch.manual_seed(0)
    grid = (12, 12)
    prior = GaussianSpatialPrior(8, 3, 2, centres="lesion")
    lesion = torch.zeros(2, *grid)
    lesion[0, 2:4, 8:10] = 1.0  # a lesion in the upper right; the second map has none
    log_prior = prior(torch.randn(2, 4, 8), grid, lesion)
    peaks = peak_position(log_prior, grid)
    assert torch.allclose(peaks[0], torch.tensor([3 / 12, 9 / 12]).expand_as(peaks[0]), atol=1 / 12)
    assert torch.allclose(peaks[1], torch.full_like(peaks[1], 0.5), atol=1 / 12)
    # the Gaussian is as wide as the lesion: far from it the prior is far below its peak
    assert (log_prior[0, :, :, 11 * 12] < -10).all()


def test_gradients_reach_the_centre_and_scale_layers():
    torch.manual_seed(0)
    prior = GaussianSpatialPrior(8, 2, 3)
    prior(torch.randn(1, 4, 8, requires_grad=True), (3, 4, 5)).sum().backward()
    for layer in (prior.centre_mlp[0], prior.centre_mlp[-1], prior.scale_fc):
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_an_unknown_centre_source_is_refused():
    with pytest.raises(ValueError, match="centres"):
        GaussianSpatialPrior(8, 2, 2, centres="click")
