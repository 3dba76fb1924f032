"""UNETR from nnU-Net's plans (:mod:`nnunet_ext.architectures.unetr`): the ViT's token grid from the plans' patch,
the convolution, norm and nonlinearity from the plans' encoder."""

from nnunet_ext.architectures.building_blocks.encoder_settings import encoder_block_kwargs
from nnunet_ext.architectures.building_blocks.token_grid import token_grid
from nnunet_ext.architectures.building_blocks.token_transformer import initialize_like_vit
from nnunet_ext.architectures.unetr import UNETR
from nnunet_ext.trainers.network_builders.planned_unet import build_planned_unet, require_unet
from nnunet_ext.trainers.network_builders.transformer_size import TransformerSize


def build_unetr(plans_manager, configuration_manager, num_input_channels: int, num_output_channels: int,
                enable_deep_supervision: bool, size: TransformerSize, feature_size: int = 16,
                network_class: type = UNETR, **options) -> UNETR:
    """UNETR of ``size`` for the plans' patch (each axis a multiple of ``size.token_size``, else an
    :class:`UnsupportedConfigurationError` naming a patch size that works).

    ``enable_deep_supervision`` is accepted for nnU-Net's ``build_network_architecture`` signature and has no
    effect: UNETR has no deep-supervision outputs (its trainers turn deep supervision off). The planned U-Net is
    built only to read the plans' ``conv_op`` and block settings; convolutions are initialised as it initialises
    its own (He), the transformer as ViT. ``network_class`` and ``options``: a subclass of UNETR with its own
    keyword arguments (:class:`~nnunet_ext.architectures.div_attention_unetr.DivAttentionUNETR`)."""
    tokens_per_axis = [size.token_size] * len(configuration_manager.patch_size)
    grid = token_grid(configuration_manager.patch_size, tokens_per_axis, "UNETR", size.max_tokens)
    planned = build_planned_unet(configuration_manager, num_input_channels, num_output_channels, False)
    require_unet(planned, configuration_manager, "UNETR", needs_decoder=False)
    network = network_class(planned.encoder.conv_op, num_input_channels, num_output_channels, grid, tokens_per_axis,
                            size.width, size.depth, size.heads, size.mlp_ratio, feature_size,
                            encoder_block_kwargs(planned.encoder), **options)
    if hasattr(planned, "initialize"):
        network.apply(planned.initialize)
    network.transformer.apply(initialize_like_vit)
    return network
