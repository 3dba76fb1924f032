"""Which attention maps a network of ours (or nnU-Net's Primus) has, and the maps of one input tile.

The families of maps (``--maps`` of ``nnunet_ext_attention``):

=================  ======================================================================================  =======
family             what one tile gives (at its native resolution, before it is brought to the tile's size)  query
=================  ======================================================================================  =======
``div_attention``  every junction's eq. (4) map ``attn`` ``[K, *path]`` (per class or region channel;          no
                   the feature-level junctions: their one map, or the mean over their feature channels)
``seatrans``       per SeA-block, the attention the diagnosis tokens pay to each position of the              no
                   segmentation embedding ``f_md`` in eq. 2 (the decoder), averaged over the heads and the
                   diagnosis queries: ``[1, *G]`` on the block's token grid
``sian``           SiAN's side-attention weights, averaged over the feature channels ``[1, *s]``              no
``attention``      per transformer block, the query token's softmax attention over the grid tokens, one       yes
                   channel per head: ``[heads, *G]``
``rollout``        the query token's row of the attention rollout ``[1, *G]``                                  yes
``relevance``      the query token's row of Chefer et al.'s gradient-weighted relevance ``[1, *G]``, for the  yes
                   class with the largest logit at the query voxel (gradients: a pass of its own)
``distance``       per block and head, the mean attention distance in mm (numbers, not a map)               no
=================  ======================================================================================  =======

Token maps (``seatrans``, ``attention``, ``rollout``, ``relevance``) hold one value per token and are brought to
the tile by nearest-neighbour (every voxel of a token cell gets the token's value); feature maps (``div_attention``,
``sian``) by (bi/tri)linear interpolation. :class:`NetworkAttention` runs one tile; the formulas of the transformer
maps are in :mod:`token_attention`.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from nnunet_ext.architectures.attention.token_attention import (gradient_weighted_attention, grid_tokens_only,
                                                                 mean_attention_distance, query_token,
                                                                 recording_attention, relevance_row, rollout_row,
                                                                 token_distances_mm, token_layout,
                                                                 uniform_attention_distance)
from nnunet_ext.architectures.diagnosis.seatrans_branch import SeATransDiagnosisBranch
from nnunet_ext.architectures.diagnosis.segmentation_assisted_network import SegmentationAssistedDiagnosisNetwork
from nnunet_ext.architectures.diagnosis.sian_branch import SiANDiagnosisBranch

WHOLE_IMAGE_FAMILIES = ("div_attention", "seatrans", "sian")
QUERY_FAMILIES = ("attention", "rollout", "relevance")
FAMILIES = (*WHOLE_IMAGE_FAMILIES, *QUERY_FAMILIES, "distance")
LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}


@dataclass
class MapTile:
    """One map of one tile: ``values [C, *native grid]`` (float32), the channel names, the family, and how it is
    brought to the tile's size (``"nearest"`` for token maps, ``"linear"`` for feature maps)."""

    values: torch.Tensor
    channels: List[str]
    family: str
    interpolation: str

    def at_size(self, size: Sequence[int]) -> torch.Tensor:
        """``[C, *size]``: the map over the whole tile."""
        size = tuple(int(s) for s in size)
        values = self.values.float()
        if tuple(values.shape[1:]) == size:
            return values
        mode = "nearest" if self.interpolation == "nearest" else LINEAR[len(size)]
        kwargs = {} if mode == "nearest" else {"align_corners": False}
        return F.interpolate(values[None], size=size, mode=mode, **kwargs)[0]


@dataclass
class TileAttention:
    """What one tile gave: the segmentation logits ``[K, *P]``, the maps by name, and, for ``distance``, the mean
    attention distance ``[blocks, heads]`` in mm with the uniform attention's."""

    logits: torch.Tensor
    maps: Dict[str, MapTile] = field(default_factory=dict)
    distances: Optional[torch.Tensor] = None
    uniform_distance: Optional[float] = None
    target_class: Optional[int] = None


def junction_networks(network: nn.Module) -> Optional[nn.Module]:
    """The network whose ``forward_with_attention`` gives Div-attention junction maps: the network itself (our
    Div-attention U-Nets and UNETR) or the segmentation part of a diagnosis network; None if there is none."""
    if isinstance(network, SegmentationAssistedDiagnosisNetwork):
        segmentation = network.segmentation_network()
        return segmentation if segmentation is not None and junction_networks(segmentation) is not None else None
    has_junctions = hasattr(network, "div_attention") or hasattr(getattr(network, "decoder", None), "div_attention")
    return network if has_junctions and hasattr(network, "forward_with_attention") else None


def available_families(network: nn.Module) -> List[str]:
    """The map families ``network`` has, in the order of :data:`FAMILIES`."""
    found = set()
    if junction_networks(network) is not None:
        found.add("div_attention")
    if isinstance(network, SegmentationAssistedDiagnosisNetwork):
        if isinstance(network.diagnosis, SeATransDiagnosisBranch):
            found.add("seatrans")
        if isinstance(network.diagnosis, SiANDiagnosisBranch):
            found.add("sian")
    if token_layout(network) is not None:
        found.update((*QUERY_FAMILIES, "distance"))
    return [family for family in FAMILIES if family in found]


def full_resolution(output) -> torch.Tensor:
    return output[0] if isinstance(output, (list, tuple)) else output


def junction_maps(maps: Sequence[torch.Tensor], channel_names: Sequence[str]) -> Dict[str, MapTile]:
    """Each junction's ``[1, C, *path]`` map (lowest first) as ``div_attention_junction<k>``: per class/region
    channel when ``C = K``, else its mean over the channels."""
    tiles = {}
    for index, attention in enumerate(maps, start=1):
        values = attention[0].float()
        if values.shape[0] == len(channel_names):
            channels = list(channel_names)
        else:
            channels = ["divergence" if values.shape[0] == 1 else f"mean of {values.shape[0]} feature channels"]
            values = values.mean(dim=0, keepdim=True)
        tiles[f"div_attention_junction{index}"] = MapTile(values, channels, "div_attention", "linear")
    return tiles


def diagnosis_branch_maps(attention: dict) -> Dict[str, MapTile]:
    """SeATrans' ``{"stage_<i>/<path>": InteractionAttention}`` and SiAN's ``{"weight_map": w}`` as maps."""
    tiles = {}
    for key, value in attention.items():
        if key == "weight_map":
            tiles["sian_weight_map"] = MapTile(value[0].float().mean(dim=0, keepdim=True),
                                               ["mean over the weight maps"], "sian", "linear")
        elif key.startswith("stage_"):
            decoder = value.weights["decoder"][0].float()  # [heads, N_d queries, N_m keys]
            paid = decoder.mean(dim=(0, 1)).reshape(1, *value.token_grid)
            tiles["seatrans_" + key.replace("/", "_")] = MapTile(paid, ["mean over heads and diagnosis queries"],
                                                                  "seatrans", "nearest")
    return tiles


class NetworkAttention:
    """The maps of one tile of ``network`` (a network as nnU-Net's predictor holds it: eval mode, deep supervision
    off).

    :param channel_names: the names of the network's ``K`` output channels (classes or regions), for the
        Div-attention maps.
    """

    def __init__(self, network: nn.Module, channel_names: Sequence[str]):
        self.network = network
        self.channel_names = list(channel_names)
        self.families = available_families(network)
        self.layout = token_layout(network)

    def run(self, x: torch.Tensor, families: Sequence[str], query_position: Optional[Sequence[float]] = None,
            voxel_spacing_mm: Optional[Sequence[float]] = None) -> TileAttention:
        """One tile ``x [1, C, *P]`` -> :class:`TileAttention` with the maps of ``families`` (a subset of
        :attr:`families`; ``relevance`` runs its own pass with gradients).

        :param query_position: the query voxel in the tile (its ``P`` coordinates), for the query families.
        :param voxel_spacing_mm: the tile's voxel spacing per axis, for ``distance``.
        """
        families = set(families)
        unknown = families - set(self.families)
        if unknown:
            raise ValueError(f"the network has no {sorted(unknown)} maps; it has {self.families}")
        if families & set(QUERY_FAMILIES) and query_position is None:
            raise ValueError(f"{sorted(families & set(QUERY_FAMILIES))} need a query position")
        with torch.no_grad():
            result = self._forward(x, families - {"relevance"}, query_position, voxel_spacing_mm)
        if "relevance" in families:
            result.maps["attention_relevance"], result.target_class = self._relevance(x, query_position)
        return result

    def _forward(self, x, families, query_position, voxel_spacing_mm) -> TileAttention:
        transformer = families & {"attention", "rollout", "distance"}
        recorded: Dict[int, torch.Tensor] = {}
        head_means: Dict[int, torch.Tensor] = {}
        distances: Dict[int, torch.Tensor] = {}
        state = {}

        def on_attention(index: int, weights: torch.Tensor) -> None:
            grid = state["layout"]["grid"]
            prefix = self.layout.prefix_tokens
            grid_weights = grid_tokens_only(weights, prefix)
            if "attention" in families or "rollout" in families:
                query = query_token(query_position, x.shape[2:], grid)
                recorded[index] = grid_weights[0, :, query].float()  # [heads, N_grid]
                if "rollout" in families:
                    head_means[index] = weights[0].float().mean(dim=0)  # [N, N], prefix tokens included
            if "distance" in families:
                if "distances_mm" not in state:
                    cell = [float(s) * p / g for s, p, g in zip(voxel_spacing_mm, x.shape[2:], grid)]
                    state["distances_mm"] = token_distances_mm(grid, cell, weights.device)
                    state["uniform"] = uniform_attention_distance(grid, cell)
                distances[index] = mean_attention_distance(grid_weights, state["distances_mm"]).cpu()

        if transformer:
            with recording_attention(self.layout, on_attention) as found:
                state["layout"] = found
                output, attention = self._forward_with_maps(x, families)
        else:
            output, attention = self._forward_with_maps(x, families)
        result = TileAttention(full_resolution(output)[0].float(), attention)
        if transformer:
            grid = state["layout"]["grid"]
            if "attention" in families:
                heads = [f"head_{h + 1}" for h in range(next(iter(recorded.values())).shape[0])]
                for index in sorted(recorded):
                    result.maps[f"attention_block{index + 1:02d}"] = MapTile(
                        recorded[index].reshape(-1, *grid), heads, "attention", "nearest")
            if "rollout" in families:
                prefix = self.layout.prefix_tokens
                query = query_token(query_position, x.shape[2:], grid) + prefix
                row = rollout_row([head_means[i] for i in sorted(head_means)], query)[prefix:]
                row = row / row.sum().clamp_min(1e-12)  # prefix tokens' share dropped, as for the raw attention
                result.maps["attention_rollout"] = MapTile(row.reshape(1, *grid), ["rollout"], "rollout", "nearest")
            if "distance" in families:
                result.distances = torch.stack([distances[i] for i in sorted(distances)])
                result.uniform_distance = state["uniform"]
        return result

    def _forward_with_maps(self, x, families):
        """The network's output and its whole-image maps of ``families`` (a plain forward when none is asked)."""
        if not families & set(WHOLE_IMAGE_FAMILIES):
            return self.network(x), {}
        if isinstance(self.network, SegmentationAssistedDiagnosisNetwork):
            segmentation, _, attention = self.network.forward_with_attention(x)
            maps = junction_maps(attention.pop("segmentation", []), self.channel_names)
            maps.update(diagnosis_branch_maps(attention))
        else:
            segmentation, attention = self.network.forward_with_attention(x)
            maps = junction_maps(attention, self.channel_names)
        return segmentation, {name: tile for name, tile in maps.items() if tile.family in families}

    def _relevance(self, x: torch.Tensor, query_position: Sequence[float]):
        """Chefer et al.'s relevance of the query token for the class with the largest logit at the query voxel:
        a forward pass with gradients, each block's ``Ā_b`` formed as its gradient arrives."""
        weighted: Dict[int, torch.Tensor] = {}
        state = {}

        def on_attention(index: int, weights: torch.Tensor) -> None:
            if weights.requires_grad:
                weights.register_hook(lambda gradient, weights=weights, index=index: weighted.__setitem__(
                    index, gradient_weighted_attention(weights.detach(), gradient)))

        with torch.enable_grad():
            tile = x.detach().clone().requires_grad_(True)
            with recording_attention(self.layout, on_attention) as found:
                state["layout"] = found
                logits = full_resolution(self.network(tile))[0]  # [K, *P]
            voxel = tuple(min(int(p), s - 1) for p, s in zip(query_position, logits.shape[1:]))
            target_class = int(logits[(slice(None), *voxel)].argmax())
            target = logits[(target_class, *voxel)]
            torch.autograd.grad(target, tile)
        grid = state["layout"]["grid"]
        prefix = self.layout.prefix_tokens
        query = query_token(query_position, x.shape[2:], grid) + prefix
        row = relevance_row([weighted[i] for i in sorted(weighted)], query)[prefix:]
        return MapTile(row.reshape(1, *grid), [f"relevance for class {target_class}"], "relevance",
                       "nearest"), target_class
