"""One diagnosis per case from the logits of many network passes: the rule validation and prediction share.

nnU-Net trains on patches and predicts by sliding window. Every patch in training carries the label of its case
(nnU-Net's sampler chooses the patches, a third of them centred on foreground). At validation and prediction every
pass of one model (fold) over the case gives class probabilities: each sliding-window tile, each slice of a 2D
configuration of a 3D image and, with ``DiagnosisPredictor.diagnosis_from_mirrors``, each mirrored copy of
test-time augmentation. A case's probabilities are

1. per model (fold): its passes pooled by the **tile pooling** rule (the plans' ``tile_pooling``,
   :mod:`nnunet_ext.diagnosis.plans_entry`), one of

   * ``"mean"`` (the default): every pass counts equally, the mean of the passes' probabilities;
   * ``"foreground_weighted"``: each pass's probabilities weighted by the segmentation's foreground probability
     mass in its tile (:func:`~nnunet_ext.architectures.diagnosis.diagnosis_tap.foreground_mass`: the sum over the
     tile's voxels of 1 - P(background) for label maps, of the largest region sigmoid for region-based plans), so
     that tiles without lesion or organ hardly count. Where a model's tiles hold no foreground at all (total weight
     0) there is nothing to weight by: the mean is used, with a warning naming the case;
   * ``"max"``: the probabilities of the pass with the **lowest probability of the first class** (class 0 of
     ``diagnosis_labels.json``, which should be the normal / absent class). Binary: the largest positive
     probability over the passes. Multi-class: the whole probability vector of the most abnormal pass, so the row
     still sums to one and no renormalisation is needed (a per-class max would have to be renormalised and could
     mix classes of different tiles);

2. then the mean over the models (folds), as nnU-Net ensembles folds.

When the patch covers the whole image (the 2D slice datasets, small 3D images) there is one tile per model and all
three rules agree.

Shapes: ``logits`` is a sequence of ``[n_i, num_outputs]`` tensors (one per forward pass, ``n_i`` its batch size;
one output is the binary BCE head, see :func:`~nnunet_ext.diagnosis.metrics.probabilities_from_logits`),
``weights`` the matching ``[n_i]`` tensors (or None), the result ``[num_classes]`` float64 summing to one.
"""

import warnings
from typing import Optional, Sequence

import numpy as np
import torch

from nnunet_ext.diagnosis.metrics import probabilities_from_logits

MEAN, FOREGROUND_WEIGHTED, MAX = "mean", "foreground_weighted", "max"
TILE_POOLING_RULES = {
    MEAN: "the mean of the passes' class probabilities",
    FOREGROUND_WEIGHTED: "the passes' class probabilities weighted by the segmentation's foreground probability mass "
                         "in each tile (sum over voxels of 1 - P(background) for label maps, of the largest region "
                         "sigmoid for regions; the mean where a model's tiles hold no foreground)",
    MAX: "the class probabilities of the pass with the lowest probability of the first class (binary: the largest "
         "positive probability)",
}
DEFAULT_TILE_POOLING = MEAN


def checked_tile_pooling(tile_pooling, source: str = "the tile pooling rule") -> str:
    """``tile_pooling`` if it is one of :data:`TILE_POOLING_RULES`; otherwise a ValueError naming ``source`` (e.g.
    the plans file) and the allowed values."""
    if tile_pooling not in TILE_POOLING_RULES:
        raise ValueError(f"{source}: tile_pooling {tile_pooling!r} is not a tile pooling rule; use one of "
                         f"{sorted(TILE_POOLING_RULES)} (the default is {DEFAULT_TILE_POOLING!r}).")
    return tile_pooling


def aggregation_rule(tile_pooling: str = DEFAULT_TILE_POOLING, from_mirrors: bool = False) -> str:
    """The rule in words, as the summary and the prediction settings record it."""
    passes = "sliding-window tile, slice and mirror" if from_mirrors else "sliding-window tile and slice (unmirrored)"
    return (f"per fold, over every {passes}: {TILE_POOLING_RULES[checked_tile_pooling(tile_pooling)]} "
            f"(tile_pooling {tile_pooling!r}); then the mean over the folds")


AGGREGATION_RULE = aggregation_rule(DEFAULT_TILE_POOLING)


def pool_passes(probabilities: np.ndarray, weights: Optional[np.ndarray], tile_pooling: str,
                case: str = "this case") -> np.ndarray:
    """``[N, C]`` class probabilities of one model's passes (and their ``[N]`` foreground weights, needed by
    ``"foreground_weighted"``) -> ``[C]`` by the rule ``tile_pooling``."""
    tile_pooling = checked_tile_pooling(tile_pooling)
    if tile_pooling == MAX:
        return probabilities[int(np.argmin(probabilities[:, 0]))]
    if tile_pooling == FOREGROUND_WEIGHTED:
        if weights is None:
            raise ValueError(f"{case}: tile_pooling 'foreground_weighted' needs each pass's foreground weight, but "
                             f"none was recorded (the network exposes no 'softmax' flag for its segmentation "
                             f"output); record the passes with DiagnosisRecorder around a segmentation-assisted "
                             f"diagnosis network, or use tile_pooling 'mean'.")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError(f"{case}: foreground weights must be finite and >= 0, got {weights.tolist()}")
        total = float(weights.sum())
        if total > 0:
            return (weights[:, None] * probabilities).sum(0) / total
        warnings.warn(f"{case}: the segmentation finds no foreground in any tile (total foreground weight 0), so "
                      f"'foreground_weighted' tile pooling has nothing to weight by; the mean over the tiles is used.",
                      stacklevel=3)
    return probabilities.mean(0)


def case_probabilities(logits: Sequence[torch.Tensor], weights: Optional[Sequence[Optional[torch.Tensor]]] = None,
                       tile_pooling: str = DEFAULT_TILE_POOLING, model_starts: Sequence[int] = (0,),
                       case: str = "this case") -> np.ndarray:
    """Logits (and foreground weights) of every pass over one case -> ``[num_classes]`` probabilities (sum 1).

    :param model_starts: the index of each model's (fold's) first pass in ``logits`` (``DiagnosisTap.model_starts``);
        the passes of one model are pooled by ``tile_pooling``, then the models are averaged.
    """
    if len(logits) == 0:
        raise ValueError(f"{case}: no diagnosis logits were recorded")
    tile_pooling = checked_tile_pooling(tile_pooling)
    probabilities = probabilities_from_logits(torch.cat([item.detach().float().cpu() for item in logits], 0))
    rows = np.cumsum([0] + [int(item.shape[0]) for item in logits])  # row of each pass's first sample
    flat_weights = None
    if weights is not None and all(w is not None for w in weights):
        if len(weights) != len(logits):
            raise ValueError(f"{case}: {len(weights)} foreground weights for {len(logits)} passes")
        flat_weights = torch.cat([w.detach().double().cpu().reshape(-1) for w in weights]).numpy()
        if flat_weights.shape[0] != probabilities.shape[0]:
            raise ValueError(f"{case}: {flat_weights.shape[0]} foreground weights for {probabilities.shape[0]} "
                             f"samples")
    starts = sorted({int(s) for s in model_starts if 0 <= int(s) < len(logits)} | {0})
    bounds = [*starts, len(logits)]
    per_model = []
    for first, end in zip(bounds[:-1], bounds[1:]):
        r0, r1 = rows[first], rows[end]
        per_model.append(pool_passes(probabilities[r0:r1], None if flat_weights is None else flat_weights[r0:r1],
                                     tile_pooling, case))
    return np.mean(per_model, axis=0)
