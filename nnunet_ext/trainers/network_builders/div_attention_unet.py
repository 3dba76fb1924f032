"""The Div-attention U-Net from nnU-Net's plans."""

from typing import Optional

from nnunet_ext.architectures.div_attention_unet import DivAttentionUNet
from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.trainers.network_builders.planned_unet import build_planned_unet, require_unet


def build_div_attention_unet(plans_manager, configuration_manager, num_input_channels: int,
                             num_output_channels: int, enable_deep_supervision: bool = True,
                             fusion_channels: Optional[int] = None) -> DivAttentionUNet:
    """nnU-Net's planned U-Net for ``configuration_manager`` with a Div-attention junction between every two
    adjacent decoder paths (same arguments as ``nnUNetTrainer.build_network_architecture``, nnU-Net 2.8).

    Raises :class:`UnsupportedConfigurationError` for plans whose network has no U-Net decoder paths to join."""
    unet = build_planned_unet(configuration_manager, num_input_channels, num_output_channels,
                              enable_deep_supervision)
    require_unet(unet, configuration_manager, "Div-attention")
    if len(unet.decoder.stages) < 2:
        raise UnsupportedConfigurationError(
            f"Div-attention cannot be built for the configuration with data identifier "
            f"'{configuration_manager.data_identifier}': the network has a single decoder path, so there is no "
            f"junction between adjacent paths. Use a configuration with a larger patch size (more pooling stages).")
    return DivAttentionUNet(unet, num_input_channels, num_output_channels, fusion_channels)
