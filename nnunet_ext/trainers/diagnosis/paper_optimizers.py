"""Mixins: the papers' optimisers for the frozen-segmentation variants, where only the diagnosis branch trains
(nnU-Net's SGD at 1e-2 with momentum 0.99 and a poly schedule is tuned for segmentation networks trained from
scratch). Each overrides ``configure_optimizers`` alone and optimises the trainable parameters only (the branch);
the weights of the segmentation model are loaded (and frozen) first, by the ``super()`` call.

- SeATrans (sec. 3.1): "Adam optimizer ... The learning rate is initially set to 1e-4"; no schedule is named, so
  the rate stays constant.
- SiAN (sec. 4.1): "SGD with a weight decay factor of 0.0001 and a momentum of 0.95. The initial learning rate is
  0.001 ... If the validation performance does not improve in 4 consecutive validations, the learning rate will be
  divided by 10." nnU-Net validates once per epoch, so "validation" is the epoch's diagnosis score
  (``val_diagnosis_auc`` or ``val_diagnosis_kappa``); the paper's early stop (10 validations without improvement)
  is not applied: nnU-Net trains its set number of epochs.
"""

import torch

from nnunet_ext.trainers.diagnosis.epoch_score import epoch_score_name
from nnunet_ext.trainers.diagnosis.lr_schedules import ConstantLRScheduler, PlateauLRScheduler


def trainable_parameters(network):
    return [p for p in network.parameters() if p.requires_grad]


class SeATransPaperOptimizer:
    seatrans_learning_rate = 1e-4

    def configure_optimizers(self):
        super().configure_optimizers()  # loads (and freezes) the segmentation model
        optimizer = torch.optim.Adam(trainable_parameters(self.network), lr=self.seatrans_learning_rate)
        return optimizer, ConstantLRScheduler(optimizer, self.seatrans_learning_rate)


class SiANPaperOptimizer:
    sian_learning_rate = 1e-3
    sian_momentum = 0.95
    sian_weight_decay = 1e-4
    sian_plateau_patience = 4  # validations without improvement before the rate is divided by 10

    def _scores_before(self, epoch: int):
        return self.logger.get_value(epoch_score_name(len(self.diagnosis_labels.classes)), step=None)[:epoch]

    def configure_optimizers(self):
        super().configure_optimizers()  # loads (and freezes) the segmentation model
        optimizer = torch.optim.SGD(trainable_parameters(self.network), lr=self.sian_learning_rate,
                                    momentum=self.sian_momentum, weight_decay=self.sian_weight_decay)
        return optimizer, PlateauLRScheduler(optimizer, self.sian_learning_rate, self._scores_before,
                                             patience=self.sian_plateau_patience, factor=0.1)
