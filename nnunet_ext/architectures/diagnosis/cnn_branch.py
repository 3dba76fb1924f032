"""The plain CNN diagnosis branch: the image-only classifier and SeATrans' Base-cat baseline.

Image-only (no mask): the diagnosis encoder sees the image. Base-cat (SeATrans, sec. 3.2): it sees the image
concatenated with the segmentation probabilities, ``[B, C + K, *S]``. Both end in global average pooling and a
linear classifier.
"""

import torch

from nnunet_ext.architectures.building_blocks.diagnosis_encoder import build_diagnosis_encoder
from nnunet_ext.architectures.diagnosis.diagnosis_branch import DiagnosisBranch, PooledClassifier


class CNNDiagnosisBranch(DiagnosisBranch):
    """:param segmentation_encoder: the planned segmentation encoder, whose shape the diagnosis encoder copies.
    :param image_channels: ``C``. :param num_outputs: logits per case.
    :param segmentation_channels: ``K`` to concatenate the segmentation probabilities (Base-cat); 0 for image only.
    """

    def __init__(self, segmentation_encoder, image_channels: int, num_outputs: int, segmentation_channels: int = 0,
                 features_per_stage=None):
        super().__init__()
        self.segmentation_channels = segmentation_channels
        self.encoder = build_diagnosis_encoder(segmentation_encoder, image_channels + segmentation_channels,
                                               features_per_stage)
        self.classifier = PooledClassifier(self.encoder.output_channels[-1], num_outputs)

    def forward(self, image: torch.Tensor, segmentation_features: list,
                segmentation_probabilities: torch.Tensor) -> torch.Tensor:
        x = torch.cat([image, segmentation_probabilities], 1) if self.segmentation_channels else image
        return self.classifier(self.encoder(x)[-1])
