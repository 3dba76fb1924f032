"""The SeA-block (SeATrans eq. 1 and 2) on token sequences."""

import pytest
import torch

from nnunet_ext.architectures.building_blocks.sea_block import SeABlock


def tokens(batch=2, n_m=12, n_d=12, dim=16):
    return torch.randn(batch, n_m, dim), torch.randn(batch, n_d, dim)


@pytest.mark.parametrize("n_m, n_d", [(12, 12), (6, 10)])
def test_output_has_the_diagnosis_tokens_shape(n_m, n_d):
    torch.manual_seed(0)
    block = SeABlock(16, 4, mlp_ratio=2.0)
    segmentation, diagnosis = tokens(n_m=n_m, n_d=n_d)
    out, attention = block(segmentation, diagnosis, return_attention=True)
    assert out.shape == diagnosis.shape
    assert attention["encoder"].shape == (2, 4, n_m, n_d)  # eq. 1: segmentation queries, diagnosis keys
    assert attention["decoder"].shape == (2, 4, n_d, n_m)  # eq. 2: diagnosis queries, embedding keys
    assert attention["self"].shape == (2, 4, n_d, n_d)
    assert torch.allclose(block(segmentation, diagnosis), out, atol=1e-6)


def test_attention_weights_sum_to_one_over_keys():
    torch.manual_seed(0)
    block = SeABlock(16, 4)
    segmentation, diagnosis = tokens(n_m=7, n_d=9)
    position_m, position_d, position_md = torch.randn(1, 7, 16), torch.randn(1, 9, 16), torch.randn(1, 7, 16)
    _, attention = block(segmentation, diagnosis, position_m, position_d, position_md, return_attention=True)
    for weights in attention.values():
        assert (weights >= 0).all()
        assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=1e-5)


def test_segmentation_tokens_change_the_diagnosis_output():
    torch.manual_seed(0)
    block = SeABlock(16, 4)
    segmentation, diagnosis = tokens()
    out, attention = block(segmentation, diagnosis, return_attention=True)
    other_out, other_attention = block(segmentation + torch.randn_like(segmentation), diagnosis,
                                       return_attention=True)
    assert (out - other_out).abs().max() > 1e-3
    assert (attention["encoder"] - other_attention["encoder"]).abs().max() > 1e-4


def test_positional_encodings_enter_the_queries_and_keys_not_the_values():
    """Eq. 1 ``MHA(f_m + E_m, f_d + E_d, f_d)`` and eq. 2 ``MHA(f_d + E_d, f_md + E_md, f_md)``: what each attention
    receives as query, key and value, recorded at its input."""
    torch.manual_seed(0)
    block = SeABlock(16, 4)
    segmentation, diagnosis = tokens()
    position_m, position_d, position_md = (torch.randn(1, 12, 16) for _ in range(3))
    received = {}

    def record(name):
        def hook(module, args, kwargs):
            received[name] = [a.detach().clone() for a in args[:3]]
        return hook

    handles = [getattr(block, f"{name}_attention").register_forward_pre_hook(record(name), with_kwargs=True)
               for name in ("encoder", "decoder", "self")]
    try:
        block(segmentation, diagnosis, position_m, position_d, position_md)
    finally:
        for handle in handles:
            handle.remove()
    query, key, value = received["encoder"]
    assert torch.allclose(query, segmentation + position_m) and torch.allclose(key, diagnosis + position_d)
    assert torch.equal(value, diagnosis)  # f_d without E_d
    query, key, value = received["decoder"]
    assert torch.allclose(query, diagnosis + position_d)
    assert torch.allclose(key, value + position_md)  # f_md + E_md as keys, f_md itself as values
    query, key, value = received["self"]
    assert torch.allclose(query, value + position_d) and torch.allclose(key, value + position_d)
    zero = torch.zeros(1, 12, 16)
    assert torch.allclose(block(segmentation, diagnosis), block(segmentation, diagnosis, zero, zero, zero))


def test_with_the_attention_weights_fixed_the_positional_encodings_change_nothing():
    """An observable form of the same claim: with the query and key projections zeroed every attention is uniform
    whatever its inputs, so positional encodings that enter only queries and keys cannot change the output; had one
    entered a value (or a residual), the output would move. With the projections as initialised they do change it."""
    torch.manual_seed(0)
    block = SeABlock(16, 4)
    segmentation, diagnosis = tokens()
    positions = [torch.randn(1, 12, 16) for _ in range(3)]
    out, _ = block(segmentation, diagnosis, return_attention=True)
    moved = block(segmentation, diagnosis, *positions)
    assert (moved - out).abs().max() > 1e-3  # the encodings matter through the attention weights
    with torch.no_grad():
        for attention in (block.encoder_attention, block.decoder_attention, block.self_attention):
            attention.in_proj_weight[:32].zero_()  # rows 0..D-1: queries, D..2D-1: keys
            attention.in_proj_bias[:32].zero_()
    fixed, weights = block(segmentation, diagnosis, return_attention=True)
    assert all(torch.allclose(w, torch.full_like(w, 1 / 12)) for w in weights.values())
    for position_m, position_d, position_md in [positions, [positions[0], None, None], [None, positions[1], None],
                                                [None, None, positions[2]]]:
        assert torch.allclose(block(segmentation, diagnosis, position_m, position_d, position_md), fixed, atol=1e-6)


def test_gradients_reach_both_token_sequences_and_every_attention():
    torch.manual_seed(0)
    block = SeABlock(16, 4)
    segmentation, diagnosis = tokens()
    segmentation.requires_grad_(True)
    diagnosis.requires_grad_(True)
    block(segmentation, diagnosis).square().mean().backward()
    assert segmentation.grad.abs().sum() > 0 and diagnosis.grad.abs().sum() > 0
    for attention in (block.encoder_attention, block.decoder_attention, block.self_attention):
        assert attention.in_proj_weight.grad.abs().sum() > 0


def test_rejects_heads_not_dividing_the_embedding():
    with pytest.raises(ValueError):
        SeABlock(10, 4)
