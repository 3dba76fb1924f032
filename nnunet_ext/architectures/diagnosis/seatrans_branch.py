"""SeATrans's diagnosis branch (sec. 2, Fig. 1): a diagnosis CNN whose feature maps are vitalised, at chosen
stages, by SeA-blocks (eq. 1 and 2) that attend to the segmentation network's features, with the asymmetric
multi-scale interaction of sec. 2.1.

The interaction (sec. 2.1, Fig. 1 b)
------------------------------------
At diagnosis stage ``i`` (feature ``f_d^i [B, F_i, *S_i]``):

- coarse interaction: a SeA-block between ``f_d^i`` and the same-scale segmentation feature ``f_m^i``;
- fine-grained interaction: the lower-resolution segmentation features ``[f_m^j]_{j=i+1}^{N}`` are rearranged by
  pixel/voxel shuffle to ``S_i`` (:func:`voxel_shuffle`), concatenated, and meet ``f_d^i`` in a second SeA-block;
- the coarse and fine-grained results are fused by a 1x1 convolution back to ``F_i`` channels; that output *is* the
  vitalised feature ("integrated by 1x1 convolution kernel to obtain the final vitalized diagnosis feature"), and the
  encoder's next stages continue from it. ``residual=True`` adds ``f_d^i`` to it instead (an option, not the
  paper's form; docs/decisions.md, "SeATrans: placement, decoder features, residual").

Where the interactions sit (sec. 2.1, 3.2): :func:`default_interaction_stages`
-------------------------------------------------------------------------------
"The second and third layers of the diagnosis model will interact with the multi-scale features in UNet decoder",
the diagnosis model being a ResNet-50 on 256x256 inputs: its second and third layers work at total strides 8 and 16
(32x32 and 16x16), and one layer (stride 32) follows them. On nnU-Net's plans the rule is, with ``N`` stages and
``t_k`` the total stride of stage ``k`` on its most-downsampled axis (the largest per-axis product of the strides of
stages ``0..k``; the in-plane axes of an anisotropic plan, which play the role of the paper's image axes):

- two stages ``a < b <= N - 2``, so that at least one diagnosis stage runs after the last interaction (ResNet's
  fourth layer) and the first interaction's fine path holds at least two deeper segmentation features
  (``j = a+1 .. N-1``, at least ``a+1`` and ``a+2``);
- among those, the pair closest to the paper's strides: minimal ``|log2 t_a - log2 8| + |log2 t_b - log2 16|``,
  ties broken towards the finer stages (the paper puts the interaction in the "first few layers");
- shallow plans fall back by the same rule: 5 stages give ``(2, 3)``, 4 give ``(1, 2)``, 3 give ``(0, 1)``; 2
  stages allow one interaction only, ``(0,)`` (its fine path is the bottleneck alone, the other stage follows); a
  one-stage encoder has no valid placement (:class:`ValueError`).

On nnU-Net's plans (``nnUNetPlans``' features; ``max_tokens = 256``; tokens from :func:`pooled_token_grid`;
"fine" is the first interaction's fine path, segmentation stage: channels after the shuffle):

- 2D 512x512, strides ``[1] + [2] * 7`` (8 stages): ``(3, 4)`` at strides 8 and 16; 64x64 -> 16x16 tokens and
  32x32 -> 16x16; fine: stages 4-7, 512/4 + 512/16 + 512/64 + 512/256 = 128 + 32 + 8 + 2 = 170 channels.
- 2D 256x256, the paper's size (7 stages): ``(3, 4)``, 32x32 -> 16x16 and 16x16 (256 tokens, kept): the paper's
  own layer-2 and layer-3 sizes; fine: stages 4-6, 128 + 32 + 8 = 168 channels.
- 2D 80x80, the BraTS slices at 3 mm (nnU-Net's topology for 80x80), strides ``[1] + [2] * 4`` (5 stages):
  ``(2, 3)`` at strides 4 and 8; 20x20 -> 10x20 tokens and 10x10 (kept); fine: stages 3-4, 256/4 + 512/16 = 96 channels.
- 3D 128^3, strides ``[1] + [2] * 5`` (6 stages): ``(3, 4)`` at strides 8 and 16; 16^3 -> 4x8x8 tokens and
  8^3 -> 4x8x8; fine: stages 4-5, 320/8 + 320/64 = 40 + 5 = 45 channels.
- 3D 32x192x192 at 5 x 0.8 x 0.8 mm, strides ``[1,1,1], [1,2,2] x 2, [2,2,2] x 3`` (6 stages): ``(3, 4)`` at
  in-plane strides 8 and 16; 16x24x24 -> 4x6x6 tokens and 8x12x12 -> 4x6x6; fine: stages 4-5, 40 + 5 channels.
- 3D 20x320x256 (prostate-like), strides ``[1,1,1], [1,2,2] x 2, [2,2,2] x 2, [1,2,2] x 2`` (7 stages):
  ``(3, 4)``; 10x40x32 -> 5x5x8 tokens and 5x20x16 -> 5x5x8; fine: stages 4-6 with shuffle blocks 2x2x2, 2x4x4,
  2x8x8: 320/8 + 320/32 + ceil(320/128) = 40 + 10 + 3 = 53 channels.
- The 4-stage plans of the synthetic and BraTS volumes (e.g. ``[1] + [2] * 3``): ``(1, 2)``, strides 2 and 4.

(A fine-path source's shuffle block is the product of its per-axis factors; channels not divisible by it are
first mapped to the next multiple, hence the ceiling.) The old placement, the last two stages, stays available as
``interaction_stages=(-2, -1)``; any explicit stage list is used as given.

Segmentation features
---------------------
``segmentation_features`` is a list with one map per segmentation-encoder scale, highest resolution first, the last
one at the bottleneck's scale: either the segmentation encoder's skips (the branch interface's default) or the
decoder's stage outputs at the same scales (the paper's "multi-scale features in UNet decoder",
:func:`~nnunet_ext.architectures.diagnosis.decoder_features.decoder_output_and_features`), which have the same
shapes and channel counts, so the branch takes either.

Readings and adaptations (see also :mod:`sea_block`):

- at the deepest stage no lower-resolution segmentation feature exists, so only the coarse interaction runs there
  (the default placement never interacts there);
- a lower-resolution feature whose channels are not divisible by its shuffle block ``prod(r)`` (per-axis ``r``, as
  nnU-Net strides can be anisotropic) is first mapped by a 1x1 convolution to the next multiple of ``prod(r)``;
- features become tokens by a 1x1 convolution to ``embed_dim`` and flattening (one token per voxel, "patches" of
  size one, so the token grid is the feature grid);
- the positional encodings ``E_m, E_d, E_md`` are learnable, one set per SeA-block, sized from the plans' patch size;
  another input size gets them interpolated (linear).

SMCA's spatial prior (``spatial_prior``, the attention-map issue)
----------------------------------------------------------------
``spatial_prior="smca"`` adds SMCA's ``log G`` (:mod:`~nnunet_ext.architectures.building_blocks.spatial_prior`) to the
logits of every SeA-block's decoder (eq. 2), where the diagnosis tokens are the queries and the embedding ``f_md``,
on the segmentation grid, holds the positions they look at (as DETR's object queries look at image positions): per
diagnosis token and head a predicted centre and scale. ``"smca_lesion"`` starts every centre and scale at the
centroid and spread of the segmentation's lesion probabilities (background excluded for softmax plans) on the
SeA-block's token grid. Either also replaces the 1x1 fusion of the coarse and fine paths by SMCA's scale-attention
(``alpha = softmax(FC(O_q))``, ``C = sum_j alpha_j C_j``): per position of ``f_d^i`` (the queries), a 1x1 convolution
``F_i -> 2`` and a softmax over the two paths weigh their ``D``-channel outputs, whose sum a 1x1 convolution
``D -> F_i`` brings back to the stage's channels (the channel projection that the fusion did on the concatenation).
With ``"none"`` (SeATrans, the default) the branch is unchanged.

Token grid and memory (2D and 3D alike)
---------------------------------------
Stage ``i`` gives ``N = prod(S_i)`` tokens and each attention stores ``B * num_heads * N^2`` floats, so whenever
``N > max_tokens`` the stage's maps are average-pooled (adaptive pooling matching ``conv_op``) to a coarser token
grid, the longest axis halved first (:func:`pooled_token_grid`), and the SeA-block output is upsampled back (linear
interpolation). This applies to 2D plans as well as 3D ones: a 512x512 2D plan's stage 3 (64x64, 4,096 tokens) is
attended at 16x16. The figures are in docs/decisions.md, "SeATrans: token grids".
"""

import math
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as F

from dynamic_network_architectures.building_blocks.helper import convert_conv_op_to_dim, get_matching_pool_op

from nnunet_ext.architectures.building_blocks.diagnosis_encoder import build_diagnosis_encoder
from nnunet_ext.architectures.building_blocks.encoder_settings import stage_sizes
from nnunet_ext.architectures.building_blocks.sea_block import SeABlock
from nnunet_ext.architectures.building_blocks.spatial_prior import GaussianSpatialPrior
from nnunet_ext.architectures.building_blocks.voxel_shuffle import voxel_shuffle
from nnunet_ext.architectures.diagnosis.diagnosis_branch import DiagnosisBranch, PooledClassifier

LINEAR_INTERPOLATION = {1: "linear", 2: "bilinear", 3: "trilinear"}
# functional, so that forward constructs no module (a module built in forward sets attributes torch.compile guards)
ADAPTIVE_AVERAGE = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}
# total strides of ResNet-50's second and third layers, the paper's interaction layers (sec. 2.1, 3.2)
PAPER_INTERACTION_STRIDES = (8, 16)
# spatial_prior option -> where the SMCA prior's centres start (None: no prior, SeATrans as published)
SPATIAL_PRIORS = {"none": None, "smca": "query", "smca_lesion": "lesion"}


def total_strides(strides: Sequence[Union[int, Sequence[int]]]) -> List[int]:
    """Per encoder stage, its total stride on the most-downsampled axis: ``max_axis prod_{k<=i} strides[k][axis]``.

    :param strides: the encoder's per-stage strides, an int or one int per axis each (``encoder.strides``).
    :return: ``N`` ints, non-decreasing, e.g. ``[1, 2, 4, 8, 16, 32]`` for ``[[1, 1, 1], [1, 2, 2], [1, 2, 2],
        [2, 2, 2], [2, 2, 2], [2, 2, 2]]``.
    """
    per_stage = [[int(stride)] if isinstance(stride, int) else [int(s) for s in stride] for stride in strides]
    axes = max((len(stride) for stride in per_stage), default=1)
    cumulative, totals = [1] * axes, []
    for stride in per_stage:
        stride = stride * axes if len(stride) == 1 else stride
        cumulative = [c * s for c, s in zip(cumulative, stride)]
        totals.append(max(cumulative))
    return totals


def default_interaction_stages(strides: Sequence[Union[int, Sequence[int]]],
                               target_strides: Sequence[int] = PAPER_INTERACTION_STRIDES) -> Tuple[int, ...]:
    """The paper's placement of the two interactions on an nnU-Net encoder (the rule and what it gives on nnU-Net's
    plans: module docstring, "Where the interactions sit").

    :param strides: the (diagnosis = segmentation) encoder's per-stage strides, ``encoder.strides``.
    :param target_strides: the total strides to approach, ResNet-50's second and third layers' ``(8, 16)``.
    :return: ``(a, b)`` with ``0 <= a < b <= N - 2`` closest to ``target_strides`` (sum of the log2 distances of
        :func:`total_strides`, ties to the finer stages); ``(0,)`` for a two-stage encoder.
    :raises ValueError: for an encoder of fewer than two stages, where no stage can follow an interaction.
    """
    totals = total_strides(strides)
    num_stages = len(totals)
    if num_stages < 2:
        raise ValueError(f"SeATrans needs a diagnosis stage after each interaction; an encoder of {num_stages} "
                         f"stage(s) (strides {list(strides)}) has no valid placement. Use plans with at least two "
                         f"stages or pass interaction_stages explicitly.")
    if num_stages == 2:
        return (0,)
    first_target, second_target = (math.log2(t) for t in target_strides)

    def distance(stage: int, target: float) -> float:
        return abs(math.log2(totals[stage]) - target)

    pairs = [(a, b) for b in range(1, num_stages - 1) for a in range(b)]
    return min(pairs, key=lambda pair: (distance(pair[0], first_target) + distance(pair[1], second_target), pair))


def pooled_token_grid(size: Sequence[int], max_tokens: int) -> List[int]:
    """The token grid for a feature map of spatial ``size`` (2D or 3D): ``size`` itself if
    ``prod(size) <= max_tokens``, else ``size`` with its longest axis halved (rounding up) again and again until
    ``prod <= max_tokens``; e.g. ``[64, 64] -> [16, 16]``, ``[16, 16, 16] -> [4, 8, 8]`` for 256."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be positive, got {max_tokens}")
    grid = [int(s) for s in size]
    while math.prod(grid) > max_tokens:  # math, not numpy: torch.compile traces numpy calls as tensor ops
        longest = grid.index(max(grid))
        grid[longest] = (grid[longest] + 1) // 2
    return grid


def match_spatial_size(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``[B, C, *S']`` -> ``[B, C, *size]``: crop the far end of each axis, or zero-pad it. A shuffled feature map
    is larger than its target only when the input size is not divisible by the strides (strided convolutions round
    up); its voxels stay aligned with the target's at the origin."""
    x = x[(slice(None), slice(None), *[slice(0, s) for s in size])]
    padding = []
    for current, target in zip(reversed(x.shape[2:]), reversed(list(size))):
        padding += [0, target - current]
    return F.pad(x, padding) if any(padding) else x


class InteractionAttention(NamedTuple):
    """What one SeA-block attended to: its token grid (``N = prod(token_grid)``, tokens in row-major order) and the
    weights ``{"encoder", "decoder", "self"}``, each ``[B, num_heads, N, N]`` (see :class:`SeABlock`)."""
    token_grid: Tuple[int, ...]
    weights: Dict[str, torch.Tensor]


class SeAInteraction(nn.Module):
    """One SeA-block between two feature maps of the same scale:
    ``diagnosis [B, F_d, *S]``, ``segmentation [B, F_m, *S]`` -> vitalised diagnosis embedding ``[B, D, *S]``.

    Both maps are average-pooled to :func:`pooled_token_grid` ``(S, max_tokens)`` if needed (2D and 3D), projected
    to ``D`` tokens by 1x1 convolutions (pooling first is equivalent, both being linear, and cheaper), flattened,
    passed through the :class:`SeABlock` with positional encodings, reshaped and upsampled back to ``S``.

    :param prior_centres: ``None`` (no prior), or where SMCA's prior on the decoder's logits starts its centres
        (``"query"`` or ``"lesion"``, :class:`GaussianSpatialPrior`); ``"lesion"`` reads ``forward``'s
        ``lesion_map`` ``[B, 1, *S_image]``, pooled to the token grid.
    """

    def __init__(self, conv_op, diagnosis_channels: int, segmentation_channels: int, embed_dim: int,
                 num_heads: int, mlp_ratio: float, planned_size: Sequence[int], max_tokens: int,
                 prior_centres: Optional[str] = None):
        super().__init__()
        self.max_tokens = max_tokens
        self.pool_op = get_matching_pool_op(conv_op, adaptive=True, pool_type="avg")
        self.diagnosis_projection = conv_op(diagnosis_channels, embed_dim, kernel_size=1)
        self.segmentation_projection = conv_op(segmentation_channels, embed_dim, kernel_size=1)
        self.sea_block = SeABlock(embed_dim, num_heads, mlp_ratio)
        grid = pooled_token_grid(planned_size, max_tokens)
        self.segmentation_position = nn.Parameter(torch.zeros(1, embed_dim, *grid))
        self.diagnosis_position = nn.Parameter(torch.zeros(1, embed_dim, *grid))
        self.embedding_position = nn.Parameter(torch.zeros(1, embed_dim, *grid))
        for position in (self.segmentation_position, self.diagnosis_position, self.embedding_position):
            nn.init.trunc_normal_(position, std=0.02)
        self.spatial_prior = (None if prior_centres is None else
                              GaussianSpatialPrior(embed_dim, num_heads, len(planned_size), prior_centres))

    def _to_grid(self, features: torch.Tensor, grid: List[int]) -> torch.Tensor:
        return features if list(features.shape[2:]) == grid else self.pool_op(grid)(features)

    @staticmethod
    def _position_tokens(position: nn.Parameter, grid: List[int]) -> torch.Tensor:
        """``[1, D, *G_planned]`` -> ``[1, N, D]`` on ``grid`` (interpolated if the grids differ)."""
        if list(position.shape[2:]) != grid:
            position = F.interpolate(position, size=grid, mode=LINEAR_INTERPOLATION[len(grid)], align_corners=False)
        return position.flatten(2).transpose(1, 2)

    def decoder_prior(self, grid: List[int], lesion_map: Optional[torch.Tensor]):
        """The SeA-block's ``decoder_prior`` (queries -> ``log G`` over ``grid``), None without a prior."""
        if self.spatial_prior is None:
            return None
        pooled = None if lesion_map is None else ADAPTIVE_AVERAGE[len(grid)](lesion_map.float(), grid)[:, 0]
        return lambda queries: self.spatial_prior(queries, grid, pooled)

    def forward(self, diagnosis_features: torch.Tensor, segmentation_features: torch.Tensor,
                return_attention: bool = False, lesion_map: Optional[torch.Tensor] = None
                ) -> Union[torch.Tensor, Tuple[torch.Tensor, InteractionAttention]]:
        size = list(diagnosis_features.shape[2:])
        if list(segmentation_features.shape[2:]) != size:
            raise ValueError(f"segmentation features of size {list(segmentation_features.shape[2:])} cannot meet "
                             f"diagnosis features of size {size}")
        grid = pooled_token_grid(size, self.max_tokens)
        diagnosis = self.diagnosis_projection(self._to_grid(diagnosis_features, grid))  # [B, D, *G]
        segmentation = self.segmentation_projection(self._to_grid(segmentation_features, grid))
        result = self.sea_block(
            segmentation.flatten(2).transpose(1, 2), diagnosis.flatten(2).transpose(1, 2),
            self._position_tokens(self.segmentation_position, grid),
            self._position_tokens(self.diagnosis_position, grid),
            self._position_tokens(self.embedding_position, grid), return_attention=return_attention,
            decoder_prior=self.decoder_prior(grid, lesion_map))
        tokens, weights = result if return_attention else (result, None)
        vitalised = tokens.transpose(1, 2).reshape(diagnosis.shape)  # [B, D, *G]
        if grid != size:
            vitalised = F.interpolate(vitalised, size=size, mode=LINEAR_INTERPOLATION[len(size)],
                                      align_corners=False)
        if not return_attention:
            return vitalised
        return vitalised, InteractionAttention(tuple(grid), weights)


class AsymmetricMultiScaleInteraction(nn.Module):
    """Sec. 2.1 at diagnosis stage ``i``: ``f_d^i [B, F_i, *S_i]`` and the segmentation features (one per scale,
    highest resolution first) -> the vitalised ``fuse([coarse, fine])`` ``[B, F_i, *S_i]`` (``f_d^i +
    fuse([coarse, fine])`` with ``residual``).

    ``coarse`` is the SeA-block with ``f_m^i``; ``fine`` the SeA-block with the voxel-shuffled, concatenated
    ``[f_m^j]_{j>i}`` (:attr:`fine_sources`; absent at the deepest stage); ``fuse`` a 1x1 convolution from the
    ``D``-channel results back to ``F_i`` channels, whose output is the paper's "final vitalized diagnosis feature".

    :param residual: add ``f_d^i`` to the fused result (not in the paper; see the module docstring).
    :param prior_centres: None (SeATrans), or SMCA's prior on both SeA-blocks' decoders with centres starting at
        ``"query"`` or ``"lesion"``; with a prior, SMCA's scale-attention replaces ``fuse`` (``scale_attention``
        ``F_i -> paths`` and softmax over the paths, the weighted sum, ``projection`` ``D -> F_i``).
    """

    def __init__(self, conv_op, stage: int, diagnosis_channels: int, segmentation_channels: Sequence[int],
                 strides: Sequence[Sequence[int]], planned_size: Sequence[int], embed_dim: int, num_heads: int,
                 mlp_ratio: float, max_tokens: int, residual: bool = False, prior_centres: Optional[str] = None):
        super().__init__()
        self.stage = stage
        self.residual = residual
        block_kwargs = dict(embed_dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio,
                            planned_size=planned_size, max_tokens=max_tokens, prior_centres=prior_centres)
        self.coarse = SeAInteraction(conv_op, diagnosis_channels, segmentation_channels[stage], **block_kwargs)

        # the segmentation stages feeding the fine path, their per-axis shuffle factors and channels after shuffling
        self.fine_sources: List[int] = list(range(stage + 1, len(segmentation_channels)))
        self.shuffle_factors: List[List[int]] = []
        self.shuffled_channels: List[int] = []
        self.shuffle_channel_maps = nn.ModuleList()
        factors = [1] * len(strides[0])
        for j in self.fine_sources:
            factors = [f * int(s) for f, s in zip(factors, strides[j])]
            block = math.prod(factors)
            channels = segmentation_channels[j]
            shuffle_ready = -(-channels // block) * block  # the next multiple of the shuffle block
            self.shuffle_factors.append(list(factors))
            self.shuffle_channel_maps.append(
                nn.Identity() if shuffle_ready == channels else conv_op(channels, shuffle_ready, kernel_size=1))
            self.shuffled_channels.append(shuffle_ready // block)
        fine_channels = sum(self.shuffled_channels)
        self.fine = (SeAInteraction(conv_op, diagnosis_channels, fine_channels, **block_kwargs)
                     if fine_channels else None)
        paths = 2 if self.fine is not None else 1
        if prior_centres is None:
            self.fuse = conv_op(embed_dim * paths, diagnosis_channels, kernel_size=1)
        else:  # SMCA's scale-attention over the paths, then the channel projection
            self.scale_attention = conv_op(diagnosis_channels, paths, kernel_size=1)
            self.projection = conv_op(embed_dim, diagnosis_channels, kernel_size=1)

    def smaller_scale_features(self, segmentation_features: Sequence[torch.Tensor],
                               size: Sequence[int]) -> torch.Tensor:
        """``[f_m^j]_{j>i}`` voxel-shuffled to ``size`` and concatenated in the order of :attr:`fine_sources`:
        ``[B, sum(shuffled_channels), *size]``, ``shuffled_channels[k] = ceil(F_j / prod(r_j)) `` for
        ``j = fine_sources[k]``."""
        shuffled = [match_spatial_size(voxel_shuffle(channel_map(features), factors), size)
                    for features, factors, channel_map in zip(segmentation_features[self.stage + 1:],
                                                               self.shuffle_factors, self.shuffle_channel_maps)]
        return torch.cat(shuffled, dim=1)

    def integrate(self, diagnosis_features: torch.Tensor, vitalised: List[torch.Tensor]) -> torch.Tensor:
        """The paths' ``D``-channel outputs -> ``[B, F_i, *S_i]``: the 1x1 fusion of their concatenation
        (SeATrans), or SMCA's scale-attention ``projection(sum_j alpha_j * C_j)`` with ``alpha = softmax`` over the
        paths of ``scale_attention(f_d^i)``."""
        if not hasattr(self, "scale_attention"):
            return self.fuse(torch.cat(vitalised, dim=1))
        alpha = torch.softmax(self.scale_attention(diagnosis_features).float(), dim=1).to(vitalised[0].dtype)
        return self.projection(sum(alpha[:, j:j + 1] * path for j, path in enumerate(vitalised)))

    def forward(self, diagnosis_features: torch.Tensor, segmentation_features: Sequence[torch.Tensor],
                return_attention: bool = False, lesion_map: Optional[torch.Tensor] = None
                ) -> Union[torch.Tensor, Tuple[torch.Tensor, Dict[str, InteractionAttention]]]:
        attention = {}
        coarse = self.coarse(diagnosis_features, segmentation_features[self.stage], return_attention, lesion_map)
        if return_attention:
            coarse, attention["coarse"] = coarse
        vitalised = [coarse]
        if self.fine is not None:
            smaller = self.smaller_scale_features(segmentation_features, diagnosis_features.shape[2:])
            fine = self.fine(diagnosis_features, smaller, return_attention, lesion_map)
            if return_attention:
                fine, attention["fine"] = fine
            vitalised.append(fine)
        out = self.integrate(diagnosis_features, vitalised)
        if self.residual:
            out = diagnosis_features + out
        return (out, attention) if return_attention else out


class SeATransDiagnosisBranch(DiagnosisBranch):
    """SeATrans: ``forward(image [B, C, *S], segmentation_features, segmentation_probabilities)`` -> logits
    ``[B, num_outputs]`` (see the module docstring; ``segmentation_probabilities`` ``[B, K, *S]`` is read by
    ``spatial_prior="smca_lesion"`` only).

    The diagnosis encoder (:func:`build_diagnosis_encoder`, image only) runs stage by stage; after each stage in
    ``interaction_stages`` an :class:`AsymmetricMultiScaleInteraction` replaces its output by the vitalised feature;
    a :class:`PooledClassifier` on the last stage gives the logits. ``forward(..., return_attention=True)`` also
    returns ``{"stage_<i>/coarse" | "stage_<i>/fine": InteractionAttention}``, what each SeA-block attended to.

    :param segmentation_encoder: the planned segmentation encoder (``output_channels``, ``strides``, ``conv_op``).
    :param input_channels: image channels.
    :param patch_size: the plans' patch size (2 or 3 ints); sizes the positional encodings.
    :param num_outputs: logits per case (see ``num_diagnosis_outputs``).
    :param interaction_stages: diagnosis-encoder stage indices (negative ones count from the end) that interact
        with the segmentation features; ``None`` gives :func:`default_interaction_stages` (the paper's strides 8
        and 16, a stage after the last interaction); ``(-2, -1)`` is the former default, the last two stages.
    :param embed_dim: token dimension ``D``; :param num_heads: attention heads; :param mlp_ratio: MLP width / ``D``.
    :param max_tokens: bound on the tokens of each SeA-block, in 2D and 3D (see the module docstring).
    :param features_per_stage: diagnosis encoder channels; defaults to the segmentation encoder's.
    :param residual: ``False`` (the paper): the fused 1x1-conv output is the vitalised feature; ``True``: it is added
        to the diagnosis feature.
    :param spatial_prior: ``"none"`` (SeATrans), ``"smca"`` or ``"smca_lesion"`` (module docstring, "SMCA's spatial
        prior").
    :param exclude_background: for ``"smca_lesion"``: the lesion map is the probability sum of channels ``1..K-1``
        (softmax plans) instead of all channels (regions).
    """

    returns_attention = True  # forward(..., return_attention=True) also returns what it attended to

    def __init__(self, segmentation_encoder: nn.Module, input_channels: int, patch_size: Sequence[int],
                 num_outputs: int, interaction_stages: Optional[Sequence[int]] = None, embed_dim: int = 64,
                 num_heads: int = 4, max_tokens: int = 256, features_per_stage: Optional[Sequence[int]] = None,
                 mlp_ratio: float = 4.0, residual: bool = False, spatial_prior: str = "none",
                 exclude_background: bool = True):
        super().__init__()
        if spatial_prior not in SPATIAL_PRIORS:
            raise ValueError(f"spatial_prior must be one of {sorted(SPATIAL_PRIORS)}, got {spatial_prior!r}")
        self.spatial_prior = spatial_prior
        self.exclude_background = bool(exclude_background)
        conv_op = segmentation_encoder.conv_op
        if len(patch_size) != convert_conv_op_to_dim(conv_op):
            raise ValueError(f"patch size {list(patch_size)} does not fit {conv_op.__name__}")
        self.encoder = build_diagnosis_encoder(segmentation_encoder, input_channels, features_per_stage)
        num_stages = len(self.encoder.stages)
        if interaction_stages is None:
            interaction_stages = default_interaction_stages(self.encoder.strides)
        stages = sorted({int(s) % num_stages for s in interaction_stages
                         if -num_stages <= int(s) < num_stages})
        if not stages or len(stages) != len(interaction_stages):
            raise ValueError(f"interaction stages {list(interaction_stages)} must be distinct indices of the "
                             f"{num_stages} encoder stages")
        self.interaction_stages = stages
        self.max_tokens = max_tokens
        self.residual = residual
        self.num_segmentation_stages = len(segmentation_encoder.output_channels)
        planned_sizes = stage_sizes(patch_size, self.encoder.strides)
        self.interactions = nn.ModuleDict({
            str(stage): AsymmetricMultiScaleInteraction(
                conv_op, stage, self.encoder.output_channels[stage], segmentation_encoder.output_channels,
                segmentation_encoder.strides, planned_sizes[stage], embed_dim, num_heads, mlp_ratio, max_tokens,
                residual, SPATIAL_PRIORS[spatial_prior])
            for stage in stages})
        self.classifier = PooledClassifier(self.encoder.output_channels[-1], num_outputs)

    def lesion_map(self, segmentation_probabilities: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """``[B, K, *S]`` -> ``[B, 1, *S]``, the lesion probability (foreground channels summed, clamped to 1) that
        ``"smca_lesion"`` starts its centres from; None for the other priors."""
        if SPATIAL_PRIORS[self.spatial_prior] != "lesion":
            return None
        if segmentation_probabilities is None:
            raise ValueError("spatial_prior='smca_lesion' needs the segmentation probabilities")
        first = 1 if self.exclude_background and segmentation_probabilities.shape[1] > 1 else 0
        return segmentation_probabilities[:, first:].sum(dim=1, keepdim=True).clamp(max=1.0)

    def forward(self, image: torch.Tensor, segmentation_features: list,
                segmentation_probabilities: Optional[torch.Tensor] = None, return_attention: bool = False
                ) -> Union[torch.Tensor, Tuple[torch.Tensor, Dict[str, InteractionAttention]]]:
        if len(segmentation_features) != self.num_segmentation_stages:
            raise ValueError(f"expected {self.num_segmentation_stages} segmentation feature maps (one per encoder "
                             f"scale), got {len(segmentation_features)}")
        attention = {}
        lesion_map = self.lesion_map(segmentation_probabilities)
        x = image
        for index, stage in enumerate(self.encoder.stages):
            x = stage(x)
            if index in self.interaction_stages:
                x = self.interactions[str(index)](x, segmentation_features, return_attention, lesion_map)
                if return_attention:
                    x, stage_attention = x
                    attention.update({f"stage_{index}/{path}": maps for path, maps in stage_attention.items()})
        logits = self.classifier(x)
        return (logits, attention) if return_attention else logits
