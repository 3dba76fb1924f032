"""One Div-attention module at the junction of two adjacent decoder paths (Jiang et al., eq. 1-5, Fig. 1b).

Which tensors are the paths' "outputs" ``O``: eq. (2)-(3) call ``Sigmoid(O)`` the *predicted masks* of the two
paths and the paper's point is the divergence between *predictions* made at different scales, so ``O_i`` is the
upper path's segmentation logits (``K`` channels, from nnU-Net's own per-stage 1x1 segmentation layer) and
``O_{i-1}`` is the output of the junction below (the lowest path's logits at the bottom of the chain). Working in
the ``K`` prediction channels, not in the decoder's feature channels, keeps the module's cost small next to the
U-Net it is plugged into.

Per junction, all built from the plans' ``conv_op`` (and the norm, non-linearity and kernel size of that stage)::

    O_{i-1}' = Conv1x1(UpConv(O_{i-1}))                     eq. (1)  transposed conv with the decoder's stride
    M_i, M_{i-1} = masks(O_i), masks(O_{i-1}')              eq. (2), (3)  masks: "sigmoid" (default) or "softmax"
    attn = attention(M_i, M_{i-1})                          eq. (4)  "divergence" (default) or "softmax", see
                                                                     divergence_attention.py for both readings
    F_i = ConvNormNonlin(resize(image))                     side branch: the network input at this path's size
    M_ref = attn * F_i                                      eq. (5)
    output = O_i + Conv1x1(ConvNormNonlin(O_i + O_{i-1}' + M_ref))
                                                            "fused with O_{i-1} and O_i by adding and convolutions";
                                                            the 1x1 layer predicts the intermediate output

With ``residual=True`` (the default) the fused map is *added* to the upper path's prediction ``O_i`` (the residual
reading of "fused by adding"): each junction refines nnU-Net's own prediction of its path instead of replacing it
(why: docs/decisions.md, "Div-attention: the residual"). With ``residual=False`` the output is the fusion's
prediction ``Conv1x1(ConvNormNonlin(...))`` alone, the paper's figure read without a skip around the fusion.

The options (``attention``, ``masks``, ``residual``) are fixed at construction and shown by ``repr``. The defaults
are the ones the ablation of issue 11 chose (README, "Ablation on the real BraTS sample"): the paper's literal
``"divergence"`` map; ``attention="softmax"`` is the network of issue 2 (same parameters).
"""

from typing import List, Sequence, Tuple, Type, Union

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.conv import _ConvNd

from dynamic_network_architectures.building_blocks.helper import get_matching_convtransp
from dynamic_network_architectures.building_blocks.simple_conv_blocks import ConvDropoutNormReLU

from nnunet_ext.architectures.building_blocks.divergence_attention import (ATTENTION_FORMS, MASKS, check_option,
                                                                           divergence_attention, divergence_map)
from nnunet_ext.architectures.building_blocks.onednn_convolution import onednn_conv_op


# the functional form of the plans' transposed convolution, by the tensor's (B, C, *spatial) dimensionality
TRANSPOSED_CONVOLUTION_OF_NDIM = {3: F.conv_transpose1d, 4: F.conv_transpose2d, 5: F.conv_transpose3d}


class DivAttentionJunction(nn.Module):
    """Refines the upper path's prediction where it disagrees with the path below.

    :param conv_op: the plans' convolution class (``nn.Conv2d`` or ``nn.Conv3d``); every other op is derived from it.
    :param num_classes: ``K``, the number of segmentation outputs (classes incl. background, or regions).
    :param num_input_channels: channels of the network input (the image), for the side branch.
    :param upsample_stride: stride between the lower and the upper path (the decoder's transposed-conv stride).
    :param kernel_size: kernel of the side-branch and fusion convolutions (the plans' kernel at this resolution).
    :param fusion_channels: width of the fused, divergence-enhanced feature map.
    :param block_kwargs: ``conv_bias``, ``norm_op``, ``norm_op_kwargs``, ``dropout_op``, ``dropout_op_kwargs``,
        ``nonlin``, ``nonlin_kwargs`` as the plans give them (passed to dynamic-network-architectures' blocks).
    :param attention: eq. (4)'s reading, ``"softmax"`` or ``"divergence"`` (see divergence_attention.py).
    :param masks: eq. (2)-(3)'s masks, ``"sigmoid"`` or ``"softmax"`` over the channels (label datasets only).
    :param residual: add the fusion's prediction to ``O_i`` (True) or output it alone (False).
    """

    def __init__(self, conv_op: Type[_ConvNd], num_classes: int, num_input_channels: int,
                 upsample_stride: Sequence[int], kernel_size: Sequence[int], fusion_channels: int,
                 attention: str = "divergence", masks: str = "sigmoid", residual: bool = True, **block_kwargs):
        super().__init__()
        self.attention = check_option("attention", attention, ATTENTION_FORMS)
        self.masks = check_option("masks", masks, MASKS)
        self.residual = bool(residual)
        transposed_conv_op = get_matching_convtransp(conv_op=conv_op)
        self.upsample = transposed_conv_op(num_classes, num_classes, upsample_stride, upsample_stride)
        self.align = conv_op(num_classes, num_classes, 1)
        few_channels_conv_op = onednn_conv_op(conv_op)  # see onednn_convolution.py: 5 % of the time at batch 1
        self.input_features = ConvDropoutNormReLU(few_channels_conv_op, num_input_channels, num_classes, kernel_size,
                                                  1, **block_kwargs)
        self.fusion = ConvDropoutNormReLU(few_channels_conv_op, num_classes, fusion_channels, kernel_size, 1,
                                          **block_kwargs)
        self.prediction = conv_op(fusion_channels, num_classes, 1)

    def align_lower(self, lower_output: torch.Tensor) -> torch.Tensor:
        """Eq. (1): ``(B, K, *lower_spatial)`` -> ``(B, K, *upper_spatial)``, ``align(upsample(O_{i-1}))``.

        Both maps are linear, so they run as one transposed convolution whose kernel is the 1x1 layer applied to the
        transposed convolution's kernel (``W[c, o] = sum_m A[o, m] U[c, m]``, bias ``A b_U + b_A``): one full-size
        pass forward and backward instead of two, with the two layers' parameters (and state-dict names) kept.
        """
        upsample, align = self.upsample, self.align
        align_matrix = align.weight.flatten(1)  # (K_out, K_mid)
        weight = torch.einsum("om,cm...->co...", align_matrix, upsample.weight)
        bias = align.bias + align_matrix @ upsample.bias
        transposed_convolution = TRANSPOSED_CONVOLUTION_OF_NDIM[lower_output.ndim]  # covered by autocast
        return transposed_convolution(lower_output, weight, bias, upsample.stride, upsample.padding,
                                      upsample.output_padding, 1, upsample.dilation)

    def attention_map(self, upper_logits: torch.Tensor, aligned_lower: torch.Tensor) -> torch.Tensor:
        """Eq. (2)-(4): ``(B, K, *spatial)`` attention, largest where the two paths' masks disagree."""
        masks = MASKS[self.masks]
        attention = divergence_attention if self.attention == "softmax" else divergence_map
        return attention(masks(upper_logits), masks(aligned_lower))

    def forward(self, upper_logits: torch.Tensor, lower_output: torch.Tensor, image: torch.Tensor,
                return_attention: bool = False) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """
        :param upper_logits: ``(B, K, *S)`` the upper path's segmentation logits ``O_i``.
        :param lower_output: ``(B, K, *S / stride)`` the lower path's output ``O_{i-1}``.
        :param image: ``(B, C_in, *S_image)`` the network input; area-resized to ``S`` when ``S != S_image``.
        :param return_attention: also return eq. (4)'s map ``attn`` ``(B, K, *S)`` (float32).
        :return: ``(B, K, *S)`` the refined segmentation logits of the upper path (and the map).
        """
        aligned_lower = self.align_lower(lower_output)
        attention = self.attention_map(upper_logits, aligned_lower)
        if image.shape[2:] != upper_logits.shape[2:]:
            image = F.interpolate(image, size=upper_logits.shape[2:], mode="area")
        fusion_input = torch.addcmul(upper_logits + aligned_lower, attention, self.input_features(image))  # eq. (5)
        prediction = self.prediction(self.fusion(fusion_input))
        refined = upper_logits + prediction if self.residual else prediction
        return (refined, attention) if return_attention else refined

    def extra_repr(self) -> str:
        return f"attention={self.attention!r}, masks={self.masks!r}, residual={self.residual}"


def refine_paths(junctions: Sequence[DivAttentionJunction], path_logits: Sequence[torch.Tensor], image: torch.Tensor,
                 return_attention: bool = False) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """The chain of junctions over a decoder's paths: ``R_0 = P_0``, ``R_s = junction_s(P_s, R_{s-1}, image)``.

    :param path_logits: ``[P_0 (lowest), ..., P_{S-1} (full resolution)]``, each ``(B, K, *path_size)``.
    :return: the refined paths ``[R_{S-1}, ..., R_0]`` (full resolution first, as nnU-Net's deep supervision expects)
        and, with ``return_attention``, each junction's map ``attn`` ``(B, K, *path_size)``, lowest junction first
        (else an empty list).
    """
    refined, attention = [path_logits[0]], []
    for junction, upper_logits in zip(junctions, path_logits[1:]):
        if return_attention:
            output, junction_attention = junction(upper_logits, refined[-1], image, return_attention=True)
            attention.append(junction_attention)
        else:
            output = junction(upper_logits, refined[-1], image)
        refined.append(output)
    return refined[::-1], attention
