"""The segmentation-assisted diagnosis network from nnU-Net's plans: the planned U-Net plus the branch of a
diagnosis method, with the classes the diagnosis trainer stored in the plans."""

from torch import nn

from nnunet_ext.architectures.diagnosis.diagnosis_branch import num_diagnosis_outputs
from nnunet_ext.architectures.diagnosis.diagnosis_methods import build_diagnosis_branch
from nnunet_ext.architectures.diagnosis.segmentation_assisted_network import SegmentationAssistedDiagnosisNetwork
from nnunet_ext.diagnosis.plans_entry import diagnosis_settings
from nnunet_ext.trainers.network_builders.planned_unet import build_planned_unet, require_unet


def build_segmentation_assisted_diagnosis_network(method: str, plans_manager, configuration_manager,
                                                  num_input_channels: int, num_output_channels: int,
                                                  enable_deep_supervision: bool = True) -> nn.Module:
    """Same arguments as ``nnUNetTrainer.build_network_architecture`` (nnU-Net 2.8), plus the diagnosis ``method``
    (see ``architectures/diagnosis/diagnosis_methods.py``). The diagnosis classes come from the plans
    (``diagnosis/plans_entry.py``)."""
    settings = diagnosis_settings(plans_manager.plans)
    unet = build_planned_unet(configuration_manager, num_input_channels, num_output_channels,
                              enable_deep_supervision)
    require_unet(unet, configuration_manager, "A diagnosis branch")
    branch = build_diagnosis_branch(method, unet.encoder, num_input_channels, num_output_channels,
                                    num_diagnosis_outputs(len(settings["classes"])), configuration_manager.patch_size,
                                    settings["segmentation_softmax"])
    return SegmentationAssistedDiagnosisNetwork(unet, branch, settings["segmentation_softmax"])
