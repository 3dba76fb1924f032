"""nnU-Net trainer subclasses. Every public trainer is listed in ``__all__``: nnU-Net's lookup finds it by name
through ``nnunet_ext/trainer_lookup`` (see ``nnunet_ext.lookup_hook``)."""

from nnunet_ext.trainers.div_attention_trainer import DivAttentionTrainer
from nnunet_ext.trainers.div_attention_wbce_dice_trainer import DivAttentionWBCEDiceTrainer
from nnunet_ext.trainers.dual_loss_trainers import DivAttentionDualLossTrainer, DualLossTrainer
from nnunet_ext.trainers.lnet_trainer import LNetTrainer, LNetTrainer_4s, LNetTrainer_16s, LNetTrainer_32s
from nnunet_ext.trainers.short_variants import (DivAttentionDualLossTrainer_Short, DivAttentionTrainer_Short,
                                                DivAttentionWBCEDiceTrainer_Short, DualLossTrainer_Short,
                                                LNetTrainer_Short, PlainUNetTrainer_Short)

from nnunet_ext.trainers.diagnosis.diagnosis_trainers import (
    BaseCatDiagnosisTrainer, BaseCatDiagnosisTrainer_FrozenSegmentation, BaseMultiDiagnosisTrainer,
    BaseMultiDiagnosisTrainer_PretrainedSegmentation, BaseROIDiagnosisTrainer, BaseROIDiagnosisTrainer_FrozenSegmentation,
    ImageOnlyDiagnosisTrainer, ImageOnlyDiagnosisTrainer_FrozenSegmentation, SeATransDiagnosisTrainer,
    SeATransDiagnosisTrainer_FrozenSegmentation, SiANCWMaxPoolDiagnosisTrainer,
    SiANCWMaxPoolDiagnosisTrainer_FrozenSegmentation, SiANDiagnosisTrainer, SiANDiagnosisTrainer_FrozenSegmentation)
from nnunet_ext.trainers.diagnosis.short_variants import (
    BaseCatDiagnosisTrainer_FrozenSegmentation_Short, BaseMultiDiagnosisTrainer_PretrainedSegmentation_Short,
    BaseMultiDiagnosisTrainer_Short, BaseROIDiagnosisTrainer_FrozenSegmentation_Short,
    ImageOnlyDiagnosisTrainer_FrozenSegmentation_Short, SeATransDiagnosisTrainer_FrozenSegmentation_Short,
    SiANDiagnosisTrainer_FrozenSegmentation_Short, SiANDiagnosisTrainer_Short)

DIAGNOSIS_TRAINERS = [
    "ImageOnlyDiagnosisTrainer", "BaseMultiDiagnosisTrainer", "BaseCatDiagnosisTrainer", "BaseROIDiagnosisTrainer",
    "SiANDiagnosisTrainer", "SiANCWMaxPoolDiagnosisTrainer", "SeATransDiagnosisTrainer",
    "ImageOnlyDiagnosisTrainer_FrozenSegmentation", "BaseCatDiagnosisTrainer_FrozenSegmentation",
    "BaseROIDiagnosisTrainer_FrozenSegmentation", "SiANDiagnosisTrainer_FrozenSegmentation",
    "SiANCWMaxPoolDiagnosisTrainer_FrozenSegmentation", "SeATransDiagnosisTrainer_FrozenSegmentation",
    "BaseMultiDiagnosisTrainer_PretrainedSegmentation",
    "SiANDiagnosisTrainer_Short", "BaseMultiDiagnosisTrainer_Short", "ImageOnlyDiagnosisTrainer_FrozenSegmentation_Short",
    "BaseMultiDiagnosisTrainer_PretrainedSegmentation_Short", "BaseCatDiagnosisTrainer_FrozenSegmentation_Short",
    "BaseROIDiagnosisTrainer_FrozenSegmentation_Short", "SiANDiagnosisTrainer_FrozenSegmentation_Short",
    "SeATransDiagnosisTrainer_FrozenSegmentation_Short"]

__all__ = ["DivAttentionTrainer", "DivAttentionWBCEDiceTrainer", "DivAttentionDualLossTrainer", "DualLossTrainer",
           "LNetTrainer", "LNetTrainer_4s", "LNetTrainer_16s", "LNetTrainer_32s",
           "DivAttentionTrainer_Short", "DivAttentionWBCEDiceTrainer_Short", "DivAttentionDualLossTrainer_Short",
           "DualLossTrainer_Short", "LNetTrainer_Short", "PlainUNetTrainer_Short", *DIAGNOSIS_TRAINERS]
