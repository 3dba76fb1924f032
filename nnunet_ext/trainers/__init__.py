"""nnU-Net trainer subclasses. Every public trainer is listed in ``__all__``: nnU-Net's lookup finds it by name
through ``nnunet_ext/trainer_lookup`` (see ``nnunet_ext.lookup_hook``)."""

from nnunet_ext.trainers.div_attention_trainer import DivAttentionTrainer
from nnunet_ext.trainers.div_attention_wbce_dice_trainer import DivAttentionWBCEDiceTrainer
from nnunet_ext.trainers.short_variants import (DivAttentionTrainer_Short, DivAttentionWBCEDiceTrainer_Short,
                                                PlainUNetTrainer_Short)

__all__ = ["DivAttentionTrainer", "DivAttentionWBCEDiceTrainer", "DivAttentionTrainer_Short",
           "DivAttentionWBCEDiceTrainer_Short", "PlainUNetTrainer_Short"]
