"""The dual loss under deep supervision takes its presence targets from the full-resolution target at every scale."""

import pytest
import torch

from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper

from nnunet_ext.losses.dual_dice import DualDiceLoss
from nnunet_ext.losses.full_resolution_presence import FullResolutionPresenceWrapper

SCALES = [[1.0, 1.0], [0.5, 0.5], [0.25, 0.25]]
IGNORE = 2


def nnunet_targets(labels):
    """Per-scale targets ``(B, 1, *S_s)`` as nnU-Net's data loader makes them (nearest-neighbour downsampling)."""
    per_sample = [DownsampleSegForDSTransform(ds_scales=SCALES)(segmentation=s)["segmentation"] for s in labels]
    return [torch.stack(scale) for scale in zip(*per_sample)]


def small_lesion_and_ignored_lesion():
    """Image 0: one lesion voxel, smaller than the lowest scale's stride 4 (it vanishes there); image 1: its only
    lesion voxels carry the ignore label, so the lesion counts as absent. Labels ``(2, 1, 16, 16)``."""
    labels = torch.zeros(2, 1, 16, 16, dtype=torch.long)
    labels[0, 0, 1, 1] = 1
    labels[1, 0, 4:8, 4:8] = IGNORE
    return labels


def logits_with_one_lesion_voxel(batch_presence, size):
    """Confident logits ``(B, 2, size, size)``: background everywhere, and lesion at voxel (0, 0) of image ``i`` if
    ``batch_presence[i]``."""
    logits = torch.tensor([30.0, -30.0]).view(1, 2, 1, 1).repeat(len(batch_presence), 1, size, size)
    for i, present in enumerate(batch_presence):
        if present:
            logits[i, :, 0, 0] = torch.tensor([-30.0, 30.0])
    return logits


def test_the_small_lesion_is_present_at_the_lowest_scale():
    labels = small_lesion_and_ignored_lesion()
    targets = nnunet_targets(labels)
    assert (targets[0][0] == 1).any() and not (targets[-1][0] == 1).any()  # nnU-Net's target loses the lesion
    dual_loss = DualDiceLoss(weight_segmentation=0.0, ignore_label=IGNORE)  # the presence term alone
    lowest_only = [0.0, 0.0, 1.0]
    outputs = [logits_with_one_lesion_voxel([True, False], 16 // 2 ** i) for i in range(3)]
    # image 0 predicted present and image 1 absent, as the full-resolution (non-ignored) labels say
    assert FullResolutionPresenceWrapper(dual_loss, lowest_only)(outputs, targets).item() == \
        pytest.approx(0.0, abs=1e-4)
    assert DeepSupervisionWrapper(dual_loss, lowest_only)(outputs, targets).item() == pytest.approx(1.0, abs=1e-4)
    # and predicting image 0 absent at the lowest scale now costs the whole presence term
    outputs[-1] = logits_with_one_lesion_voxel([False, False], 4)
    assert FullResolutionPresenceWrapper(dual_loss, lowest_only)(outputs, targets).item() == \
        pytest.approx(1.0, abs=1e-4)


def test_presence_targets_leave_out_ignored_voxels_for_labels_and_regions():
    labels = small_lesion_and_ignored_lesion()
    assert DualDiceLoss(ignore_label=IGNORE).presence_targets(labels, 2).tolist() == [[1.0], [0.0]]
    regions = torch.cat(((labels == 1).float(), (labels == IGNORE).float()), dim=1)  # nnU-Net: ignore mask last
    regions[1, 0] = (labels[1, 0] == IGNORE).float()  # the region channel marks the ignored voxels too
    presence = DualDiceLoss(regions=True, ignore_label=IGNORE).presence_targets(regions, 1)
    assert presence.tolist() == [[1.0], [0.0]]


def test_every_scale_gets_the_presence_of_the_full_resolution_target():
    labels = small_lesion_and_ignored_lesion()
    targets = nnunet_targets(labels)
    seen = []

    class Recording(DualDiceLoss):
        def forward(self, logits, target, presence=None):
            seen.append(presence.clone())
            return super().forward(logits, target, presence)

    outputs = [torch.randn(2, 2, 16 // 2 ** i, 16 // 2 ** i) for i in range(3)]
    value = FullResolutionPresenceWrapper(Recording(ignore_label=IGNORE), [0.5, 0.5, 0.0])(outputs, targets)
    assert torch.isfinite(value) and len(seen) == 2  # nnU-Net's wrapper skips the scale of weight 0
    assert all(p.tolist() == [[1.0], [0.0]] for p in seen)
