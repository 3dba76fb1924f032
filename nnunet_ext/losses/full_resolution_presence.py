"""Deep supervision for L-Net's dual loss with the presence targets of the full-resolution target at every scale.

nnU-Net downsamples the targets of the lower deep-supervision scales nearest-neighbour, so a lesion smaller than a
scale's stride can vanish from that scale's target: ``T_ij`` (the loss after eq. 3) would say "absent" there while
the image holds the lesion. :class:`FullResolutionPresenceWrapper` computes ``T``, ``(B, M)``, once from the first
(full-resolution) target, ignored voxels excluded, and hands it to the dual loss of every scale; everything else,
nnU-Net's per-scale weights included, is nnU-Net's ``DeepSupervisionWrapper``.
"""

from typing import List

import torch

from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper


class FullResolutionPresenceWrapper(DeepSupervisionWrapper):
    """``sum_s w_s * loss(outputs[s], targets[s], T)`` with ``T = loss.presence_targets(targets[0], K)``.

    :param loss: a :class:`~nnunet_ext.losses.dual_dice.DualDiceLoss` (anything with ``presence_targets`` and a
        ``presence`` argument).
    :param weight_factors: nnU-Net's per-scale weights, full resolution first.
    """

    def forward(self, outputs: List[torch.Tensor], targets: List[torch.Tensor]) -> torch.Tensor:
        """:param outputs: logits ``(B, K, *S_s)`` per scale. :param targets: targets per scale, full resolution
        first, as nnU-Net's data loader gives them."""
        presence = self.loss.presence_targets(targets[0], outputs[0].shape[1])
        return super().forward(outputs, targets, [presence] * len(outputs))
