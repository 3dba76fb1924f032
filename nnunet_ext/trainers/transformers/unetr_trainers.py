"""UNETR trainers (:mod:`nnunet_ext.architectures.unetr`): 12 blocks with skips from blocks 3, 6, 9 (UNETR), and 3
blocks with a skip from each (the seminar's compression), at ViT-B width on 16-voxel tokens; ``_Tiny`` variants
(64 wide, 4 heads) train on a CPU.

Deep supervision: off (:class:`WithoutDeepSupervision`; UNETR's decoder has no outputs at nnU-Net's target scales).
The plans' patch is rounded up to a multiple of 16 (:class:`TokenPatch`, said in the log)."""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.trainers.checkpoint_origin import CheckpointOriginCheck
from nnunet_ext.trainers.network_builders.unetr import build_unetr
from nnunet_ext.trainers.registry import register_trainer
from nnunet_ext.trainers.transformers.tiny_width import TINY_WIDTH
from nnunet_ext.trainers.transformers.token_patch import TokenPatch
from nnunet_ext.trainers.transformers.transformer_architecture import TransformerArchitecture
from nnunet_ext.trainers.transformers.transformer_optimizer import TransformerOptimizer
from nnunet_ext.trainers.transformers.without_deep_supervision import WithoutDeepSupervision


class UNETRArchitecture(TransformerArchitecture):
    """Mixin: the UNETR network with ``unetr_feature_size`` (UNETR's 16)."""

    network_builder = staticmethod(build_unetr)
    unetr_feature_size = 16

    @classmethod
    def network_options(cls) -> dict:
        return {"feature_size": cls.unetr_feature_size}


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
