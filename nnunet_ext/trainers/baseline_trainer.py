"""The baseline at equal budget: nnU-Net's own ``nnUNetTrainer`` with the short budget, nothing else changed."""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.trainers.registry import register_trainer
from nnunet_ext.trainers.short_budget import ShortBudget


@register_trainer("baseline", "nnU-Net's own `nnUNetTrainer`, unchanged but for the short budget: the baseline at "
                              "equal budget", tags=("short",), short_variant=False, e2e_configuration="2d")
class PlainUNetTrainer_Short(ShortBudget, nnUNetTrainer):
    """nnU-Net's own ``nnUNetTrainer``, unchanged but for the budget: the baseline at equal budget."""
