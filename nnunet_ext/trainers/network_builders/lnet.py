"""L-Net-Ns from nnU-Net's plans."""

from nnunet_ext.architectures.building_blocks.lnet_decoder import LNetDecoder
from nnunet_ext.architectures.lnet import LNet
from nnunet_ext.trainers.network_builders.planned_unet import build_planned_unet, require_unet


def build_lnet(plans_manager, configuration_manager, num_input_channels: int, num_output_channels: int,
               enable_deep_supervision: bool = True, output_stride: int = 8) -> LNet:
    """L-Net-``output_stride``s on the plans' encoder (same arguments as ``build_network_architecture``); the
    expansive path is initialised as nnU-Net initialises the planned network."""
    planned = build_planned_unet(configuration_manager, num_input_channels, num_output_channels,
                                 enable_deep_supervision)
    require_unet(planned, configuration_manager, "L-Net", needs_decoder=False)
    n_conv = configuration_manager.network_arch_init_kwargs.get("n_conv_per_stage_decoder", 2)
    decoder = LNetDecoder(planned.encoder, num_output_channels, n_conv, output_stride, enable_deep_supervision)
    network = LNet(planned.encoder, decoder)
    if hasattr(planned, "initialize"):
        decoder.apply(planned.initialize)
    return network
