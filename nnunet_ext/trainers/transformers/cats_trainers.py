"""CATS trainers (:mod:`nnunet_ext.architectures.cats`): nnU-Net's planned U-Net with a ViT encoder beside its CNN
encoder, the ViT's hidden states added to the skips; 12 and 3 blocks at ViT-B width on 16-voxel tokens; ``_Tiny``
variants (64 wide, 4 heads) train on a CPU.

Deep supervision: nnU-Net's, on the planned decoder (all stages kept). The plans' patch is rounded up to a multiple
of 16 (:class:`TokenPatch`, said in the log)."""

from torch import nn

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager

from nnunet_ext.trainers.checkpoint_origin import CheckpointOriginCheck
from nnunet_ext.trainers.network_builders.cats import build_cats
from nnunet_ext.trainers.network_builders.transformer_size import TransformerSize
from nnunet_ext.trainers.registry import register_trainer
from nnunet_ext.trainers.transformers.tiny_width import TINY_WIDTH
from nnunet_ext.trainers.transformers.token_patch import TokenPatch
from nnunet_ext.trainers.transformers.transformer_optimizer import TransformerOptimizer


class CATSArchitecture:
    """Mixin: the CATS network of the class's ``transformer_*`` size."""

    transformer_width, transformer_depth, transformer_heads, transformer_mlp_ratio = 768, 12, 12, 4.0

    @classmethod
    def build_network_architecture(cls, plans_manager: PlansManager, configuration_manager: ConfigurationManager,
                                   num_input_channels: int, num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        return build_cats(plans_manager, configuration_manager, num_input_channels, num_output_channels,
                          enable_deep_supervision, TransformerSize.of_trainer(cls))


@register_trainer("transformer", "CATS: the plans' U-Net with a ViT encoder beside its CNN encoder, hidden states "
                                 "added to the skips", variants=(TINY_WIDTH,), tags=("full_width",),
                  e2e_configuration="2d", e2e_variant=TINY_WIDTH.suffix)
class CATSTrainer(TransformerOptimizer, TokenPatch, CATSArchitecture, CheckpointOriginCheck, nnUNetTrainer):
    """CATS with 12 blocks."""


@register_trainer("transformer", "CATS with 3 transformer blocks", variants=(TINY_WIDTH,), tags=("full_width",))
class CATSTrainer_3b(CATSTrainer):
    transformer_depth = 3
