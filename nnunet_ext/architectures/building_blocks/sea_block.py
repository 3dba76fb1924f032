"""The SeA-block of SeATrans (sec. 2.2, Fig. 1 c): a transformer encoder-decoder on token sequences that instils
segmentation features into diagnosis features.

- Encoder (eq. 1): ``MHA(q, k, v) = MHA(f_m + E_m, f_d + E_d, f_d)``: segmentation tokens ask, diagnosis tokens
  answer; LayerNorm with residual before and after an MLP gives the diagnosis embedding ``f_md``.
- Decoder (eq. 2): ``MHA(q, k, v) = MHA(f_d + E_d, f_md + E_md, f_md)`` maps ``f_md`` back to diagnosis space, then
  a self-attention block refines it. The output ``f̂_d`` has the shape of ``f_d``.

Readings where the paper leaves a choice (all post-norm, as "LayerNorm with residual connection ... before and after
the MLP" says; with the two or three attention layers a SeA-block has, post-norm trains stably):

- the residual around each attention adds that attention's *un-encoded* query (``f_m`` in eq. 1, ``f_d`` in eq. 2),
  as in DETR (the paper's ref. [5] for the positional encodings);
- the decoder's cross-attention is followed by residual + LayerNorm; its MLP is the one of the self-attention block;
- the self-attention block uses ``q = k = y + E_d`` (its tokens live on the diagnosis token grid) and ``v = y``;
- a missing positional encoding counts as zero.

An optional spatial prior on the decoder's cross-attention (SMCA, :mod:`spatial_prior`): ``decoder_prior`` maps the
decoder's queries ``f_d + E_d`` ``[B, N_d, D]`` to ``log G`` ``[B, heads, N_d, N_m]``, added to eq. 2's logits before
the softmax.
"""

from typing import Callable, Dict, Optional, Tuple, Union

import torch
from torch import nn


def token_mlp(embed_dim: int, mlp_ratio: float) -> nn.Sequential:
    """``[B, N, D]`` -> ``[B, N, D]``: Linear -> GELU -> Linear with ``mlp_ratio * D`` hidden units."""
    hidden = max(1, int(round(embed_dim * mlp_ratio)))
    return nn.Sequential(nn.Linear(embed_dim, hidden), nn.GELU(), nn.Linear(hidden, embed_dim))


def with_position(tokens: torch.Tensor, position: Optional[torch.Tensor]) -> torch.Tensor:
    """``tokens [B, N, D] + position [1 or B, N, D]``; ``position=None`` leaves the tokens as they are."""
    return tokens if position is None else tokens + position


class SeABlock(nn.Module):
    """Segmentation-assisted attention block (eq. 1 and 2).

    ``forward(segmentation_tokens [B, N_m, D], diagnosis_tokens [B, N_d, D])`` -> vitalised diagnosis tokens
    ``[B, N_d, D]`` (``N_m = N_d`` when both come from the same token grid, as in SeATrans).

    With ``return_attention=True`` it also returns the softmax attention weights of its three attentions, each
    ``[B, num_heads, N_query, N_key]`` and summing to one over the keys:
    ``"encoder"`` ``[B, h, N_m, N_d]`` (eq. 1), ``"decoder"`` ``[B, h, N_d, N_m]`` (eq. 2) and
    ``"self"`` ``[B, h, N_d, N_d]``. Attention costs ``B * num_heads * N_query * N_key`` floats per attention.
    """

    def __init__(self, embed_dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.encoder_attention = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)
        self.encoder_attention_norm = nn.LayerNorm(embed_dim)
        self.encoder_mlp = token_mlp(embed_dim, mlp_ratio)
        self.encoder_mlp_norm = nn.LayerNorm(embed_dim)

        self.decoder_attention = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)
        self.decoder_attention_norm = nn.LayerNorm(embed_dim)

        self.self_attention = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)
        self.self_attention_norm = nn.LayerNorm(embed_dim)
        self.self_mlp = token_mlp(embed_dim, mlp_ratio)
        self.self_mlp_norm = nn.LayerNorm(embed_dim)

    def forward(self, segmentation_tokens: torch.Tensor, diagnosis_tokens: torch.Tensor,
                segmentation_position: Optional[torch.Tensor] = None,
                diagnosis_position: Optional[torch.Tensor] = None,
                embedding_position: Optional[torch.Tensor] = None,
                return_attention: bool = False,
                decoder_prior: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
                ) -> Union[torch.Tensor, Tuple[torch.Tensor, Dict[str, torch.Tensor]]]:
        """
        :param segmentation_tokens: ``f_m`` ``[B, N_m, D]``.
        :param diagnosis_tokens: ``f_d`` ``[B, N_d, D]``.
        :param segmentation_position: ``E_m`` ``[1 or B, N_m, D]``.
        :param diagnosis_position: ``E_d`` ``[1 or B, N_d, D]``.
        :param embedding_position: ``E_md`` ``[1 or B, N_m, D]`` (``f_md`` lies on the segmentation token grid).
        :param return_attention: also return ``{"encoder", "decoder", "self"}`` attention weights.
        :param decoder_prior: queries ``[B, N_d, D]`` -> ``log G`` ``[B, heads, N_d, N_m]`` added to eq. 2's logits
            (SMCA); None: no prior.
        :return: ``f̂_d`` ``[B, N_d, D]`` (and the attention weights).
        """
        def attend(attention: nn.MultiheadAttention, query, key, value, logit_bias=None):
            # in float32 under any autocast: the attention's softmax and its dot products, which CUDA autocast
            # would otherwise run in float16 (tokens <= max_tokens, so the cost is small)
            with torch.autocast(query.device.type, enabled=False):
                mask = None if logit_bias is None else logit_bias.float().flatten(0, 1)  # [B * heads, N_q, N_k]
                return attention(query.float(), key.float(), value.float(), need_weights=return_attention,
                                 attn_mask=mask, average_attn_weights=False)

        f_m, f_d = segmentation_tokens, diagnosis_tokens
        d_keyed = with_position(f_d, diagnosis_position)

        # encoder, eq. 1: MHA(f_m + E_m, f_d + E_d, f_d)
        attended, encoder_weights = attend(self.encoder_attention, with_position(f_m, segmentation_position),
                                           d_keyed, f_d)
        x = self.encoder_attention_norm(f_m + attended)
        f_md = self.encoder_mlp_norm(x + self.encoder_mlp(x))

        # decoder, eq. 2: MHA(f_d + E_d, f_md + E_md, f_md), with SMCA's log G on its logits if given
        attended, decoder_weights = attend(self.decoder_attention, d_keyed,
                                           with_position(f_md, embedding_position), f_md,
                                           None if decoder_prior is None else decoder_prior(d_keyed))
        y = self.decoder_attention_norm(f_d + attended)

        # self-attention block refining the decoded diagnosis tokens
        y_keyed = with_position(y, diagnosis_position)
        attended, self_weights = attend(self.self_attention, y_keyed, y_keyed, y)
        y = self.self_attention_norm(y + attended)
        vitalised = self.self_mlp_norm(y + self.self_mlp(y))

        if not return_attention:
            return vitalised
        return vitalised, {"encoder": encoder_weights, "decoder": decoder_weights, "self": self_weights}
