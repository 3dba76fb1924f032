"""The ``*_Short`` trainers: each one is a trainer of ours (or nnU-Net's own, as the baseline) with the short budget
of :mod:`nnunet_ext.trainers.short_budget`."""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.trainers.div_attention_trainer import DivAttentionTrainer
from nnunet_ext.trainers.div_attention_wbce_dice_trainer import DivAttentionWBCEDiceTrainer
from nnunet_ext.trainers.dual_loss_trainers import DivAttentionDualLossTrainer, DualLossTrainer
from nnunet_ext.trainers.lnet_trainer import LNetTrainer
from nnunet_ext.trainers.short_budget import ShortBudget


class PlainUNetTrainer_Short(ShortBudget, nnUNetTrainer):
    """nnU-Net's own ``nnUNetTrainer``, unchanged but for the budget: the baseline at equal budget."""


class DivAttentionTrainer_Short(ShortBudget, DivAttentionTrainer):
    """``DivAttentionTrainer`` with the short budget."""


class DivAttentionWBCEDiceTrainer_Short(ShortBudget, DivAttentionWBCEDiceTrainer):
    """``DivAttentionWBCEDiceTrainer`` with the short budget."""


class LNetTrainer_Short(ShortBudget, LNetTrainer):
    """``LNetTrainer`` (L-Net-8s, dual loss) with the short budget."""


class DualLossTrainer_Short(ShortBudget, DualLossTrainer):
    """``DualLossTrainer`` with the short budget."""


class DivAttentionDualLossTrainer_Short(ShortBudget, DivAttentionDualLossTrainer):
    """``DivAttentionDualLossTrainer`` with the short budget."""
