"""TransFuse (Zhang et al. 2021, "TransFuse: Fusing Transformers and CNNs for Medical Image Segmentation", Fig. 1;
the seminar in ``../shared/papers/003``) on nnU-Net's plans, in 2D and 3D.

Two branches in parallel on the same input:

* **CNN branch**: nnU-Net's planned encoder cut at the stage of total stride 16 (the authors drop ResNet's last
  block); its three deepest kept stages give ``g^0, g^1, g^2`` (total strides 16, 8, 4 on nnU-Net's usual plans),
  deepest first.
* **Transformer branch**: a ViT on 16-voxel patches (:class:`PatchEmbedding`, :class:`TokenTransformer`), its output
  reshaped to ``t^0`` at 1/16, then "2 upsampling convs": interpolation to ``g^1``'s and ``g^2``'s size, each followed
  by the authors' residual double convolution, giving ``t^1, t^2`` of ``g^1``'s and ``g^2``'s widths.

``f^i = BiFusion(g^i, t^i)`` (:mod:`~nnunet_ext.architectures.building_blocks.bifusion`) at each scale; the
attention-gated decoder (:mod:`~nnunet_ext.architectures.building_blocks.attention_gate`) climbs from ``f^0``
through ``f^1`` to ``f^2``. Three heads (3x3 conv-norm-act, then a 1x1 conv to the classes), each interpolated to
the input size as the authors' ``F.interpolate``:

* the **final** head on the decoder's output at 1/4 (what prediction uses);
* the **transformer** head on ``t^2``;
* the **fused** head on ``f^0``.

``forward(x [B, C_in, *S])`` -> the final logits ``[B, K, *S]``; with ``decoder.deep_supervision`` on (nnU-Net's
toggle) the list ``[final, transformer, fused]``, all ``[B, K, *S]``, which nnU-Net's deep-supervision wrapper
weighs by the trainer's three weights against the full-resolution target three times (the three losses).
"""

import math
from typing import List, Sequence

import torch
from dynamic_network_architectures.building_blocks.simple_conv_blocks import ConvDropoutNormReLU
from torch import nn
from torch.nn import functional as F

from nnunet_ext.architectures.building_blocks.attention_gate import (INTERPOLATION, GatedUpStep, ResidualDoubleConv,
                                                                      upsampled_to)
from nnunet_ext.architectures.building_blocks.bifusion import BiFusion
from nnunet_ext.architectures.building_blocks.encoder_settings import encoder_block_kwargs
from nnunet_ext.architectures.building_blocks.patch_embedding import PatchEmbedding
from nnunet_ext.architectures.building_blocks.token_transformer import (TokenTransformer, grid_to_tokens,
                                                                         tokens_to_grid)

CHANNEL_ATTENTION_REDUCTIONS = (4, 2, 1)  # the authors' r at strides 16, 8, 4


def segmentation_head(conv_op, input_channels: int, hidden_channels: int, num_classes: int,
                      block_kwargs: dict) -> nn.Sequential:
    return nn.Sequential(ConvDropoutNormReLU(conv_op, input_channels, hidden_channels, 3, 1, **block_kwargs),
                         conv_op(hidden_channels, num_classes, kernel_size=1))


def logits_at(logits: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    if tuple(logits.shape[2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=tuple(size), mode=INTERPOLATION[logits.ndim - 2], align_corners=True)


class TransFuseDecoder(nn.Module):
    """BiFusion at the three scales, the gated decoder and the three heads.

    ``forward(cnn [g^0, g^1, g^2], transformer [t^0, t^1, t^2], size)`` -> the logits of the module docstring.

    :param cnn_channels: widths of ``g^0, g^1, g^2`` (deepest first); ``t^1, t^2`` have the same widths.
    :param transformer_width: the width of ``t^0``.
    """

    def __init__(self, conv_op, cnn_channels: Sequence[int], transformer_width: int, num_classes: int,
                 block_kwargs: dict, deep_supervision: bool):
        super().__init__()
        self.deep_supervision = deep_supervision
        transformer_channels = [transformer_width, *cnn_channels[1:]]
        self.fusions = nn.ModuleList(
            BiFusion(conv_op, c, t, c, c, r, block_kwargs)
            for c, t, r in zip(cnn_channels, transformer_channels, CHANNEL_ATTENTION_REDUCTIONS))
        self.up_steps = nn.ModuleList(GatedUpStep(conv_op, cnn_channels[i], cnn_channels[i + 1], cnn_channels[i + 1],
                                                  block_kwargs) for i in range(2))
        head_width = cnn_channels[-1]
        self.final_head = segmentation_head(conv_op, cnn_channels[-1], head_width, num_classes, block_kwargs)
        self.transformer_head = segmentation_head(conv_op, cnn_channels[-1], head_width, num_classes, block_kwargs)
        self.fused_head = segmentation_head(conv_op, cnn_channels[0], head_width, num_classes, block_kwargs)

    def forward(self, cnn: List[torch.Tensor], transformer: List[torch.Tensor], size: Sequence[int]):
        fused = [fusion(g, t) for fusion, g, t in zip(self.fusions, cnn, transformer)]
        decoded = fused[0]
        for step, skip in zip(self.up_steps, fused[1:]):
            decoded = step(decoded, skip)
        final = logits_at(self.final_head(decoded), size)
        if not self.deep_supervision:
            return final
        return [final, logits_at(self.transformer_head(transformer[-1]), size),
                logits_at(self.fused_head(fused[0]), size)]


class TransFuse(nn.Module):
    """The module docstring's network.

    :param encoder: the planned encoder cut at total stride 16 (``return_skips=True``, at least 3 stages).
    :param token_grid: ``S / token_size`` per axis for the plans' patch.
    """

    def __init__(self, encoder: nn.Module, input_channels: int, num_classes: int, token_grid: Sequence[int],
                 token_size: Sequence[int], width: int, depth: int, heads: int, mlp_ratio: float = 4.0,
                 deep_supervision: bool = False):
        super().__init__()
        if len(encoder.output_channels) < 3:
            raise ValueError(f"TransFuse fuses three CNN scales; the encoder has {len(encoder.output_channels)} "
                             f"stages")
        self.encoder = encoder
        self.token_grid = tuple(int(g) for g in token_grid)
        block_kwargs = encoder_block_kwargs(encoder)
        cnn_channels = list(encoder.output_channels[-3:])[::-1]
        self.embedding = PatchEmbedding(encoder.conv_op, input_channels, width, token_size)
        self.transformer = TokenTransformer(math.prod(self.token_grid), width, depth, heads, mlp_ratio)
        self.transformer_up = nn.ModuleList([
            ResidualDoubleConv(encoder.conv_op, width, cnn_channels[1], block_kwargs),
            ResidualDoubleConv(encoder.conv_op, cnn_channels[1], cnn_channels[2], block_kwargs)])
        self.decoder = TransFuseDecoder(encoder.conv_op, cnn_channels, width, num_classes, block_kwargs,
                                        deep_supervision)

    def transformer_features(self, x: torch.Tensor, cnn: List[torch.Tensor]) -> List[torch.Tensor]:
        """``[t^0, t^1, t^2]`` at the sizes of ``cnn`` ``[g^0, g^1, g^2]``."""
        tokens, _ = self.transformer(grid_to_tokens(self.embedding(x)))
        t0 = tokens_to_grid(tokens, self.token_grid)
        if t0.shape[2:] != cnn[0].shape[2:]:  # plans whose deepest kept stage is not at stride 16 on every axis
            t0 = upsampled_to(t0, cnn[0])
        t1 = self.transformer_up[0](upsampled_to(t0, cnn[1]))
        t2 = self.transformer_up[1](upsampled_to(t1, cnn[2]))
        return [t0, t1, t2]

    def forward(self, x: torch.Tensor):
        cnn = self.encoder(x)[-3:][::-1]
        return self.decoder(cnn, self.transformer_features(x, cnn), x.shape[2:])
