"""Pixel / voxel shuffle in any dimension (SeATrans sec. 2.1, its ref. [26])."""

import itertools

import pytest
import torch
from torch.nn import functional as F

from nnunet_ext.architectures.building_blocks.voxel_shuffle import voxel_shuffle


@pytest.mark.parametrize("factor", [2, 3])
def test_2d_equals_torch_pixel_shuffle(factor):
    torch.manual_seed(0)
    x = torch.randn(2, 3 * factor ** 2, 5, 4)
    assert torch.equal(voxel_shuffle(x, factor), F.pixel_shuffle(x, factor))
    assert torch.equal(voxel_shuffle(x, [factor, factor]), F.pixel_shuffle(x, factor))


def test_3d_places_every_channel_at_its_sub_voxel():
    torch.manual_seed(0)
    factors = (1, 2, 3)
    x = torch.randn(2, 2 * 6, 2, 3, 2)
    y = voxel_shuffle(x, factors)
    assert y.shape == (2, 2, 2, 6, 6)
    for c, (i, j, k), (z, r, s) in itertools.product(range(2), itertools.product(*map(range, factors)),
                                                     itertools.product(range(2), range(3), range(2))):
        source = x[:, c * 6 + (i * 2 + j) * 3 + k, z, r, s]
        assert torch.equal(y[:, c, z * 1 + i, r * 2 + j, s * 3 + k], source)


def test_3d_with_an_unshuffled_axis_is_slicewise_pixel_shuffle():
    torch.manual_seed(0)
    x = torch.randn(1, 4 * 4, 3, 5, 5)
    y = voxel_shuffle(x, (1, 2, 2))
    for z in range(3):
        assert torch.equal(y[:, :, z], F.pixel_shuffle(x[:, :, z], 2))


def test_isotropic_3d_shape_and_values_preserved():
    x = torch.arange(2 * 16 * 2 * 2 * 2, dtype=torch.float32).reshape(2, 16, 2, 2, 2)
    y = voxel_shuffle(x, 2)
    assert y.shape == (2, 2, 4, 4, 4)
    assert torch.equal(y.flatten().sort().values, x.flatten())


def test_rejects_channels_not_divisible_by_the_block():
    with pytest.raises(ValueError):
        voxel_shuffle(torch.zeros(1, 6, 2, 2, 2), 2)
    with pytest.raises(ValueError):
        voxel_shuffle(torch.zeros(1, 8, 2, 2), (2, 2, 2))
