"""UNETR with Div-attention at its decoder junctions: the Div-attention paper's best configuration ("UNETR" with the
module: MSD-Spleen Dice 0.9032 -> 0.9194; Jiang et al., Table on UNETR and 3D ESPNet).

UNETR's decoder (:class:`~nnunet_ext.architectures.unetr.UNETR`) has four stages, at 1/8, 1/4, 1/2 and full
resolution (16-voxel tokens). Each stage gets a 1x1 head (the full-resolution one is UNETR's own
``segmentation_head``), giving the path logits ``P_0`` (1/8) ... ``P_3`` (full); a chain of
:class:`~nnunet_ext.architectures.building_blocks.div_attention_junction.DivAttentionJunction` refines them from the
lowest path upward, as on nnU-Net's U-Net (``R_0 = P_0``, ``R_s = junction_s(P_s, R_{s-1}, image)``, upsampling
stride 2, 3x3(x3) kernels)::

    decoder.deep_supervision on:  [R_3, R_2, R_1, R_0]   (full resolution first, targets at 1, 1/2, 1/4, 1/8)
    decoder.deep_supervision off: R_3

"Intermediate supervision on every path but the lowest" (the paper) is nnU-Net's deep supervision with its last
weight 0; the trainer gives nnU-Net these four target scales. ``decoder`` is a module holding nnU-Net's
``deep_supervision`` flag only (UNETR has no planned decoder); the state dict is the same whatever the flag.
"""

from typing import Optional, Sequence

import torch
from torch import nn

from nnunet_ext.architectures.building_blocks.div_attention_junction import DivAttentionJunction, refine_paths
from nnunet_ext.architectures.div_attention_unet import default_fusion_channels
from nnunet_ext.architectures.unetr import SKIP_WIDTHS, UNETR


class DeepSupervisionFlag(nn.Module):
    """Where nnU-Net's ``set_deep_supervision_enabled`` sets ``decoder.deep_supervision``; no parameters."""

    def __init__(self, deep_supervision: bool):
        super().__init__()
        self.deep_supervision = deep_supervision

    def extra_repr(self) -> str:
        return f"deep_supervision={self.deep_supervision}"


class DivAttentionUNETR(UNETR):
    """UNETR's arguments, and the Div-attention options of :class:`DivAttentionJunction` (module docstring).

    ``forward(x [B, C_in, *S])`` -> ``[B, K, *S]``, or with ``decoder.deep_supervision`` the four refined paths."""

    def __init__(self, conv_op, input_channels: int, num_classes: int, token_grid: Sequence[int],
                 token_size: Sequence[int], width: int, depth: int, heads: int, mlp_ratio: float = 4.0,
                 feature_size: int = 16, block_kwargs: dict = None, deep_supervision: bool = False,
                 fusion_channels: Optional[int] = None, attention: str = "divergence", masks: str = "sigmoid",
                 residual: bool = True):
        super().__init__(conv_op, input_channels, num_classes, token_grid, token_size, width, depth, heads, mlp_ratio,
                         feature_size, block_kwargs)
        block_kwargs = dict(block_kwargs or {})
        block_kwargs.setdefault("conv_bias", True)
        self.decoder = DeepSupervisionFlag(deep_supervision)
        path_widths = [m * feature_size for m in reversed(SKIP_WIDTHS)]  # 8f at 1/8, 4f at 1/4, 2f at 1/2
        self.path_heads = nn.ModuleList(conv_op(w, num_classes, kernel_size=1) for w in path_widths)
        ndim = len(self.token_size)
        fusion_channels = default_fusion_channels(num_classes) if fusion_channels is None else fusion_channels
        self.div_attention = nn.ModuleList(
            DivAttentionJunction(conv_op, num_classes, input_channels, upsample_stride=(2,) * ndim,
                                 kernel_size=(3,) * ndim, fusion_channels=fusion_channels, attention=attention,
                                 masks=masks, residual=residual, **block_kwargs)
            for _ in range(3))

    def path_logits(self, x: torch.Tensor) -> list:
        """``[P_0 (1/8), ..., P_3 (full resolution)]``, the 1x1 heads on UNETR's four decoder stages."""
        heads = [*self.path_heads, self.segmentation_head]
        return [head(f) for head, f in zip(heads, self.decoder_features(x))]

    def forward(self, x: torch.Tensor):
        refined, _ = refine_paths(self.div_attention, self.path_logits(x), x)
        return refined if self.decoder.deep_supervision else refined[0]

    def forward_with_attention(self, x: torch.Tensor):
        """What ``forward`` returns, and each junction's map ``attn`` ``(B, K, *path_size)``, lowest first."""
        refined, attention = refine_paths(self.div_attention, self.path_logits(x), x, return_attention=True)
        return (refined if self.decoder.deep_supervision else refined[0]), attention
