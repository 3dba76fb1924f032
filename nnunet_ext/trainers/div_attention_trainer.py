"""``DivAttentionTrainer``: nnU-Net's trainer with Div-attention junctions over the decoder paths.

Loss, data, augmentation, schedule and deep supervision are nnU-Net's defaults (Dice + CE, or Dice + BCE for
region-based datasets); only the network changes. ``nnUNetv2_predict -tr DivAttentionTrainer`` rebuilds the same
network through the static ``build_network_architecture``.
"""

from torch import nn

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager

from nnunet_ext.trainers.best_checkpoint_metric import BestCheckpointMetricOnLoading
from nnunet_ext.trainers.checkpoint_origin import CheckpointOriginCheck
from nnunet_ext.trainers.network_builders.div_attention_unet import build_div_attention_unet
from nnunet_ext.trainers.registry import register_trainer


@register_trainer("div_attention", "nnU-Net's trainer (Dice + CE, or Dice + BCE for regions; deep supervision) with "
                                   "Div-attention junctions", e2e_configuration="3d_fullres")
class DivAttentionTrainer(CheckpointOriginCheck, BestCheckpointMetricOnLoading, nnUNetTrainer):
    @staticmethod
    def build_network_architecture(plans_manager: PlansManager,
                                   configuration_manager: ConfigurationManager,
                                   num_input_channels: int,
                                   num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        return build_div_attention_unet(plans_manager, configuration_manager, num_input_channels,
                                        num_output_channels, enable_deep_supervision)
