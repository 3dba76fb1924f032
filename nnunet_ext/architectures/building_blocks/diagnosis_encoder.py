"""The diagnosis CNN of a segmentation-assisted diagnosis network: a dynamic-network-architectures encoder with
the same ``conv_op``, kernel sizes, strides and block settings as the segmentation encoder nnU-Net planned."""

from typing import Optional, Sequence

from torch import nn

from dynamic_network_architectures.building_blocks.plain_conv_encoder import PlainConvEncoder

from nnunet_ext.architectures.building_blocks.encoder_settings import encoder_block_kwargs


def build_diagnosis_encoder(segmentation_encoder: nn.Module, input_channels: int,
                            features_per_stage: Optional[Sequence[int]] = None,
                            n_conv_per_stage: int = 2) -> PlainConvEncoder:
    """A ``PlainConvEncoder`` (``return_skips=True``) shaped like ``segmentation_encoder``.

    :param segmentation_encoder: the planned network's encoder (``PlainConvEncoder`` or ``ResidualEncoder``); its
        ``conv_op``, ``kernel_sizes``, ``strides`` and norm/nonlinearity settings are reused, so 2D and 3D plans both
        work and the stage sizes match the segmentation encoder's stage by stage.
    :param input_channels: channels of the diagnosis input (image channels, or image + segmentation probabilities).
    :param features_per_stage: channels per stage; defaults to the segmentation encoder's.
    :return: an encoder whose ``forward(x [B, input_channels, *S])`` returns one feature map per stage,
        ``[B, F_s, *S / stride_s]``, highest resolution first.
    """
    features = list(segmentation_encoder.output_channels if features_per_stage is None else features_per_stage)
    if len(features) != len(segmentation_encoder.strides):
        raise ValueError(f"features_per_stage has {len(features)} entries; the planned encoder has "
                         f"{len(segmentation_encoder.strides)} stages.")
    return PlainConvEncoder(
        input_channels, len(features), features, segmentation_encoder.conv_op, segmentation_encoder.kernel_sizes,
        segmentation_encoder.strides, n_conv_per_stage, return_skips=True,
        **encoder_block_kwargs(segmentation_encoder))
