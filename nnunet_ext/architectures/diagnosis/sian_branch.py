"""SiAN's diagnosis branch (Wei et al., *Learn to Segment Retinal Lesions and Beyond*, sec. 3.2, eq. 5-7, Fig. 3,
Table 7): a diagnosis CNN on the image whose last feature maps are weighed by maps made from the segmentation
probabilities, then global average pooling and a linear classifier.

The paper's main branch is Inception-v3 and its side-attention branch a pre-trained L-Net; here the main branch is
:func:`~nnunet_ext.architectures.building_blocks.diagnosis_encoder.build_diagnosis_encoder` (shaped like the planned
segmentation encoder) and the side information is the segmentation network's probabilities. Table 7 found fusion at
the feature maps better than at the input image, so only the feature-map fusion is built.

Background channel: nnU-Net's softmax has a background channel 0, and the paper's maps ``{s_1, ..., s_m}`` are the
lesions only. With ``exclude_background`` and ``K > 1`` channel 0 is dropped and the ``m = K - 1`` other channels are
the lesion maps; otherwise (region-based plans, whose sigmoid channels are regions, or ``K = 1``) all ``K`` are used.
"""

from typing import Optional, Sequence

import torch
from torch import nn

from nnunet_ext.architectures.building_blocks.channel_wise_max_pool import ChannelWiseMaxPoolWeightMap
from nnunet_ext.architectures.building_blocks.diagnosis_encoder import build_diagnosis_encoder
from nnunet_ext.architectures.building_blocks.side_attention_weight_map import SideAttentionWeightMap
from nnunet_ext.architectures.diagnosis.diagnosis_branch import DiagnosisBranch, PooledClassifier

WEIGHT_MAP_KINDS = ("learned", "cw_maxpool")


class SiANDiagnosisBranch(DiagnosisBranch):
    """``forward(image [B, C, *S], segmentation_features (unused), segmentation_probabilities [B, K, *S])`` ->
    logits ``[B, num_outputs]``.

    ``logits = Linear(GAP(f ⊗ w))`` (eq. 5), with ``f`` ``[B, F, *s]`` the diagnosis encoder's last stage output and
    ``w`` ``[B, F, *s]`` the weight maps (:meth:`weight_maps`): learned by two 3x3 convolutions and a sigmoid
    (``weight_map="learned"``, eq. 7) or the channel-wise max of the lesion maps (``"cw_maxpool"``, eq. 6).

    :param segmentation_encoder: the planned segmentation encoder; the diagnosis encoder copies its ``conv_op``,
        kernels, strides and block settings.
    :param input_channels: image channels ``C``.
    :param num_segmentation_channels: ``K``, channels of ``segmentation_probabilities``.
    :param num_outputs: logits per image (see ``num_diagnosis_outputs``).
    :param weight_map: ``"learned"`` (eq. 7) or ``"cw_maxpool"`` (eq. 6).
    :param features_per_stage: diagnosis encoder widths; default the segmentation encoder's.
    :param exclude_background: drop probability channel 0 (background) when ``K > 1``.
    """

    returns_attention = True  # forward(..., return_attention=True) also returns what it attended to

    def __init__(self, segmentation_encoder: nn.Module, input_channels: int, num_segmentation_channels: int,
                 num_outputs: int, weight_map: str = "learned", features_per_stage: Optional[Sequence[int]] = None,
                 exclude_background: bool = True):
        super().__init__()
        if weight_map not in WEIGHT_MAP_KINDS:
            raise ValueError(f"weight_map must be one of {WEIGHT_MAP_KINDS}, got {weight_map!r}")
        if num_segmentation_channels < 1:
            raise ValueError(f"num_segmentation_channels must be positive, got {num_segmentation_channels}")
        self.num_segmentation_channels = num_segmentation_channels
        self.first_lesion_channel = 1 if exclude_background and num_segmentation_channels > 1 else 0
        num_lesion_channels = num_segmentation_channels - self.first_lesion_channel
        self.encoder = build_diagnosis_encoder(segmentation_encoder, input_channels, features_per_stage)
        num_features = self.encoder.output_channels[-1]
        if weight_map == "learned":
            self.weight_map = SideAttentionWeightMap(segmentation_encoder.conv_op, num_lesion_channels, num_features)
        else:
            self.weight_map = ChannelWiseMaxPoolWeightMap(num_features)
        self.classifier = PooledClassifier(num_features, num_outputs)

    def lesion_probabilities(self, segmentation_probabilities: torch.Tensor) -> torch.Tensor:
        """``[B, K, *S]`` -> ``[B, m, *S]``, the channels the weight maps are made from."""
        if segmentation_probabilities.shape[1] != self.num_segmentation_channels:
            raise ValueError(f"expected {self.num_segmentation_channels} probability channels, got "
                             f"{segmentation_probabilities.shape[1]}")
        return segmentation_probabilities[:, self.first_lesion_channel:]

    def weight_maps(self, segmentation_probabilities: torch.Tensor, feature_size: Sequence[int]) -> torch.Tensor:
        """The side-attention weights, ``[B, K, *S]`` -> ``[B, F, *feature_size]`` (also the attention maps to
        export; the diagnosis features' size is ``image size / total stride`` of the encoder)."""
        return self.weight_map(self.lesion_probabilities(segmentation_probabilities), feature_size)

    def forward(self, image: torch.Tensor, segmentation_features: list,
                segmentation_probabilities: torch.Tensor, return_attention: bool = False):
        """With ``return_attention`` also ``{"weight_map": w [B, F, *s]}``, the side-attention weights."""
        features = self.encoder(image)[-1]
        weights = self.weight_maps(segmentation_probabilities, features.shape[2:])
        logits = self.classifier(features * weights)
        return (logits, {"weight_map": weights}) if return_attention else logits
