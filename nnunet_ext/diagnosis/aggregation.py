"""One diagnosis per case from the logits of many network passes.

nnU-Net trains on patches and predicts by sliding window. The rule here, used alike by validation and prediction:
every patch in training carries the label of its case (nnU-Net's sampler chooses the patches, a third of them
centred on foreground); at validation and prediction every pass over the case (each sliding-window tile, each
mirrored copy of test-time augmentation, each fold of an ensemble, each slice of a 2D configuration) gives class
probabilities, and the case's probabilities are their mean. When the patch covers the whole image (the 2D slice
datasets, small 3D images) there is one tile and the rule is exact; for a label that only a small region decides,
choose a patch size that covers the image.
"""

from typing import Sequence

import numpy as np
import torch

from nnunet_ext.diagnosis.metrics import probabilities_from_logits

AGGREGATION_RULE = "mean of the class probabilities over every sliding-window tile, mirror, fold and slice"


def case_probabilities(logits: Sequence[torch.Tensor]) -> np.ndarray:
    """``[n_i, num_outputs]`` logits of every pass over one case -> ``[num_classes]`` probabilities (sum 1)."""
    if len(logits) == 0:
        raise ValueError("no diagnosis logits were recorded for this case")
    stacked = torch.cat([item.detach().float().cpu() for item in logits], 0)
    return probabilities_from_logits(stacked).mean(0)
