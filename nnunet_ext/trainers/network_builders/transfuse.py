"""TransFuse from nnU-Net's plans (:mod:`nnunet_ext.architectures.transfuse`)."""

from nnunet_ext.architectures.building_blocks.token_grid import token_grid
from nnunet_ext.architectures.building_blocks.token_transformer import initialize_like_vit
from nnunet_ext.architectures.transfuse import TransFuse
from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.trainers.network_builders.cut_planned_unet import build_cut_planned_unet
from nnunet_ext.trainers.network_builders.planned_unet import require_unet
from nnunet_ext.trainers.network_builders.transformer_size import TransformerSize
from nnunet_ext.trainers.network_builders.transunet import transunet_kept_stages


def build_transfuse(plans_manager, configuration_manager, num_input_channels: int, num_output_channels: int,
                    enable_deep_supervision: bool, size: TransformerSize) -> TransFuse:
    patch = configuration_manager.patch_size
    grid = token_grid(patch, [size.token_size] * len(patch), "TransFuse", size.max_tokens)
    kept = transunet_kept_stages(configuration_manager)  # the CNN branch stops at total stride 16, as TransUNet's
    if kept < 3:
        raise UnsupportedConfigurationError(
            f"TransFuse fuses the CNN's three deepest stages up to total stride 16, but the configuration with data "
            f"identifier '{configuration_manager.data_identifier}' has only {kept} stage(s) there.",
            fix="use plans with at least three encoder stages (nnU-Net's default plans have 5 to 8)")
    planned = build_cut_planned_unet(configuration_manager, num_input_channels, num_output_channels, False, kept)
    require_unet(planned, configuration_manager, "TransFuse", needs_decoder=False)
    network = TransFuse(planned.encoder, num_input_channels, num_output_channels, grid, [size.token_size] * len(patch),
                        size.width, size.depth, size.heads, size.mlp_ratio, enable_deep_supervision)
    if hasattr(planned, "initialize"):
        for part in (network.embedding, network.transformer_up, network.decoder):
            part.apply(planned.initialize)
    network.transformer.apply(initialize_like_vit)
    return network
