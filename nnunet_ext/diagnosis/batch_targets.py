"""The diagnosis targets of a batch, looked up by the case ids nnU-Net's data loader puts in ``batch['keys']``
(present with single- and multi-process data augmentation alike)."""

from typing import Sequence

import torch

from nnunet_ext.diagnosis.labels import DiagnosisLabels


def diagnosis_targets(labels: DiagnosisLabels, keys: Sequence[str], device: torch.device) -> torch.Tensor:
    """``[B]`` int64 class indices of the cases ``keys``, in order; a clear error for a case without a label."""
    missing = [key for key in keys if key not in labels.labels]
    if missing:
        raise KeyError(f"{labels.source}: no diagnosis label for case(s) {missing} of this batch. Every training "
                       f"case needs a label; add them and restart the training.")
    return torch.as_tensor(labels.class_indices(list(keys)), dtype=torch.long, device=device)
