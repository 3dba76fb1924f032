"""Base-multi (SeATrans, sec. 3.2): the common multi-task baseline, a classification head on the segmentation
encoder's bottleneck, ``[B, F_last, *S_last]`` -> global average pooling -> linear -> ``[B, num_outputs]``."""

import torch

from nnunet_ext.architectures.diagnosis.diagnosis_branch import DiagnosisBranch, PooledClassifier


class BottleneckDiagnosisBranch(DiagnosisBranch):
    """:param bottleneck_channels: ``F_last``, the segmentation encoder's last ``output_channels``."""

    def __init__(self, bottleneck_channels: int, num_outputs: int):
        super().__init__()
        self.classifier = PooledClassifier(bottleneck_channels, num_outputs)

    def forward(self, image: torch.Tensor, segmentation_features: list,
                segmentation_probabilities: torch.Tensor) -> torch.Tensor:
        return self.classifier(segmentation_features[-1])
