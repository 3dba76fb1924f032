"""CATS from nnU-Net's plans (:mod:`nnunet_ext.architectures.cats`): the full planned U-Net with a ViT path added
to its skips."""

from nnunet_ext.architectures.building_blocks.token_grid import token_grid
from nnunet_ext.architectures.building_blocks.token_transformer import initialize_like_vit
from nnunet_ext.architectures.cats import CATS
from nnunet_ext.trainers.network_builders.planned_unet import build_planned_unet, require_unet
from nnunet_ext.trainers.network_builders.transformer_size import TransformerSize


def build_cats(plans_manager, configuration_manager, num_input_channels: int, num_output_channels: int,
               enable_deep_supervision: bool, size: TransformerSize) -> CATS:
    """CATS of ``size`` on the planned U-Net (PlainConv or ResEnc) for the plans' patch (each axis a multiple of
    ``size.token_size``, else an :class:`UnsupportedConfigurationError` naming a patch size that works).

    Deep supervision is the planned decoder's (``enable_deep_supervision``): the network returns what the planned
    U-Net returns. The planned part is initialised by nnU-Net, the ViT path's convolutions as the planned network
    initialises its own (He), the transformer as ViT."""
    tokens_per_axis = [size.token_size] * len(configuration_manager.patch_size)
    grid = token_grid(configuration_manager.patch_size, tokens_per_axis, "CATS", size.max_tokens)
    planned = build_planned_unet(configuration_manager, num_input_channels, num_output_channels,
                                 enable_deep_supervision)
    require_unet(planned, configuration_manager, "CATS")
    network = CATS(planned.encoder, planned.decoder, num_input_channels, grid, tokens_per_axis, size.width,
                   size.depth, size.heads, size.mlp_ratio)
    if hasattr(planned, "initialize"):
        network.embedding.apply(planned.initialize)
        network.skip_upsamplers.apply(planned.initialize)
    network.transformer.apply(initialize_like_vit)
    return network
