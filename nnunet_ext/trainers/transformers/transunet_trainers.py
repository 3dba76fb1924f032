"""TransUNet trainers (:mod:`nnunet_ext.architectures.transunet`): 12, 3, 1 and 0 transformer blocks (the seminar's
compression: TransUNet with 1 block keeps or improves Dice with 74 % fewer parameters; 0 blocks is the ablation
Primus's authors run), at ViT-B width; ``_Tiny`` variants (64 wide, 4 heads) train on a CPU.

Deep supervision: nnU-Net's, on the planned decoder of the kept stages (:func:`cut_deep_supervision_scales`)."""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.trainers.checkpoint_origin import CheckpointOriginCheck
from nnunet_ext.trainers.network_builders.cut_planned_unet import cut_deep_supervision_scales
from nnunet_ext.trainers.network_builders.transunet import build_transunet, transunet_kept_stages
from nnunet_ext.trainers.registry import register_trainer
from nnunet_ext.trainers.transformers.tiny_width import TINY_WIDTH
from nnunet_ext.trainers.transformers.transformer_architecture import TransformerArchitecture
from nnunet_ext.trainers.transformers.transformer_optimizer import TransformerOptimizer


class TransUNetArchitecture(TransformerArchitecture):
    """Mixin: the TransUNet network and its deep-supervision scales (the two go together: the decoder has outputs
    for the kept stages only)."""

    network_builder = staticmethod(build_transunet)

    def _get_deep_supervision_scales(self):
        if not self.enable_deep_supervision:
            return None
        return cut_deep_supervision_scales(self.configuration_manager.pool_op_kernel_sizes,
                                           transunet_kept_stages(self.configuration_manager))


@register_trainer("transformer", "TransUNet: the plans' CNN encoder to stride 16, 12 ViT blocks on its features, "
                                 "the plans' decoder", variants=(TINY_WIDTH,), tags=("full_width",),
                  e2e_configuration="2d", e2e_variant=TINY_WIDTH.suffix)
class TransUNetTrainer(TransformerOptimizer, TransUNetArchitecture, CheckpointOriginCheck, nnUNetTrainer):
    """TransUNet with 12 blocks."""


@register_trainer("transformer", "TransUNet with 3 transformer blocks", variants=(TINY_WIDTH,), tags=("full_width",))
class TransUNetTrainer_3b(TransUNetTrainer):
    transformer_depth = 3


@register_trainer("transformer", "TransUNet with 1 transformer block", variants=(TINY_WIDTH,), tags=("full_width",))
class TransUNetTrainer_1b(TransUNetTrainer):
    transformer_depth = 1


@register_trainer("transformer", "TransUNet without transformer blocks (embedding and projection kept: the "
                                 "ablation)", variants=(TINY_WIDTH,), tags=("full_width",))
class TransUNetTrainer_0b(TransUNetTrainer):
    transformer_depth = 0
