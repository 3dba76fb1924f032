"""SeATrans with SMCA's spatial prior on the SeA-blocks' decoder attention (eq. 2) and SMCA's scale-attention in
place of the 1x1 fusion: the attention peak follows the prior (and, with centres from the segmentation, the lesion)."""

import pytest
import torch
from torch import nn

from dynamic_network_architectures.architectures.unet import PlainConvUNet
from dynamic_network_architectures.building_blocks.helper import get_matching_instancenorm

from nnunet_ext.architectures.building_blocks.sea_block import SeABlock
from nnunet_ext.architectures.diagnosis.seatrans_branch import SeATransDiagnosisBranch

PLANS = {nn.Conv2d: ((32, 32), [1, 2, 2, 2]),
         nn.Conv3d: ((16, 32, 32), [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]])}


def branch_and_inputs(conv_op, spatial_prior, batch=2):
    torch.manual_seed(0)
    patch, strides = PLANS[conv_op]
    unet = PlainConvUNet(1, 4, [8, 16, 32, 32], conv_op, 3, strides, 2, 2, 1, conv_bias=True,
                         norm_op=get_matching_instancenorm(conv_op), norm_op_kwargs={"eps": 1e-5, "affine": True},
                         nonlin=nn.LeakyReLU, nonlin_kwargs={"inplace": True})
    branch = SeATransDiagnosisBranch(unet.encoder, 1, patch, 1, embed_dim=16, num_heads=4,
                                     spatial_prior=spatial_prior).eval()
    image = torch.randn(batch, 1, *patch)
    with torch.no_grad():
        skips = unet.encoder(image)
    return branch, image, skips, patch


def lesion_probabilities(patch, centre, radius=2):
    """Softmax-like probabilities ``[1, 3, *patch]`` with a lesion (channel 2) ball around ``centre``."""
    grid = torch.stack(torch.meshgrid(*[torch.arange(s) for s in patch], indexing="ij"))
    inside = ((grid - torch.tensor(centre).view(-1, *[1] * len(patch))) ** 2).sum(0) <= radius ** 2
    probabilities = torch.zeros(1, 3, *patch)
    probabilities[0, 0] = (~inside).float()
    probabilities[0, 2] = inside.float()
    return probabilities


def decoder_peak(attention, key):
    """Normalised position of the key that the diagnosis queries attend to most, averaged over heads and queries."""
    maps = attention[key]
    paid = maps.weights["decoder"][0].mean(dim=(0, 1))
    index = int(paid.argmax())
    grid = maps.token_grid
    position = []
    for size in reversed(grid):
        position.append((index % size + 0.5) / size)
        index //= size
    return torch.tensor(position[::-1])


@pytest.mark.parametrize("conv_op", [nn.Conv2d, nn.Conv3d])
@pytest.mark.parametrize("spatial_prior", ["smca", "smca_lesion"])
def test_shapes_gradients_and_the_modules_smca_adds(conv_op, spatial_prior):
    branch, image, skips, patch = branch_and_inputs(conv_op, spatial_prior)
    branch.train()
    probabilities = torch.softmax(torch.randn(2, 3, *patch), dim=1)
    logits, attention = branch(image, skips, probabilities, return_attention=True)
    assert logits.shape == (2, 1)
    for maps in attention.values():
        weights = maps.weights["decoder"]
        assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=1e-5)
    logits.sum().backward()
    names = {name for name, p in branch.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert any("spatial_prior.scale_fc" in n for n in names) and any("spatial_prior.centre_mlp" in n for n in names)
    assert any(n.endswith("scale_attention.weight") for n in names) and any(n.endswith("projection.weight")
                                                                          for n in names)
    assert not any(".fuse." in n for n in names)  # the 1x1 fusion is replaced by the scale-attention


def test_without_a_prior_the_branch_is_seatrans_as_before():
    branch, image, skips, _ = branch_and_inputs(nn.Conv2d, "none")
    names = [name for name, _ in branch.named_parameters()]
    assert not any("spatial_prior" in n or "scale_attention" in n for n in names)
    assert any(".fuse." in n for n in names)


@pytest.mark.parametrize("conv_op, centres", [(nn.Conv2d, [(8, 8), (24, 22)]),
                                               (nn.Conv3d, [(4, 8, 8), (12, 24, 22)])])
def test_with_centres_from_the_lesion_the_attention_peak_moves_with_the_lesion(conv_op, centres):
    branch, image, skips, patch = branch_and_inputs(conv_op, "smca_lesion", batch=1)
    peaks = []
    for centre in centres:
        with torch.no_grad():
            _, attention = branch(image, skips, lesion_probabilities(patch, centre), return_attention=True)
        peaks.append(decoder_peak(attention, f"stage_{branch.interaction_stages[0]}/coarse"))
    for peak, centre in zip(peaks, centres):
        expected = (torch.tensor(centre, dtype=torch.float32) + 0.5) / torch.tensor(patch)
        assert torch.allclose(peak, expected, atol=0.15), (peak, expected)
    assert (peaks[0] - peaks[1]).abs().max() > 0.3


def test_the_predicted_centre_moves_the_attention_peak():
    branch, image, skips, patch = branch_and_inputs(nn.Conv2d, "smca", batch=1)
    peaks = []
    for bias in (-3.0, 3.0):
        for interaction in branch.interactions.values():
            for block in (interaction.coarse, interaction.fine):
                with torch.no_grad():
                    block.spatial_prior.centre_mlp[-1].weight.zero_()
                    block.spatial_prior.centre_mlp[-1].bias.fill_(bias)
                    block.spatial_prior.scale_fc.bias.fill_(-3.0)  # narrow: the prior dominates
        with torch.no_grad():
            _, attention = branch(image, skips, None, return_attention=True)
        peaks.append(decoder_peak(attention, f"stage_{branch.interaction_stages[0]}/fine"))
    assert (peaks[0] < 0.2).all() and (peaks[1] > 0.8).all(), peaks


def test_the_sea_block_adds_the_prior_to_the_decoder_logits_only():
    torch.manual_seed(0)
    block = SeABlock(16, 4).eval()
    segmentation, diagnosis = torch.randn(1, 6, 16), torch.randn(1, 6, 16)
    bias = torch.full((1, 4, 6, 6), -1e4)
    bias[..., 3] = 0.0  # every query may attend to key 3 only

    _, plain = block(segmentation, diagnosis, return_attention=True)
    _, prior = block(segmentation, diagnosis, return_attention=True, decoder_prior=lambda queries: bias)
    assert torch.allclose(prior["decoder"][..., 3], torch.ones(1, 4, 6), atol=1e-5)
    assert torch.allclose(prior["encoder"], plain["encoder"])  # eq. 1 untouched


def test_the_scale_attention_weighs_the_paths_per_position():
    branch, image, skips, patch = branch_and_inputs(nn.Conv2d, "smca", batch=1)
    interaction = branch.interactions[str(branch.interaction_stages[0])]
    features = torch.randn(1, interaction.projection.out_channels, 8, 8)
    coarse, fine = torch.randn(1, 16, 8, 8), torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        interaction.scale_attention.weight.zero_()
        interaction.scale_attention.bias.copy_(torch.tensor([-30.0, 30.0]))  # all weight on the fine path
        assert torch.allclose(interaction.integrate(features, [coarse, fine]), interaction.projection(fine),
                              atol=1e-5)
        interaction.scale_attention.bias.zero_()  # equal weights
        assert torch.allclose(interaction.integrate(features, [coarse, fine]),
                              interaction.projection(0.5 * coarse + 0.5 * fine), atol=1e-5)


def test_an_unknown_prior_is_refused():
    with pytest.raises(ValueError, match="spatial_prior"):
        branch_and_inputs(nn.Conv2d, "detr")
