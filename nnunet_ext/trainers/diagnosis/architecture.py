"""Mixin: the segmentation-assisted diagnosis network of the class attribute ``diagnosis_method`` (one of
``nnunet_ext.architectures.diagnosis.diagnosis_methods.DIAGNOSIS_METHODS``)."""

from torch import nn

from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager

from nnunet_ext.trainers.network_builders.diagnosis_network import build_segmentation_assisted_diagnosis_network


class DiagnosisArchitecture:
    diagnosis_method = "base_multi"

    @classmethod
    def build_network_architecture(cls, plans_manager: PlansManager, configuration_manager: ConfigurationManager,
                                   num_input_channels: int, num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        return build_segmentation_assisted_diagnosis_network(
            cls.diagnosis_method, plans_manager, configuration_manager, num_input_channels, num_output_channels,
            enable_deep_supervision)
