"""UNETR with Div-attention junctions from nnU-Net's plans (:mod:`nnunet_ext.architectures.div_attention_unetr`)."""

from nnunet_ext.architectures.div_attention_unetr import DivAttentionUNETR
from nnunet_ext.trainers.network_builders.transformer_size import TransformerSize
from nnunet_ext.trainers.network_builders.unetr import build_unetr


def build_div_attention_unetr(plans_manager, configuration_manager, num_input_channels: int,
                              num_output_channels: int, enable_deep_supervision: bool, size: TransformerSize,
                              feature_size: int = 16, **div_attention_options) -> DivAttentionUNETR:
    return build_unetr(plans_manager, configuration_manager, num_input_channels, num_output_channels,
                       enable_deep_supervision, size, feature_size, network_class=DivAttentionUNETR,
                       deep_supervision=enable_deep_supervision, **div_attention_options)
