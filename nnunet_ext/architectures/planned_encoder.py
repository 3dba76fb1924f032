"""What our architectures take from the network nnU-Net's plans describe: the network itself, its encoder's
block settings, and the spatial size of each encoder stage."""

from typing import List, Sequence

from torch import nn

from nnunetv2.utilities.get_network_from_plans import get_network_from_plans


def build_planned_network(configuration_manager, num_input_channels: int, num_output_channels: int,
                          deep_supervision: bool) -> nn.Module:
    """nnU-Net's own network for ``configuration_manager`` (e.g. ``PlainConvUNet``, ``ResidualEncoderUNet``),
    built and initialised by nnU-Net's ``get_network_from_plans``."""
    return get_network_from_plans(
        configuration_manager.network_arch_class_name, configuration_manager.network_arch_init_kwargs,
        configuration_manager.network_arch_init_kwargs_req_import, num_input_channels, num_output_channels,
        allow_init=True, deep_supervision=deep_supervision)


def encoder_block_kwargs(encoder: nn.Module) -> dict:
    """The plans' block settings as a dynamic-network-architectures encoder holds them: ``conv_bias``, ``norm_op``,
    ``norm_op_kwargs``, ``dropout_op``, ``dropout_op_kwargs``, ``nonlin``, ``nonlin_kwargs`` (the keyword arguments
    of ``ConvDropoutNormReLU`` / ``StackedConvBlocks``)."""
    names = ("conv_bias", "norm_op", "norm_op_kwargs", "dropout_op", "dropout_op_kwargs", "nonlin", "nonlin_kwargs")
    return {name: getattr(encoder, name) for name in names}


def stage_sizes(input_size: Sequence[int], strides: Sequence[Sequence[int]]) -> List[List[int]]:
    """Spatial size of each encoder stage's output for an input of ``input_size`` (highest resolution first),
    dividing stage by stage as the convolutions do."""
    sizes = []
    for stride in strides:
        input_size = [i // s for i, s in zip(input_size, stride)]
        sizes.append(input_size)
    return sizes
