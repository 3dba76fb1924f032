"""TransUNet from nnU-Net's plans (:mod:`nnunet_ext.architectures.transunet`)."""

from nnunet_ext.architectures.building_blocks.encoder_settings import stage_sizes
from nnunet_ext.architectures.building_blocks.token_grid import token_grid
from nnunet_ext.architectures.building_blocks.token_transformer import initialize_like_vit
from nnunet_ext.architectures.transunet import TransUNet
from nnunet_ext.trainers.network_builders.cut_planned_unet import build_cut_planned_unet, stage_at_total_stride
from nnunet_ext.trainers.network_builders.planned_unet import require_unet
from nnunet_ext.trainers.network_builders.transformer_size import TransformerSize

TRANSFORMER_STRIDE = 16  # TransUNet's CNN hands the transformer its stride-16 features


def transunet_kept_stages(configuration_manager) -> int:
    """How many of the plans' stages TransUNet keeps: up to the one of total stride 16."""
    return stage_at_total_stride(configuration_manager.network_arch_init_kwargs["strides"], TRANSFORMER_STRIDE) + 1


def build_transunet(plans_manager, configuration_manager, num_input_channels: int, num_output_channels: int,
                    enable_deep_supervision: bool, size: TransformerSize) -> TransUNet:
    kept = transunet_kept_stages(configuration_manager)
    planned = build_cut_planned_unet(configuration_manager, num_input_channels, num_output_channels,
                                     enable_deep_supervision, kept)
    require_unet(planned, configuration_manager, "TransUNet")
    strides = planned.encoder.strides
    grid = stage_sizes(configuration_manager.patch_size, strides)[-1]
    total = [p // g for p, g in zip(configuration_manager.patch_size, grid)]
    token_grid(configuration_manager.patch_size, total, "TransUNet", size.max_tokens)
    network = TransUNet(planned.encoder, planned.decoder, grid, size.width, size.depth, size.heads, size.mlp_ratio)
    network.transformer.apply(initialize_like_vit)
    if hasattr(planned, "initialize"):
        network.embedding.apply(planned.initialize)
        network.projection.apply(planned.initialize)
    return network
