"""``build_network_architecture`` for the diagnosis trainers: the planned U-Net plus the branch of a method."""

from torch import nn

from nnunet_ext.architectures.diagnosis.diagnosis_branch import num_diagnosis_outputs
from nnunet_ext.architectures.diagnosis.diagnosis_methods import build_diagnosis_branch
from nnunet_ext.architectures.diagnosis.segmentation_assisted_network import SegmentationAssistedDiagnosisNetwork
from nnunet_ext.architectures.planned_encoder import build_planned_network
from nnunet_ext.diagnosis.plans_entry import diagnosis_settings
from nnunet_ext.errors import UnsupportedConfigurationError


def build_segmentation_assisted_diagnosis_network(method: str, plans_manager, configuration_manager,
                                                  num_input_channels: int, num_output_channels: int,
                                                  enable_deep_supervision: bool = True) -> nn.Module:
    """Same arguments as ``nnUNetTrainer.build_network_architecture`` (nnU-Net 2.8), plus the diagnosis ``method``
    (see ``diagnosis_methods.py``). The diagnosis classes come from the plans (``diagnosis/plans_entry.py``)."""
    settings = diagnosis_settings(plans_manager.plans)
    unet = build_planned_network(configuration_manager, num_input_channels, num_output_channels,
                                 enable_deep_supervision)
    encoder, decoder = getattr(unet, "encoder", None), getattr(unet, "decoder", None)
    if encoder is None or decoder is None or not hasattr(encoder, "output_channels"):
        raise UnsupportedConfigurationError(
            f"A diagnosis branch cannot be attached to '{configuration_manager.network_arch_class_name}' (data "
            f"identifier '{configuration_manager.data_identifier}'): it is not a U-Net with an encoder and a "
            f"decoder. Use plans whose network is PlainConvUNet or ResidualEncoderUNet.")
    branch = build_diagnosis_branch(method, encoder, num_input_channels, num_output_channels,
                                    num_diagnosis_outputs(len(settings["classes"])), configuration_manager.patch_size,
                                    settings["segmentation_softmax"])
    return SegmentationAssistedDiagnosisNetwork(unet, branch, settings["segmentation_softmax"])
