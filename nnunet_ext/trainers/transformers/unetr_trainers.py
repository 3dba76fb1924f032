"""UNETR trainers (:mod:`nnunet_ext.architectures.unetr`): 12 blocks with skips from blocks 3, 6, 9 (UNETR), and 3
blocks with a skip from each (the seminar's compression), at ViT-B width on 16-voxel tokens; ``_Tiny`` variants
(64 wide, 4 heads) train on a CPU.

Deep supervision: off (:class:`WithoutDeepSupervision`; UNETR's decoder has no outputs at nnU-Net's target scales).
The plans' patch is rounded up to a multiple of 16 (:class:`TokenPatch`, said in the log)."""

from torch import nn

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager

from nnunet_ext.trainers.checkpoint_origin import CheckpointOriginCheck
from nnunet_ext.trainers.network_builders.transformer_size import TransformerSize
from nnunet_ext.trainers.network_builders.unetr import build_unetr
from nnunet_ext.trainers.registry import register_trainer
from nnunet_ext.trainers.transformers.tiny_width import TINY_WIDTH
from nnunet_ext.trainers.transformers.token_patch import TokenPatch
from nnunet_ext.trainers.transformers.transformer_optimizer import TransformerOptimizer
from nnunet_ext.trainers.transformers.without_deep_supervision import WithoutDeepSupervision


class UNETRArchitecture:
    """Mixin: the UNETR network of the class's ``transformer_*`` size and ``unetr_feature_size`` (UNETR's 16)."""

    transformer_width, transformer_depth, transformer_heads, transformer_mlp_ratio = 768, 12, 12, 4.0
    unetr_feature_size = 16

    @classmethod
    def build_network_architecture(cls, plans_manager: PlansManager, configuration_manager: ConfigurationManager,
                                   num_input_channels: int, num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        return build_unetr(plans_manager, configuration_manager, num_input_channels, num_output_channels,
                           enable_deep_supervision, TransformerSize.of_trainer(cls), cls.unetr_feature_size)


@register_trainer("transformer", "UNETR: a ViT on 16-voxel patches, skips from 4 evenly spaced blocks, a "
                                 "convolutional decoder", variants=(TINY_WIDTH,), tags=("full_width",),
                  e2e_configuration="3d_fullres", e2e_variant=TINY_WIDTH.suffix)
class UNETRTrainer(TransformerOptimizer, WithoutDeepSupervision, TokenPatch, UNETRArchitecture,
                   CheckpointOriginCheck, nnUNetTrainer):
    """UNETR with 12 blocks."""


@register_trainer("transformer", "UNETR with 3 transformer blocks, a skip from each", variants=(TINY_WIDTH,),
                  tags=("full_width",))
class UNETRTrainer_3b(UNETRTrainer):
    transformer_depth = 3
