"""The self-attention of a network's transformer blocks, recorded while the network runs, and what the seminar
(``../shared/papers/004``) reads from it: a query token's raw attention per block and head, attention rollout, the
gradient-weighted relevance, and the mean attention distance.

**Recording.** timm's attention modules (``Attention`` of the ViT ``Block`` in our :class:`TokenTransformer`, and
``EvaAttention`` of nnU-Net's Primus) compute ``softmax(q k^T / sqrt(d))`` explicitly when their ``fused_attn`` flag
is off and pass it through their ``attn_drop`` module (dropout, the identity in eval mode) before ``@ v``.
:func:`recording_attention` switches the flag off for the duration of a call and records what enters ``attn_drop``:
the softmax weights ``[B, heads, N, N]`` that the fused kernel computes internally (same weights, same outputs).
The seminar calls ``QK^T`` the *raw attention*; what we export as such are its softmax weights (each query's row sums
to one), the quantity that multiplies the values.

**Token layout** (:class:`TokenLayout`): the blocks, the token grid ``G`` over the network's input patch ``P`` (token
``t`` covers the voxels ``t_a * P_a / G_a ... (t_a + 1) * P_a / G_a`` on each axis) and the number of prefix
tokens before the grid tokens (Primus' register tokens; none in our networks).

**Rollout** (Abnar and Zuidema 2020, eq. in sec. 3): ``Ã_b = (mean_heads A_b + I) / 2`` (rows still sum to one),
``R = Ã_L ... Ã_1``; the query's row of ``R`` is computed from the left as a vector, ``v <- v Ã_b`` for ``b = L .. 1``,
so only the blocks' head means are kept (``L x N^2`` floats), never the product matrix. Prefix tokens take part in the
product; the grid part of the row is then renormalised to sum to one (as the raw attention's rows are).

**Relevance** (Chefer, Gur and Wolf 2021, *Generic Attention-model Explainability*, eq. 5-6, the gradient-weighted
attention rule for self-attention, which the seminar's "Chefer 2021" names as the step beyond rollout):
``Ā_b = mean_heads((∇A_b ⊙ A_b)^+)`` with ``∇A_b`` the gradient of the target logit (the class predicted at the query
voxel) and ``R <- R + Ā_b R`` from ``R = I``; the query's row is again a vector product, ``v <- v + v Ā_b`` for
``b = L .. 1``. We report ``R - I`` (the identity's self-relevance of the query token, 1, removed, as Chefer et al.
drop the [CLS] token's own column). Memory: autograd keeps every block's attention for the backward pass
(``L x heads x N^2`` floats, e.g. 12 x 12 x 512^2 x 4 B = 151 MB for 512 tokens, 9.7 GB at 4,096), the gradients
arrive one block at a time and are reduced at once to ``Ā_b`` (``L x N^2`` floats kept), beside the network's own
memory of a training step on one tile.

**Mean attention distance** (Dosovitskiy et al. 2021, Fig. 7: "attention distance is analogous to receptive field
size"): per block and head, ``mean_i sum_j A[i, j] d(i, j)`` over the grid tokens (prefix tokens dropped and the
rows renormalised over the grid), ``d`` the distance in mm between token centres (token cell size times the voxel
spacing on each axis). Uniform attention gives :func:`uniform_attention_distance`, the mean distance between two
tokens of the grid.
"""

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn

from nnunet_ext.architectures.building_blocks.token_transformer import TokenTransformer


@dataclass
class TokenLayout:
    """Where a network's transformer is and how its tokens lie over the input patch.

    :param attention_modules: the blocks' attention modules, in block order (timm attention: ``fused_attn``,
        ``attn_drop``).
    :param grid: the token grid ``G`` (None: read at run time from ``grid_source``'s output ``[B, C, *G]``).
    :param prefix_tokens: tokens before the grid tokens in every sequence.
    :param grid_source: a module whose output's spatial shape is the grid (Primus' patch embedding).
    """

    attention_modules: List[nn.Module]
    grid: Optional[Tuple[int, ...]] = None
    prefix_tokens: int = 0
    grid_source: Optional[nn.Module] = None

    @property
    def depth(self) -> int:
        return len(self.attention_modules)


def is_recordable_attention(module: nn.Module) -> bool:
    """A timm attention module whose softmax weights pass through ``attn_drop`` when ``fused_attn`` is off."""
    return hasattr(module, "fused_attn") and isinstance(getattr(module, "attn_drop", None), nn.Module)


def token_layout(network: nn.Module) -> Optional[TokenLayout]:
    """The :class:`TokenLayout` of our hybrid networks (a :class:`TokenTransformer` under ``transformer`` with the
    network's ``token_grid``: TransUNet, UNETR, CATS, TransFuse and UNETR with Div-attention) and of nnU-Net's Primus
    (timm EVA blocks under ``eva``, grid from ``down_projection``, register tokens first); None for a network
    without transformer blocks (or with zero blocks)."""
    transformer = getattr(network, "transformer", None)
    if isinstance(transformer, TokenTransformer) and hasattr(network, "token_grid"):
        modules = [block.attn for block in transformer.blocks]
        return TokenLayout(modules, tuple(network.token_grid)) if modules else None
    eva, embedding = getattr(network, "eva", None), getattr(network, "down_projection", None)
    if eva is not None and embedding is not None and hasattr(eva, "blocks"):
        modules = [block.attn for block in eva.blocks if is_recordable_attention(block.attn)]
        registers = getattr(network, "register_tokens", None)
        prefix = 0 if registers is None else int(registers.shape[1])
        return TokenLayout(modules, None, prefix, embedding) if modules else None
    return None


@contextmanager
def recording_attention(layout: TokenLayout, on_attention: Callable[[int, torch.Tensor], None]) -> Iterator[
        Dict[str, Tuple[int, ...]]]:
    """While the block runs, every forward pass of the network calls ``on_attention(block_index, weights)`` with
    each block's softmax weights ``[B, heads, N, N]`` (0-based block index, in block order), the fused kernel off.
    Yields a dict whose ``"grid"`` is the token grid (read from ``layout.grid_source`` at run time if needed)."""
    found = {"grid": layout.grid}
    handles, flags = [], []
    try:
        for index, module in enumerate(layout.attention_modules):
            flags.append((module, module.fused_attn))
            module.fused_attn = False
            handles.append(module.attn_drop.register_forward_hook(
                lambda _, inputs, output, index=index: on_attention(index, inputs[0])))
        if layout.grid is None and layout.grid_source is not None:
            handles.append(layout.grid_source.register_forward_hook(
                lambda _, inputs, output: found.__setitem__("grid", tuple(output.shape[2:]))))
        yield found
    finally:
        for handle in handles:
            handle.remove()
        for module, flag in flags:
            module.fused_attn = flag


def grid_tokens_only(weights: torch.Tensor, prefix_tokens: int) -> torch.Tensor:
    """``[..., N, N]`` -> the grid tokens' block ``[..., G, G]``, rows renormalised to sum to one."""
    if prefix_tokens == 0:
        return weights
    grid = weights[..., prefix_tokens:, prefix_tokens:]
    return grid / grid.sum(dim=-1, keepdim=True).clamp_min(1e-12)


def query_token(position: Sequence[float], patch: Sequence[int], grid: Sequence[int]) -> int:
    """The row-major index of the grid token holding the voxel ``position`` of a patch of size ``patch``."""
    index = 0
    for p, size, cells in zip(position, patch, grid):
        cell = min(int(p * cells // size), cells - 1)
        index = index * cells + max(cell, 0)
    return index


def token_centres_mm(grid: Sequence[int], cell_mm: Sequence[float], device=None) -> torch.Tensor:
    """``[N, ndim]`` centres of the grid tokens in mm (row-major), ``cell_mm`` the token cell's size per axis."""
    axes = [(torch.arange(g, device=device, dtype=torch.float32) + 0.5) * float(c) for g, c in zip(grid, cell_mm)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(grid))


def token_distances_mm(grid: Sequence[int], cell_mm: Sequence[float], device=None) -> torch.Tensor:
    """``[N, N]`` distances in mm between the grid tokens' centres."""
    centres = token_centres_mm(grid, cell_mm, device)
    return torch.cdist(centres, centres)


def mean_attention_distance(weights: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
    """``weights [B, heads, N, N]`` (rows summing to one), ``distances [N, N]`` -> ``[heads]``, the mean over the
    batch and the queries of ``sum_j A[i, j] d(i, j)``."""
    per_query = (weights.float() * distances).sum(dim=-1)  # [B, heads, N]
    return per_query.mean(dim=(0, 2))


def uniform_attention_distance(grid: Sequence[int], cell_mm: Sequence[float]) -> float:
    """The mean attention distance of uniform attention over ``grid``: the mean distance between two tokens."""
    return float(token_distances_mm(grid, cell_mm).mean())


def rollout_row(head_means: Sequence[torch.Tensor], query: int) -> torch.Tensor:
    """The query's row of ``Ã_L ... Ã_1``, ``Ã_b = (head_means[b] + I) / 2``: ``[N]`` (sums to one).

    :param head_means: per block, ``[N, N]`` attention averaged over the heads, in block order.
    """
    size = head_means[0].shape[-1]
    row = torch.zeros(size, dtype=torch.float32, device=head_means[0].device)
    row[query] = 1.0
    for mean in reversed(head_means):
        row = 0.5 * (row @ mean.float() + row)
    return row


def relevance_row(weighted: Sequence[torch.Tensor], query: int) -> torch.Tensor:
    """The query's row of ``R - I`` with ``R = (I + Ā_L) ... (I + Ā_1)`` (Chefer et al.'s update from ``R = I``):
    ``[N]``.

    :param weighted: per block, ``Ā_b = mean_heads((∇A_b ⊙ A_b)^+)`` ``[N, N]``, in block order.
    """
    size = weighted[0].shape[-1]
    row = torch.zeros(size, dtype=torch.float32, device=weighted[0].device)
    row[query] = 1.0
    for block in reversed(weighted):
        row = row + row @ block.float()
    row[query] -= 1.0
    return row


def gradient_weighted_attention(weights: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """``Ā = mean_heads((∇A ⊙ A)^+)`` of one block, ``[B, heads, N, N]`` -> ``[N, N]`` (batch element 0)."""
    return (gradient.float() * weights.float()).clamp_min(0).mean(dim=1)[0]
