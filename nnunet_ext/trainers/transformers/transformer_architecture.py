"""Mixin: a transformer network built from the plans by ``network_builder`` at the size of the class's
``transformer_*`` attributes (ViT-B by default: :class:`TransformerSize`)."""

from torch import nn

from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager

from nnunet_ext.trainers.network_builders.transformer_size import TransformerSize


class TransformerArchitecture:
    transformer_width, transformer_depth, transformer_heads, transformer_mlp_ratio = 768, 12, 12, 4.0
    network_builder = None  # build_<network>(plans_manager, configuration_manager, in, out, deep_supervision, size)

    @classmethod
    def network_options(cls) -> dict:
        """Further keyword arguments of ``network_builder`` (UNETR's feature size)."""
        return {}

    @classmethod
    def build_network_architecture(cls, plans_manager: PlansManager, configuration_manager: ConfigurationManager,
                                   num_input_channels: int, num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        return cls.network_builder(plans_manager, configuration_manager, num_input_channels, num_output_channels,
                                   enable_deep_supervision, TransformerSize.of_trainer(cls), **cls.network_options())
