"""What our blocks read off a planned dynamic-network-architectures encoder: its block settings and the spatial
size of each of its stages."""

from typing import List, Sequence

from torch import nn

BLOCK_SETTING_NAMES = ("conv_bias", "norm_op", "norm_op_kwargs", "dropout_op", "dropout_op_kwargs", "nonlin",
                       "nonlin_kwargs")


def encoder_block_kwargs(encoder: nn.Module) -> dict:
    """The plans' block settings as a dynamic-network-architectures encoder holds them: ``conv_bias``, ``norm_op``,
    ``norm_op_kwargs``, ``dropout_op``, ``dropout_op_kwargs``, ``nonlin``, ``nonlin_kwargs`` (the keyword arguments
    of ``ConvDropoutNormReLU`` / ``StackedConvBlocks``)."""
    return {name: getattr(encoder, name) for name in BLOCK_SETTING_NAMES}


def stage_sizes(input_size: Sequence[int], strides: Sequence[Sequence[int]]) -> List[List[int]]:
    """Spatial size of each encoder stage's output for an input of ``input_size`` (highest resolution first),
    dividing stage by stage as the convolutions do."""
    sizes = []
    for stride in strides:
        input_size = [i // s for i, s in zip(input_size, stride)]
        sizes.append(input_size)
    return sizes
