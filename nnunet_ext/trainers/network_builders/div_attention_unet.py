"""The Div-attention U-Nets from nnU-Net's plans: junctions over the decoder paths' logits
(:class:`DivAttentionUNet`) or inside the decoder on its features (:class:`DivAttentionFeaturesUNet`)."""

from typing import Optional

from nnunet_ext.architectures.building_blocks.div_attention_decoder import DivAttentionUNetDecoder
from nnunet_ext.architectures.div_attention_features_unet import DivAttentionFeaturesUNet
from nnunet_ext.architectures.div_attention_unet import DivAttentionUNet
from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.trainers.network_builders.planned_unet import build_planned_unet, require_unet


def _planned_unet_with_junctions(configuration_manager, num_input_channels: int, num_output_channels: int,
                                 enable_deep_supervision: bool):
    unet = build_planned_unet(configuration_manager, num_input_channels, num_output_channels,
                              enable_deep_supervision)
    require_unet(unet, configuration_manager, "Div-attention")
    if len(unet.decoder.stages) < 2:
        raise UnsupportedConfigurationError(
            f"Div-attention cannot be built for the configuration with data identifier "
            f"'{configuration_manager.data_identifier}': the network has a single decoder path, so there is no "
            f"junction between adjacent paths. Use a configuration with a larger patch size (more pooling stages).")
    return unet


def build_div_attention_unet(plans_manager, configuration_manager, num_input_channels: int,
                             num_output_channels: int, enable_deep_supervision: bool = True,
                             fusion_channels: Optional[int] = None, attention: str = "divergence",
                             masks: str = "sigmoid", residual: bool = True) -> DivAttentionUNet:
    """nnU-Net's planned U-Net for ``configuration_manager`` with a Div-attention junction between every two
    adjacent decoder paths' logits (same arguments as ``nnUNetTrainer.build_network_architecture``, nnU-Net 2.8,
    plus the junctions' readings, see :class:`DivAttentionJunction`).

    Raises :class:`UnsupportedConfigurationError` for plans whose network has no U-Net decoder paths to join."""
    unet = _planned_unet_with_junctions(configuration_manager, num_input_channels, num_output_channels,
                                        enable_deep_supervision)
    return DivAttentionUNet(unet, num_input_channels, num_output_channels, fusion_channels, attention=attention,
                            masks=masks, residual=residual)


def build_div_attention_features_unet(plans_manager, configuration_manager, num_input_channels: int,
                                      num_output_channels: int, enable_deep_supervision: bool = True,
                                      feature_masks: str = "heads", attention: str = "divergence",
                                      masks: str = "sigmoid", residual: bool = True) -> DivAttentionFeaturesUNet:
    """nnU-Net's planned U-Net with its decoder replaced by :class:`DivAttentionUNetDecoder`, built with the
    arguments nnU-Net's ``PlainConvUNet`` / ``ResidualEncoderUNet`` give their ``UNetDecoder`` (the plans'
    ``n_conv_per_stage_decoder`` and, where the plans have it, ``nonlin_first``), and initialised by the planned
    network's own ``initialize``. Same arguments as :func:`build_div_attention_unet`."""
    unet = _planned_unet_with_junctions(configuration_manager, num_input_channels, num_output_channels,
                                        enable_deep_supervision)
    arch_kwargs = configuration_manager.network_arch_init_kwargs
    decoder_kwargs = {"nonlin_first": arch_kwargs["nonlin_first"]} if "nonlin_first" in arch_kwargs else {}
    decoder = DivAttentionUNetDecoder(unet.encoder, num_output_channels, arch_kwargs["n_conv_per_stage_decoder"],
                                      enable_deep_supervision, num_input_channels, feature_masks=feature_masks,
                                      attention=attention, masks=masks, residual=residual, **decoder_kwargs)
    if hasattr(unet, "initialize"):
        for part in (decoder.stages, decoder.transpconvs, decoder.seg_layers, decoder.div_attention):
            part.apply(unet.initialize)
    return DivAttentionFeaturesUNet(unet.encoder, decoder)
