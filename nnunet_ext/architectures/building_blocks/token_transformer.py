"""A stack of ViT blocks over the tokens of a feature grid, with a learned positional embedding (ViT, Dosovitskiy et
al. 2021, Eq. 1-4; TransUNet and UNETR use it as their transformer encoder).

The blocks are timm's pre-norm ``Block`` (multi-head self-attention and an MLP, each behind a LayerNorm and a
residual): training runs timm's fused ``scaled_dot_product_attention``; :meth:`TokenTransformer.attention_maps`
computes the softmax attention of every block from the same weights on request (the attention-map issue), without
switching the fused kernel off.

Shapes: a grid ``[B, C, *S]`` (2D or 3D) becomes tokens ``[B, N, C]`` with ``N = prod(S)`` in row-major order of
``S`` (:func:`grid_to_tokens`), and back (:func:`tokens_to_grid`).
"""

from typing import List, Sequence, Tuple

import torch
from timm.models.vision_transformer import Block
from torch import nn


def grid_to_tokens(grid: torch.Tensor) -> torch.Tensor:
    """``[B, C, *S]`` -> ``[B, prod(S), C]``."""
    return grid.flatten(2).transpose(1, 2)


def tokens_to_grid(tokens: torch.Tensor, grid_shape: Sequence[int]) -> torch.Tensor:
    """``[B, N, C]`` -> ``[B, C, *grid_shape]`` (``N == prod(grid_shape)``), the inverse of :func:`grid_to_tokens`."""
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *grid_shape)


def block_attention(block: Block, tokens: torch.Tensor) -> torch.Tensor:
    """The attention probabilities ``softmax(q k^T / sqrt(d))`` of ``block`` for its input ``tokens`` ``[B, N, D]``:
    ``[B, heads, N, N]``, each row summing to 1 (what the fused kernel computes internally)."""
    attention = block.attn
    batch, count, width = tokens.shape
    qkv = attention.qkv(block.norm1(tokens)).reshape(batch, count, 3, attention.num_heads, attention.head_dim)
    q, k, _ = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    q, k = attention.q_norm(q), attention.k_norm(k)
    return ((q * attention.scale) @ k.transpose(-2, -1)).softmax(dim=-1)


class TokenTransformer(nn.Module):
    """``depth`` ViT blocks of ``width`` channels and ``heads`` heads over ``num_tokens`` tokens, after adding a learned
    positional embedding ``[1, num_tokens, width]`` (truncated normal, std 0.02, as ViT), with a final LayerNorm.
    ``depth = 0`` keeps the positional embedding and no block (the ablation of the blocks; the norm is then the
    identity).

    ``forward(tokens [B, N, width], hidden_after=())`` -> ``(tokens [B, N, width], [hidden state after each block
    index in hidden_after (1-based, before the final norm)])``.
    """

    def __init__(self, num_tokens: int, width: int, depth: int, heads: int, mlp_ratio: float = 4.0,
                 dropout: float = 0.0, attention_dropout: float = 0.0):
        super().__init__()
        if depth and width % heads:
            raise ValueError(f"the transformer's width {width} is not divisible by its {heads} heads")
        self.num_tokens, self.width, self.depth = num_tokens, width, depth
        self.position = nn.Parameter(torch.zeros(1, num_tokens, width))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio, qkv_bias=True, proj_drop=dropout,
                                          attn_drop=attention_dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(width) if depth else nn.Identity()

    def forward(self, tokens: torch.Tensor, hidden_after: Sequence[int] = ()) -> Tuple[torch.Tensor,
                                                                                       List[torch.Tensor]]:
        x = self.dropout(tokens + self.position)
        hidden = []
        for index, block in enumerate(self.blocks, start=1):
            x = block(x)
            if index in hidden_after:
                hidden.append(x)
        return self.norm(x), hidden

    @torch.no_grad()
    def attention_maps(self, tokens: torch.Tensor) -> List[torch.Tensor]:
        """``[B, heads, N, N]`` attention probabilities of every block for the input ``tokens`` ``[B, N, width]``
        (eval mode: no dropout), computed from the blocks' weights."""
        x = tokens + self.position
        maps = []
        for block in self.blocks:
            maps.append(block_attention(block, x))
            x = block(x)
        return maps

    def extra_repr(self) -> str:
        return f"num_tokens={self.num_tokens}, width={self.width}, depth={self.depth}"


def evenly_spaced_blocks(depth: int, count: int) -> Tuple[int, ...]:
    """``count`` block indices (1-based) spread evenly over ``depth`` blocks, the last one included: UNETR's
    ``(3, 6, 9, 12)`` for 12 blocks and 4 skips, ``(1, 2, 3)`` for 3 blocks and 3 skips. With fewer blocks than
    skips some blocks are repeated (``(1, 1, 2, 2)`` for 2 blocks and 4 skips); ``depth = 0`` gives ``()``."""
    if depth == 0:
        return ()
    return tuple(max(1, round(depth * (i + 1) / count)) for i in range(count))




def initialize_like_vit(module: nn.Module) -> None:
    """ViT's initialisation for ``module.apply``: linear weights truncated normal (std 0.02) and zero biases,
    LayerNorms at weight 1 and bias 0."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
