"""The dual loss on other networks: nnU-Net's own U-Net, and the Div-attention U-Net."""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.trainers.checkpoint_origin import CheckpointOriginCheck
from nnunet_ext.trainers.div_attention_trainer import DivAttentionTrainer
from nnunet_ext.trainers.dual_loss import DualLoss
from nnunet_ext.trainers.lesion_presence_validation import LesionPresenceValidation


class DualLossTrainer(LesionPresenceValidation, DualLoss, CheckpointOriginCheck, nnUNetTrainer):
    """nnU-Net's planned U-Net trained with L-Net's dual loss."""


class DivAttentionDualLossTrainer(LesionPresenceValidation, DualLoss, DivAttentionTrainer):
    """Div-attention U-Net trained with L-Net's dual loss."""
