"""The TransFuse trainer (:mod:`nnunet_ext.architectures.transfuse`) at ViT-B width on 16-voxel tokens; a ``_Tiny``
variant (64 wide, 4 heads) trains on a CPU.

The three losses: nnU-Net's loss (Dice + CE, or Dice + BCE for regions) on each of the final, transformer and fused
heads against the full-resolution target, weighted 0.5, 0.3 and 0.2, the weights of the authors' training script
(``train_isic.py``: ``loss = 0.5 * loss2 + 0.3 * loss3 + 0.2 * loss4``, ``loss2`` on the final map, ``loss3`` on the
transformer's, ``loss4`` on the fused one; the paper names no weights). nnU-Net's deep-supervision machinery carries
them: three target "scales" of 1 (the data loader hands the full-resolution target three times) and the wrapper's
weights set to these three. nnU-Net's toggle switches the network to the final head alone for validation and
prediction. The plans' patch is rounded up to a multiple of 16 (:class:`TokenPatch`, said in the log)."""

from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.trainers.checkpoint_origin import CheckpointOriginCheck
from nnunet_ext.trainers.network_builders.transfuse import build_transfuse
from nnunet_ext.trainers.registry import register_trainer
from nnunet_ext.trainers.transformers.tiny_width import TINY_WIDTH
from nnunet_ext.trainers.transformers.token_patch import TokenPatch
from nnunet_ext.trainers.transformers.transformer_architecture import TransformerArchitecture
from nnunet_ext.trainers.transformers.transformer_optimizer import TransformerOptimizer


class TransFuseArchitecture(TransformerArchitecture):
    """Mixin: the TransFuse network, its three full-resolution targets and the three losses' weights (the three go
    together)."""

    network_builder = staticmethod(build_transfuse)
    transfuse_loss_weights = (0.5, 0.3, 0.2)  # final, transformer, fused head
    deep_supervision_weights_are_the_trainers = True  # nnU-Net's DDP/compile rule for the lowest weight not applied

    def _get_deep_supervision_scales(self):
        if not self.enable_deep_supervision:
            return None
        return [[1.0] * len(self.configuration_manager.patch_size)] * len(self.transfuse_loss_weights)

    def _build_loss(self):
        loss = super()._build_loss()
        if isinstance(loss, DeepSupervisionWrapper):
            loss.weight_factors = tuple(self.transfuse_loss_weights)
        return loss


@register_trainer("transformer", "TransFuse: the plans' CNN encoder to stride 16 beside a ViT, BiFusion at 3 "
                                 "scales, an attention-gated decoder, three losses", variants=(TINY_WIDTH,),
                  tags=("full_width",), e2e_configuration="3d_fullres", e2e_variant=TINY_WIDTH.suffix)
class TransFuseTrainer(TransformerOptimizer, TokenPatch, TransFuseArchitecture, CheckpointOriginCheck,
                       nnUNetTrainer):
    """TransFuse with 12 blocks."""
