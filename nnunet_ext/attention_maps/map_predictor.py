"""Attention maps of a trained model for whole cases: nnU-Net's preprocessing and sliding window, the maps of every
tile stitched as nnU-Net stitches logits, in the case's original geometry.

:class:`AttentionMapPredictor` is nnU-Net's ``nnUNetPredictor`` (its model loading, tile positions and Gaussian
weights) with a tile loop of its own, because nnU-Net's runs under ``torch.inference_mode()`` (no gradients for the
relevance) and keeps only the logits:

* **Preprocessing**: the configuration's preprocessor (``run_case``), as nnU-Net's prediction preprocesses a case.
* **Tiles**: the image padded to the patch size as nnU-Net pads it (``pad_nd_image``), the tiles of
  ``_internal_get_sliding_window_slicers`` (step ``tile_step_size``, 0.5 by default), one forward pass per tile
  without test-time mirroring (the maps are the network's on the image as given; mirrored passes would average maps
  of flipped images).
* **Stitching**: ``sum_tiles(map * g) / sum_tiles(g)`` with nnU-Net's Gaussian ``g`` (``compute_gaussian``, sigma 1/8
  of the patch), where the maps of every tile are brought to the tile's size first (:meth:`MapTile.at_size`); a query
  map only over the tiles that contain the query voxel (0 elsewhere). Several folds: the mean of their maps.
* **Geometry**: :func:`~nnunet_ext.attention_maps.original_geometry.to_original_geometry`, nnU-Net's own undoing of
  its resampling, cropping and transposition.

Memory and time: one map is computed at a time. A whole-image map (Div-attention junction, SeA-block, SiAN) takes
one pass over every tile and an accumulator of its channels (at most ``K``, the network's outputs) on the
preprocessed grid, plus its resampled copy on the original grid: about what nnU-Net's prediction holds for the
logits and probabilities of one case. The first pass also stitches the logits (``K`` channels, for the prediction
outline of the figures) and the attention distances. Per tile, the network's forward pass is nnU-Net's; mirroring
off, one pass costs 1/8 (3D) or 1/4 (2D) of a tile of nnU-Net's default prediction. The query maps run the tiles
that hold the query only (at most 2 per axis at step 0.5): one pass for every block's raw attention and the rollout
(``blocks x heads x N`` floats kept per tile), one with gradients for the relevance (see
:mod:`~nnunet_ext.architectures.attention.token_attention` for its bound); a block's map then holds one channel per
head.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from acvl_utils.cropping_and_padding.padding import pad_nd_image

from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from nnunetv2.inference.sliding_window_prediction import compute_gaussian

from nnunet_ext.architectures.attention.network_maps import (QUERY_FAMILIES, WHOLE_IMAGE_FAMILIES, MapTile,
                                                            NetworkAttention)
from nnunet_ext.attention_maps.original_geometry import to_original_geometry
from nnunet_ext.geometry.world_points import QueryPoint
from nnunet_ext.core.network_wrappers import inner_network


def channel_names(dataset_json: dict, label_manager) -> List[str]:
    """The names of the network's output channels: the labels by value, or the regions in the order of
    ``dataset.json``'s ``labels`` (nnU-Net's region order; background and ignore excluded)."""
    labels = {name: value for name, value in dataset_json["labels"].items() if name != "ignore"}
    if label_manager.has_regions:
        return [name for name in labels if name != "background"]
    return [name for name, _ in sorted(labels.items(), key=lambda item: int(item[1]))]


@dataclass
class StitchedMap:
    """One map of a case on the preprocessed grid ``[C, *S]`` with its channel names and family, and for a query
    map the tiles that formed it."""

    values: torch.Tensor
    channels: List[str]
    family: str
    tiles: int


@dataclass
class CaseMaps:
    """Everything computed for one case (before it is brought to the original geometry)."""

    maps: Dict[str, StitchedMap] = field(default_factory=dict)
    logits: Optional[torch.Tensor] = None
    distances: Optional[np.ndarray] = None  # [blocks, heads] mm, mean over tiles and folds
    uniform_distance: Optional[float] = None
    target_classes: List[int] = field(default_factory=list)


class Stitcher:
    """``sum(map * g) / sum(g)`` over tiles on a padded grid of ``shape`` (``[C, *shape]``, float32, on the CPU), for
    a map of ``channels`` (names) and ``family``."""

    def __init__(self, channels: int, shape: Sequence[int], gaussian: torch.Tensor,
                 names: Sequence[str] = (), family: str = ""):
        self.names, self.family = list(names), family
        self.values = torch.zeros((channels, *shape), dtype=torch.float32)
        self.weights = torch.zeros(tuple(shape), dtype=torch.float32)
        self.gaussian = gaussian
        self.tiles = 0

    def add(self, slicer: tuple, values: torch.Tensor) -> None:
        self.values[slicer] += values.float().cpu() * self.gaussian
        self.weights[slicer[1:]] += self.gaussian
        self.tiles += 1

    def result(self) -> torch.Tensor:
        covered = self.weights > 0
        return torch.where(covered, self.values / self.weights.clamp_min(1e-12), torch.zeros(()))


def tile_holds(slicer: tuple, voxel: Sequence[int]) -> bool:
    """Whether the tile ``slicer`` (nnU-Net's: channel slice, then an int or a slice per axis) holds ``voxel``."""
    for part, position in zip(slicer[1:], voxel):
        if isinstance(part, slice):
            if not part.start <= position < part.stop:
                return False
        elif part != position:
            return False
    return True


def position_in_tile(slicer: tuple, voxel: Sequence[int]) -> Tuple[int, ...]:
    """``voxel`` in the tile's own coordinates (the axes the tile spans)."""
    return tuple(position - part.start for part, position in zip(slicer[1:], voxel) if isinstance(part, slice))


class AttentionMapPredictor(nnUNetPredictor):
    """nnU-Net's predictor for attention maps (module docstring); initialise it as nnU-Net's
    (``initialize_from_trained_model_folder``), then :meth:`case_maps` per case."""

    def __init__(self, tile_step_size: float = 0.5, device: torch.device = torch.device("cpu")):
        super().__init__(tile_step_size=tile_step_size, use_gaussian=True, use_mirroring=False,
                         perform_everything_on_device=False, device=device, verbose=False,
                         verbose_preprocessing=False, allow_tqdm=False)

    @property
    def attention(self) -> NetworkAttention:
        if getattr(self, "_attention", None) is None or self._attention.network is not inner_network(self.network):
            self._attention = NetworkAttention(inner_network(self.network),
                                               channel_names(self.dataset_json, self.label_manager))
        return self._attention

    def preprocess(self, image_files: Sequence[str]) -> Tuple[torch.Tensor, dict]:
        """nnU-Net's preprocessing of one case: ``(data [C, *S] float32, properties)``."""
        preprocessor = self.configuration_manager.preprocessor_class(verbose=False)
        data, _, properties = preprocessor.run_case(list(image_files), None, self.plans_manager,
                                                    self.configuration_manager, self.dataset_json)
        return torch.from_numpy(np.asarray(data, dtype=np.float32)), properties

    def voxel_spacing(self) -> List[float]:
        return [float(s) for s in self.configuration_manager.spacing]

    def _tiles(self, data: torch.Tensor):
        padded, revert = pad_nd_image(data, self.configuration_manager.patch_size, "constant", {"value": 0}, True,
                                      None)
        return padded, revert, self._internal_get_sliding_window_slicers(padded.shape[1:])

    def _run(self, tile: torch.Tensor, families, query=None):
        return self.attention.run(tile.to(self.device), families, query, self.voxel_spacing())

    def case_maps(self, data: torch.Tensor, families: Sequence[str], query: Optional[QueryPoint] = None) -> CaseMaps:
        """The stitched maps of ``families`` for one preprocessed case ``data [C, *S]`` (mean over the folds),
        with the stitched logits and, for ``distance``, the attention distances."""
        whole = [f for f in families if f in WHOLE_IMAGE_FAMILIES]
        queried = [f for f in families if f in QUERY_FAMILIES]
        padded, revert, slicers = self._tiles(data)
        self._revert = revert
        gaussian = compute_gaussian(tuple(self.configuration_manager.patch_size), sigma_scale=1. / 8,
                                    value_scaling_factor=10, device=torch.device("cpu")).float()
        result = CaseMaps()
        network = inner_network(self.network).to(self.device)
        for parameters in self.list_of_parameters:
            network.load_state_dict(parameters)
            network.eval()
            names = self._whole_image_names(padded, slicers, whole) if whole else []
            # the first pass: the logits, the distances and the first whole-image map
            logits, distances, uniform = self._first_pass(padded, slicers, gaussian, "distance" in families,
                                                          names[:1], result)
            result.logits = logits if result.logits is None else result.logits + logits
            if distances is not None:
                result.distances = distances if result.distances is None else result.distances + distances
                result.uniform_distance = uniform
            for name in names[1:]:
                self._accumulate(result, name, self._whole_image_pass(padded, slicers, gaussian, name))
            if queried:
                for name, stitched in self._query_pass(padded, slicers, gaussian, queried, query, result).items():
                    self._accumulate(result, name, stitched)
        folds = len(self.list_of_parameters)
        crop = (slice(None), *revert[1:])
        result.logits = (result.logits / folds)[crop]
        if result.distances is not None:
            result.distances = result.distances / folds
        for stitched in result.maps.values():
            stitched.values = (stitched.values / folds)[crop]
        return result

    @staticmethod
    def _accumulate(result: CaseMaps, name: str, stitched: StitchedMap) -> None:
        if name in result.maps:
            result.maps[name].values += stitched.values
        else:
            result.maps[name] = stitched

    def _whole_image_names(self, padded, slicers, whole) -> List[str]:
        """The whole-image maps of ``whole`` this network gives, from one tile."""
        probe = self._run(padded[slicers[0]][None], whole)
        return list(probe.maps)

    def _first_pass(self, padded, slicers, gaussian, with_distance: bool, names: List[str], result: CaseMaps):
        families = sorted({name_family(name) for name in names} | ({"distance"} if with_distance else set()))
        logits = None
        maps: Dict[str, Stitcher] = {}
        distance_sum, uniform = None, None
        for slicer in slicers:
            tile = self._run(padded[slicer][None], families)
            if logits is None:
                logits = Stitcher(tile.logits.shape[0], padded.shape[1:], gaussian)
            logits.add(slicer, tile.logits)
            for name in names:
                self._add_tile(maps, name, tile.maps[name], slicer, padded.shape[1:], gaussian)
            if tile.distances is not None:
                distance_sum = tile.distances if distance_sum is None else distance_sum + tile.distances
                uniform = tile.uniform_distance
        for name, stitcher in maps.items():
            self._accumulate(result, name, self._stitched(stitcher, name))
        distances = None if distance_sum is None else (distance_sum / len(slicers)).numpy()
        return logits.result(), distances, uniform

    def _whole_image_pass(self, padded, slicers, gaussian, name: str) -> StitchedMap:
        maps: Dict[str, Stitcher] = {}
        for slicer in slicers:
            tile = self._run(padded[slicer][None], [name_family(name)])
            self._add_tile(maps, name, tile.maps[name], slicer, padded.shape[1:], gaussian)
        return self._stitched(maps[name], name)

    def _query_pass(self, padded, slicers, gaussian, queried, query: QueryPoint, result: CaseMaps
                    ) -> Dict[str, StitchedMap]:
        voxel = self._padded_voxel(query)
        holding = [s for s in slicers if tile_holds(s, voxel)]
        maps: Dict[str, Stitcher] = {}
        for slicer in holding:
            tile = self._run(padded[slicer][None], queried, position_in_tile(slicer, voxel))
            for name, values in tile.maps.items():
                self._add_tile(maps, name, values, slicer, padded.shape[1:], gaussian)
            if tile.target_class is not None:
                result.target_classes.append(tile.target_class)
        return {name: self._stitched(stitcher, name) for name, stitcher in maps.items()}

    def _padded_voxel(self, query: QueryPoint) -> Tuple[int, ...]:
        return tuple(v + s.start for v, s in zip(query.preprocessed_voxel, self._revert[1:]))

    @staticmethod
    def _add_tile(maps: Dict[str, Stitcher], name: str, tile_map: MapTile, slicer, shape, gaussian) -> None:
        tile_size = gaussian.shape
        values = tile_map.at_size(tile_size)
        if name not in maps:
            maps[name] = Stitcher(values.shape[0], shape, gaussian, tile_map.channels, tile_map.family)
        maps[name].add(slicer, values)

    @staticmethod
    def _stitched(stitcher: Stitcher, name: str) -> StitchedMap:
        return StitchedMap(stitcher.result(), stitcher.names, stitcher.family, stitcher.tiles)

    # --- the case in its own geometry ---

    def segmentation(self, logits: torch.Tensor, properties: dict) -> np.ndarray:
        """The segmentation of the stitched logits in the original geometry (nnU-Net's export function)."""
        return convert_predicted_logits_to_segmentation_with_correct_shape(
            logits, self.plans_manager, self.configuration_manager, self.label_manager, properties)

    def in_original_geometry(self, values: torch.Tensor, properties: dict) -> np.ndarray:
        return to_original_geometry(values, properties, self.plans_manager, self.configuration_manager)


def name_family(name: str) -> str:
    """The family of a map name (``div_attention_junction2`` -> ``div_attention``)."""
    for family in ("div_attention", "seatrans", "sian"):
        if name.startswith(family):
            return family
    raise ValueError(f"not a whole-image map: {name}")
