"""``DivAttentionWBCEDiceTrainer``: Div-attention with the paper's weighted BCE + Dice loss (eq. 6-8).

The loss supervises the final and every intermediate output through nnU-Net's own deep-supervision weights.
``gamma``, ``alpha`` and ``beta`` are class attributes: subclass to change them. The paper gives no values; the
defaults follow its text (more penalty on negatives, so ``gamma < 1``; both terms weighted equally).
"""

from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.losses.weighted_bce_dice import WeightedBCEDiceLoss
from nnunet_ext.trainers.deep_supervision_loss import with_nnunet_deep_supervision
from nnunet_ext.trainers.div_attention_trainer import DivAttentionTrainer
from nnunet_ext.trainers.registry import register_trainer


@register_trainer("div_attention", "the Div-attention U-Net with the paper's loss, `alpha * wBCE + beta * Dice` "
                                   "(eq. 6-8); `gamma = 0.5`, `alpha = beta = 1` as class attributes")
class DivAttentionWBCEDiceTrainer(DivAttentionTrainer):
    gamma = 0.5  # weight of the positive term of wBCE, eq. (6)
    alpha = 1.0  # weight of wBCE, eq. (8)
    beta = 1.0  # weight of Dice, eq. (8)

    def _build_loss(self):
        if self.label_manager.ignore_label is not None:
            raise UnsupportedConfigurationError(
                f"{self.__class__.__name__} cannot train on a dataset with an ignore label (dataset.json label "
                f"'ignore' = {self.label_manager.ignore_label}): eq. (6)-(8) have no notion of unlabelled voxels. "
                f"Use DivAttentionTrainer, whose nnU-Net loss masks them.")
        segmentation_loss = WeightedBCEDiceLoss(self.gamma, self.alpha, self.beta,
                                                regions=self.label_manager.has_regions,
                                                batch_dice=self.configuration_manager.batch_dice, ddp=self.is_ddp)
        return with_nnunet_deep_supervision(super()._build_loss(), segmentation_loss)
