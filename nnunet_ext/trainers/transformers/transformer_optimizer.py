"""Mixin: the transformer trainers' optimiser, as nnU-Net's Primus trainers train transformers (nnU-Net's SGD at
1e-2 is known to give NaN losses on them): AdamW at ``transformer_learning_rate`` (1e-4, the seminar's setting for
TransUNet, UNETR and CATS; Primus uses 3e-4) with weight decay ``transformer_weight_decay`` (5e-2, Primus's) and
betas (0.9, 0.98) (Primus's), a linear warm-up over ``transformer_warmup_fraction`` of the epochs (5 %, Primus's 50 of
1000; at least one epoch), then nnU-Net's polynomial decay. Gradients are clipped by nnU-Net's own ``train_step`` at
norm 12 (Primus clips at 1 in a copy of ``train_step``; we keep nnU-Net's step)."""

import math

import torch

from nnunet_ext.trainers.transformers.warmup_poly_schedule import WarmupPolyLRScheduler


class TransformerOptimizer:
    transformer_learning_rate = 1e-4
    transformer_weight_decay = 5e-2
    transformer_betas = (0.9, 0.98)
    transformer_warmup_fraction = 0.05

    def warmup_epochs(self) -> int:
        return max(1, math.ceil(self.transformer_warmup_fraction * self.num_epochs))

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.network.parameters(), lr=self.transformer_learning_rate,
                                      weight_decay=self.transformer_weight_decay, betas=self.transformer_betas)
        scheduler = WarmupPolyLRScheduler(optimizer, self.transformer_learning_rate, self.num_epochs,
                                          self.warmup_epochs())
        return optimizer, scheduler
