"""L-Net's dual loss on other networks: nnU-Net's own planned U-Net, and the Div-attention U-Net."""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.trainers.best_checkpoint_metric import BestCheckpointMetricOnLoading
from nnunet_ext.trainers.checkpoint_origin import CheckpointOriginCheck
from nnunet_ext.trainers.div_attention_trainer import DivAttentionTrainer
from nnunet_ext.trainers.dual_loss import DualLoss
from nnunet_ext.trainers.lesion_presence_validation import LesionPresenceValidation
from nnunet_ext.trainers.registry import deprecated_trainer_name, register_trainer


@register_trainer("lnet", "nnU-Net's planned U-Net trained with the dual loss")
class UNetDualLossTrainer(LesionPresenceValidation, DualLoss, CheckpointOriginCheck, BestCheckpointMetricOnLoading,
                          nnUNetTrainer):
    """nnU-Net's planned U-Net trained with L-Net's dual loss."""


@deprecated_trainer_name(UNetDualLossTrainer)
class DualLossTrainer(UNetDualLossTrainer):
    """The name of ``UNetDualLossTrainer`` before the trainer names said the network (nnunet_ext 0.1.0)."""


@register_trainer("lnet", "the Div-attention U-Net trained with the dual loss")
class DivAttentionDualLossTrainer(LesionPresenceValidation, DualLoss, DivAttentionTrainer):
    """Div-attention U-Net trained with L-Net's dual loss."""
