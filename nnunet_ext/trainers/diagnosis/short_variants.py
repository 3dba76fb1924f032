"""The diagnosis trainers with the short budget of ``nnunet_ext.trainers.short_budget`` (tests, demos, the BraTS
comparison on CPU)."""

from nnunet_ext.trainers.diagnosis.diagnosis_trainers import (
    BaseCatDiagnosisTrainer_FrozenSegmentation, BaseMultiDiagnosisTrainer,
    BaseMultiDiagnosisTrainer_PretrainedSegmentation, BaseROIDiagnosisTrainer_FrozenSegmentation,
    ImageOnlyDiagnosisTrainer_FrozenSegmentation, SeATransDiagnosisTrainer_FrozenSegmentation, SiANDiagnosisTrainer,
    SiANDiagnosisTrainer_FrozenSegmentation)
from nnunet_ext.trainers.short_budget import ShortBudget


class SiANDiagnosisTrainer_Short(ShortBudget, SiANDiagnosisTrainer):
    """SiAN, trained jointly with its segmentation, short budget."""


class BaseMultiDiagnosisTrainer_Short(ShortBudget, BaseMultiDiagnosisTrainer):
    """Base-multi, short budget."""


class ImageOnlyDiagnosisTrainer_FrozenSegmentation_Short(ShortBudget, ImageOnlyDiagnosisTrainer_FrozenSegmentation):
    """Image-only diagnosis beside a frozen segmentation model, short budget."""


class BaseMultiDiagnosisTrainer_PretrainedSegmentation_Short(ShortBudget,
                                                             BaseMultiDiagnosisTrainer_PretrainedSegmentation):
    """Base-multi from a trained segmentation model, short budget."""


class BaseCatDiagnosisTrainer_FrozenSegmentation_Short(ShortBudget, BaseCatDiagnosisTrainer_FrozenSegmentation):
    """Base-cat on a frozen segmentation model, short budget."""


class BaseROIDiagnosisTrainer_FrozenSegmentation_Short(ShortBudget, BaseROIDiagnosisTrainer_FrozenSegmentation):
    """Base-ROI on a frozen segmentation model, short budget."""


class SiANDiagnosisTrainer_FrozenSegmentation_Short(ShortBudget, SiANDiagnosisTrainer_FrozenSegmentation):
    """SiAN on a frozen segmentation model, short budget."""


class SeATransDiagnosisTrainer_FrozenSegmentation_Short(ShortBudget, SeATransDiagnosisTrainer_FrozenSegmentation):
    """SeATrans on a frozen segmentation model, short budget."""
