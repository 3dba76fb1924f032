"""CATS trainers (:mod:`nnunet_ext.architectures.cats`): nnU-Net's planned U-Net with a ViT encoder beside its CNN
encoder, the ViT's hidden states added to the skips; 12 and 3 blocks at ViT-B width on 16-voxel tokens; ``_Tiny``
variants (64 wide, 4 heads) train on a CPU.

Deep supervision: nnU-Net's, on the planned decoder (all stages kept). The plans' patch is rounded up to a multiple
of 16 (:class:`TokenPatch`, said in the log)."""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.trainers.checkpoint_origin import CheckpointOriginCheck
from nnunet_ext.trainers.network_builders.cats import build_cats
from nnunet_ext.trainers.registry import register_trainer
from nnunet_ext.trainers.transformers.tiny_width import TINY_WIDTH
from nnunet_ext.trainers.transformers.token_patch import TokenPatch
from nnunet_ext.trainers.transformers.transformer_architecture import TransformerArchitecture
from nnunet_ext.trainers.transformers.transformer_optimizer import TransformerOptimizer


class CATSArchitecture(TransformerArchitecture):
    """Mixin: the CATS network."""

    network_builder = staticmethod(build_cats)


@register_trainer("transformer", "CATS: the plans' U-Net with a ViT encoder beside its CNN encoder, hidden states "
                                 "added to the skips", variants=(TINY_WIDTH,), tags=("full_width",),
                  e2e_configuration="2d", e2e_variant=TINY_WIDTH.suffix)
class CATSTrainer(TransformerOptimizer, TokenPatch, CATSArchitecture, CheckpointOriginCheck, nnUNetTrainer):
    """CATS with 12 blocks."""


@register_trainer("transformer", "CATS with 3 transformer blocks", variants=(TINY_WIDTH,), tags=("full_width",))
class CATSTrainer_3b(CATSTrainer):
    transformer_depth = 3
