"""Base-ROI (SeATrans, sec. 3.2): the diagnosis CNN sees the region cropped around the predicted segmentation
(:mod:`~nnunet_ext.architectures.building_blocks.roi_crop`), resized to the input size."""

import torch

from nnunet_ext.architectures.building_blocks.roi_crop import crop_around_segmentation
from nnunet_ext.architectures.diagnosis.cnn_branch import CNNDiagnosisBranch
from nnunet_ext.architectures.diagnosis.diagnosis_branch import DiagnosisBranch


class ROIDiagnosisBranch(DiagnosisBranch):
    """``image [B, C, *S]`` cropped around the foreground of ``segmentation_probabilities [B, K, *S]`` -> CNN ->
    ``[B, num_outputs]``. :param softmax: whether the probabilities are a softmax (channel 0 background) or
    per-region sigmoids."""

    def __init__(self, segmentation_encoder, image_channels: int, num_outputs: int, softmax: bool,
                 margin_fraction: float = 0.1, features_per_stage=None):
        super().__init__()
        self.softmax = softmax
        self.margin_fraction = margin_fraction
        self.cnn = CNNDiagnosisBranch(segmentation_encoder, image_channels, num_outputs,
                                      features_per_stage=features_per_stage)

    def forward(self, image: torch.Tensor, segmentation_features: list,
                segmentation_probabilities: torch.Tensor) -> torch.Tensor:
        region, _ = crop_around_segmentation(image, segmentation_probabilities, self.softmax,
                                             margin_fraction=self.margin_fraction)
        return self.cnn(region, segmentation_features, segmentation_probabilities)
