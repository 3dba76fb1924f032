"""nnU-Net's own planned network, which our networks extend."""

from torch import nn

from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

from nnunet_ext.core.errors import UnsupportedConfigurationError

U_NET_ENCODER_ATTRIBUTES = ("output_channels", "strides", "kernel_sizes", "conv_op")


def build_planned_unet(configuration_manager, num_input_channels: int, num_output_channels: int,
                       deep_supervision: bool) -> nn.Module:
    """The whole network nnU-Net's plans describe for ``configuration_manager`` (``PlainConvUNet``,
    ``ResidualEncoderUNet``, ...), built and initialised by nnU-Net's ``get_network_from_plans``."""
    return get_network_from_plans(
        configuration_manager.network_arch_class_name, configuration_manager.network_arch_init_kwargs,
        configuration_manager.network_arch_init_kwargs_req_import, num_input_channels, num_output_channels,
        allow_init=True, deep_supervision=deep_supervision)


def require_unet(network: nn.Module, configuration_manager, what: str, needs_decoder: bool = True) -> None:
    """Raise :class:`UnsupportedConfigurationError` unless the planned ``network`` is a U-Net of
    dynamic-network-architectures (an ``encoder`` with stages, and with ``needs_decoder`` a ``decoder`` of
    per-resolution paths) that ``what`` ("Div-attention", "L-Net", ...) can be built on."""
    encoder, decoder = getattr(network, "encoder", None), getattr(network, "decoder", None)
    encoder_ok = encoder is not None and all(hasattr(encoder, a) for a in U_NET_ENCODER_ATTRIBUTES)
    decoder_ok = decoder is not None and hasattr(decoder, "deep_supervision") and hasattr(decoder, "stages")
    if encoder_ok and (decoder_ok or not needs_decoder):
        return
    parts = "a convolutional encoder and a decoder of per-resolution paths" if needs_decoder else \
        "a convolutional encoder with stages"
    raise UnsupportedConfigurationError(
        f"{what} cannot be built for the configuration with data identifier "
        f"'{configuration_manager.data_identifier}': its network '{configuration_manager.network_arch_class_name}' "
        f"is not a U-Net with {parts}. "
        f"Use plans whose network is PlainConvUNet or ResidualEncoderUNet (nnU-Net's default nnUNetPlans or the "
        f"nnUNetResEncUNet*Plans).")
