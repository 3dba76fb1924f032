"""Div-attention at the feature level, inside nnU-Net's decoder (Jiang et al., eq. 1-5, read on feature maps).

The paper calls ``O_i`` "feature maps of two adjacent paths" that are "reshaped along channel dimension" (eq. 1),
predicts "the intermediate result ... by imposing an 1x1x1 3D convolution on the divergence-enhanced feature map",
and in ESPNet "replace[s] the ESP module in decoder with the proposed module". Here the junction sits in nnU-Net's
own ``UNetDecoder``: for decoder stage ``s >= 1`` (stage 0, the lowest, has no path below it but the bottleneck)::

    U        = transpconvs[s](O_{i-1})                    the decoder's own transposed conv, C_{i-1} -> C_i
    O_i      = stages[s](cat(U, skip))                    nnU-Net's stage: the upper path's C_i-channel features
    O_{i-1}' = Conv1x1(U)                                 eq. (1): UpConv is the decoder's transposed conv, whose
                                                          output nnU-Net computes anyway; the 1x1 (C_i -> C_i) is new
    M_i, M_{i-1}                                          eq. (2)-(3), ``feature_masks`` (below)
    attn     = attention(d), d = |M_i - M_{i-1}|          eq. (4), ``attention``: "softmax" or "divergence"
    F_i      = ConvNormNonlin(resize(image))              side branch, C_in -> C_i at this stage's size
    E_i      = O_i + ConvNormNonlin(O_i + O_{i-1}' + attn * F_i)     eq. (5) and "fused ... by adding and
                                                          convolutions"; without the residual the fusion alone
    seg_layers[s](E_i)                                    the 1x1 intermediate head (nnU-Net's per-stage seg layer)

and ``E_i`` (not ``O_i``) feeds stage ``s + 1``. ``O_{i-1}`` is the enhanced map of the stage below (stage 0's own
output for ``s = 1``).

**Which masks (a reading, ``feature_masks``).** Eq. (2)-(3) call ``Sigmoid(O)`` the paths' *predicted masks*:

* ``"heads"`` (the default of ``DivAttentionFeaturesTrainer``): the masks of the stage's 1x1 head's predictions,
  ``M_i = masks(seg_layers[s](O_i))``, ``M_{i-1} = masks(seg_layers[s](O_{i-1}'))`` (``masks``: sigmoid, or softmax
  over classes on label datasets); ``d`` is averaged over the ``K`` channels (in [0, 1]) and one attention map
  weights every channel of ``F_i``. The masks are predictions, as the paper names them; costs two ``C_i -> K`` 1x1
  passes per stage.
* ``"features"``: ``M = sigmoid(O)`` of the ``C_i`` feature channels themselves, the equations applied to the
  tensors they name; ``attn`` has ``C_i`` channels and weights ``F_i`` channel by channel. Sigmoid only (a softmax
  over feature channels is no mask).

The subclass overrides ``forward`` alone (``__init__`` calls ``UNetDecoder.__init__`` and adds the junctions under
``div_attention``): every state-dict name of the parent is kept, the junctions are ``div_attention.{s-1}.*``;
``compute_conv_feature_map_size`` is the parent's (the network adds the junctions' maps).
"""

from typing import List, Sequence, Type, Union

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.conv import _ConvNd

from dynamic_network_architectures.building_blocks.simple_conv_blocks import ConvDropoutNormReLU
from dynamic_network_architectures.building_blocks.unet_decoder import UNetDecoder

from nnunet_ext.architectures.building_blocks.divergence_attention import (ATTENTION_FORMS, MASKS,
                                                                           absolute_divergence, check_option)
from nnunet_ext.architectures.building_blocks.encoder_settings import encoder_block_kwargs
from nnunet_ext.architectures.building_blocks.onednn_convolution import onednn_conv_op

FEATURE_MASKS = ("heads", "features")


class FeatureDivAttentionJunction(nn.Module):
    """Enhances one decoder stage's features where they disagree with the stage below (module docstring).

    :param conv_op: the plans' convolution class.
    :param channels: ``C_i``, the stage's feature channels.
    :param num_input_channels: channels of the network input, for the side branch.
    :param kernel_size: the stage's kernel (side branch and fusion).
    :param feature_masks: ``"heads"`` or ``"features"``, see the module docstring.
    :param attention: ``"softmax"`` or ``"divergence"`` (divergence_attention.py).
    :param masks: ``"sigmoid"`` or ``"softmax"`` (of the heads' predictions; ``"features"`` takes sigmoid only).
    :param residual: ``E_i = O_i + fusion`` (True) or ``fusion`` alone.
    """

    def __init__(self, conv_op: Type[_ConvNd], channels: int, num_input_channels: int, kernel_size: Sequence[int],
                 feature_masks: str = "heads", attention: str = "divergence", masks: str = "sigmoid",
                 residual: bool = True, **block_kwargs):
        super().__init__()
        self.feature_masks = check_option("feature_masks", feature_masks, FEATURE_MASKS)
        self.attention = check_option("attention", attention, ATTENTION_FORMS)
        self.masks = check_option("masks", masks, MASKS)
        if feature_masks == "features" and masks != "sigmoid":
            raise ValueError("feature_masks='features' takes sigmoid masks of the feature channels; softmax masks "
                             "are masks of class predictions (feature_masks='heads')")
        self.residual = bool(residual)
        self.align = conv_op(channels, channels, 1)
        self.input_features = ConvDropoutNormReLU(onednn_conv_op(conv_op), num_input_channels, channels,
                                                  kernel_size, 1, **block_kwargs)
        self.fusion = ConvDropoutNormReLU(conv_op, channels, channels, kernel_size, 1, **block_kwargs)

    def attention_map(self, upper_features: torch.Tensor, aligned_lower: torch.Tensor,
                      head: nn.Module) -> torch.Tensor:
        """Eq. (2)-(4): ``(B, 1, *S)`` (heads) or ``(B, C_i, *S)`` (features) attention, float32."""
        if self.feature_masks == "heads":
            masks = MASKS[self.masks]
            divergence = absolute_divergence(masks(head(upper_features)), masks(head(aligned_lower)))
            divergence = divergence.mean(dim=1, keepdim=True)
        else:
            divergence = absolute_divergence(torch.sigmoid(upper_features), torch.sigmoid(aligned_lower))
        return ATTENTION_FORMS[self.attention](divergence)

    def forward(self, upper_features: torch.Tensor, upsampled_lower: torch.Tensor, image: torch.Tensor,
                head: nn.Module, return_attention: bool = False):
        """
        :param upper_features: ``(B, C_i, *S)`` the stage's output ``O_i``.
        :param upsampled_lower: ``(B, C_i, *S)`` the decoder's transposed conv of the stage below, ``UpConv(O_{i-1})``.
        :param image: ``(B, C_in, *S_image)`` the network input, area-resized to ``S``.
        :param head: the stage's 1x1 segmentation layer (used by ``feature_masks="heads"``).
        :param return_attention: also return the map (:meth:`attention_map`, float32).
        :return: ``(B, C_i, *S)`` the divergence-enhanced features ``E_i`` (and the map).
        """
        aligned_lower = self.align(upsampled_lower)  # eq. (1)
        attention = self.attention_map(upper_features, aligned_lower, head).to(upper_features.dtype)
        if image.shape[2:] != upper_features.shape[2:]:
            image = F.interpolate(image, size=upper_features.shape[2:], mode="area")
        fusion_input = torch.addcmul(upper_features + aligned_lower, attention, self.input_features(image))  # (5)
        fused = self.fusion(fusion_input)
        enhanced = upper_features + fused if self.residual else fused
        return (enhanced, attention) if return_attention else enhanced

    def extra_repr(self) -> str:
        return (f"feature_masks={self.feature_masks!r}, attention={self.attention!r}, masks={self.masks!r}, "
                f"residual={self.residual}")


class DivAttentionUNetDecoder(UNetDecoder):
    """nnU-Net's ``UNetDecoder`` with a :class:`FeatureDivAttentionJunction` after every stage but the lowest.

    :param encoder, num_classes, n_conv_per_stage, deep_supervision, decoder_kwargs: as ``UNetDecoder`` (the plans'
        values; ``PlainConvUNet`` passes ``nonlin_first``).
    :param num_input_channels: channels of the network input (the side branches').
    :param feature_masks, attention, masks, residual: the junctions' readings (:class:`FeatureDivAttentionJunction`).

    ``forward(skips, image)``: the encoder's skips and the network input; returns what ``UNetDecoder.forward``
    returns (the full-resolution logits, or with ``deep_supervision`` every stage's, full resolution first).
    """

    def __init__(self, encoder: nn.Module, num_classes: int, n_conv_per_stage: Union[int, Sequence[int]],
                 deep_supervision: bool, num_input_channels: int, feature_masks: str = "heads",
                 attention: str = "divergence", masks: str = "sigmoid", residual: bool = True, **decoder_kwargs):
        super().__init__(encoder, num_classes, n_conv_per_stage, deep_supervision, **decoder_kwargs)
        block_kwargs = encoder_block_kwargs(encoder)
        # decoder stage s has encoder stage -(s + 2)'s resolution, channels and kernel
        self.div_attention = nn.ModuleList([
            FeatureDivAttentionJunction(encoder.conv_op, encoder.output_channels[-(s + 2)], num_input_channels,
                                        encoder.kernel_sizes[-(s + 2)], feature_masks=feature_masks,
                                        attention=attention, masks=masks, residual=residual, **block_kwargs)
            for s in range(1, len(self.stages))
        ])

    def forward(self, skips: Sequence[torch.Tensor], image: torch.Tensor, return_attention: bool = False):
        """With ``return_attention`` also every junction's map, lowest first (``(B, 1, *S)`` or ``(B, C_i, *S)``,
        see :meth:`FeatureDivAttentionJunction.attention_map`)."""
        lower = skips[-1]
        seg_outputs, attention = [], []
        for s in range(len(self.stages)):
            upsampled = self.transpconvs[s](lower)
            features = self.stages[s](torch.cat((upsampled, skips[-(s + 2)]), 1))
            if s > 0:
                features = self.div_attention[s - 1](features, upsampled, image, self.seg_layers[s], return_attention)
                if return_attention:
                    features, junction_attention = features
                    attention.append(junction_attention)
            if self.deep_supervision:
                seg_outputs.append(self.seg_layers[s](features))
            elif s == len(self.stages) - 1:
                seg_outputs.append(self.seg_layers[-1](features))
            lower = features
        seg_outputs = seg_outputs[::-1]  # full resolution first
        output = seg_outputs if self.deep_supervision else seg_outputs[0]
        return (output, attention) if return_attention else output
