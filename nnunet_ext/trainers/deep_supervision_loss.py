"""Swap the loss inside nnU-Net's deep-supervision wrapper, keeping nnU-Net's own per-scale weights."""

from torch import nn

from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper

from nnunet_ext.losses.full_resolution_presence import FullResolutionPresenceWrapper


def with_nnunet_deep_supervision(nnunet_loss: nn.Module, segmentation_loss: nn.Module) -> nn.Module:
    """``nnunet_loss`` is what ``nnUNetTrainer._build_loss`` returned: with deep supervision, a
    ``DeepSupervisionWrapper`` whose weights halve per scale and give the lowest output 0; its inner loss is replaced
    by ``segmentation_loss``. Without deep supervision, ``segmentation_loss`` is returned as it is."""
    if isinstance(nnunet_loss, DeepSupervisionWrapper):
        nnunet_loss.loss = segmentation_loss
        return nnunet_loss
    return segmentation_loss


def with_full_resolution_presence(nnunet_loss: nn.Module, dual_loss: nn.Module) -> nn.Module:
    """As :func:`with_nnunet_deep_supervision`, but the wrapper is a :class:`FullResolutionPresenceWrapper` with
    nnU-Net's weights: the dual loss of every scale gets the presence targets of the full-resolution target."""
    if isinstance(nnunet_loss, DeepSupervisionWrapper):
        return FullResolutionPresenceWrapper(dual_loss, nnunet_loss.weight_factors)
    return dual_loss


def unwrapped(loss: nn.Module) -> nn.Module:
    """The per-output loss inside a ``DeepSupervisionWrapper`` (or ``loss`` itself)."""
    return loss.loss if isinstance(loss, DeepSupervisionWrapper) else loss
