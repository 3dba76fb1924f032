"""``LNetTrainer``: L-Net-Ns on nnU-Net's planned encoder, trained with L-Net's dual loss.

The cut ``N`` is the class attribute ``output_stride`` (default 8, the paper's best, L-Net-8s); the variants
``LNetTrainer_4s``, ``_16s`` and ``_32s`` set it. A cut that the plans' strides cannot give (for example 32 when the
plans' total stride is 16) stops with an error listing the cuts they support, before training. The generated variant
``LNetTrainer_Plateau`` switches to the dual loss on a plateau of the EMA pseudo Dice (``dual_loss_switch =
"plateau"``, :mod:`nnunet_ext.trainers.dual_loss`) instead of after half the epochs.
"""

from torch import nn

from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager

from nnunet_ext.architectures.building_blocks.lnet_decoder import (lnet_deep_supervision_scales,
                                                                   lnet_deep_supervision_weights)
from nnunet_ext.trainers.best_checkpoint_metric import BestCheckpointMetricOnLoading
from nnunet_ext.trainers.checkpoint_origin import CheckpointOriginCheck
from nnunet_ext.trainers.dual_loss import DualLoss
from nnunet_ext.trainers.lesion_presence_validation import LesionPresenceValidation
from nnunet_ext.trainers.network_builders.lnet import build_lnet
from nnunet_ext.trainers.registry import TrainerVariant, register_trainer


class LNetArchitecture:
    """Mixin: the L-Net network, its deep-supervision scales and weights (the three go together): nnU-Net's weights,
    but 0 for the logits at ``1/N``, which the full-resolution output already supervises interpolated."""

    output_stride = 8

    @classmethod
    def build_network_architecture(cls, plans_manager: PlansManager, configuration_manager: ConfigurationManager,
                                   num_input_channels: int, num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        return build_lnet(plans_manager, configuration_manager, num_input_channels, num_output_channels,
                          enable_deep_supervision, output_stride=cls.output_stride)

    def _get_deep_supervision_scales(self):
        if not self.enable_deep_supervision:
            return None
        return lnet_deep_supervision_scales(self.configuration_manager.pool_op_kernel_sizes, self.output_stride)

    def _build_loss(self):
        loss = super()._build_loss()
        if isinstance(loss, DeepSupervisionWrapper):
            loss.weight_factors = tuple(lnet_deep_supervision_weights(loss.weight_factors))
        return loss


PLATEAU_SWITCH = TrainerVariant("_Plateau", "the dual loss from the first plateau of the EMA pseudo Dice "
                                            "(dual_loss_switch = 'plateau')",
                                attributes={"dual_loss_switch": "plateau"})


@register_trainer("lnet", "L-Net-8s (the paper's best cut) on the plans' encoder, trained with the dual loss",
                  variants=(PLATEAU_SWITCH,), e2e_configuration="3d_fullres")
class LNetTrainer(LesionPresenceValidation, DualLoss, LNetArchitecture, CheckpointOriginCheck,
                  BestCheckpointMetricOnLoading, nnUNetTrainer):
    """L-Net-8s with the dual loss."""


@register_trainer("lnet", "L-Net-4s with the dual loss")
class LNetTrainer_4s(LNetTrainer):
    output_stride = 4


@register_trainer("lnet", "L-Net-16s with the dual loss")
class LNetTrainer_16s(LNetTrainer):
    output_stride = 16


@register_trainer("lnet", "L-Net-32s with the dual loss (plans whose total stride reaches 32)")
class LNetTrainer_32s(LNetTrainer):
    output_stride = 32
