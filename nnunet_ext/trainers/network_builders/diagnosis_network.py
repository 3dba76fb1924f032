"""The segmentation-assisted diagnosis network from nnU-Net's plans: a segmentation network plus the branch of a
diagnosis method, with the classes the diagnosis trainer stored in the plans.

The segmentation network is the one that the trainer of the segmentation model builds (``segmentation_trainer``,
by name): nnU-Net's planned U-Net for ``nnUNetTrainer`` and any trainer that keeps its network, or ours
(``LNetTrainer``, ``DivAttentionTrainer``, ...), so that a frozen diagnosis trainer can take the weights of any of
those models. Only nnU-Net's own U-Net hands its features to the branch (its encoder skips, or its decoder stage
outputs); on another segmentation network the branch reads the segmentation probabilities only, so the methods
that need the features (Base-multi, SeATrans) are refused there.
"""

from typing import Mapping, Optional

from torch import nn

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.architectures.diagnosis.diagnosis_branch import num_diagnosis_outputs
from nnunet_ext.architectures.diagnosis.diagnosis_methods import build_diagnosis_branch
from nnunet_ext.architectures.diagnosis.segmentation_assisted_network import SegmentationAssistedDiagnosisNetwork
from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.diagnosis.plans_entry import diagnosis_settings
from nnunet_ext.trainers.network_builders.planned_unet import build_planned_unet, require_unet

DEFAULT_SEGMENTATION_TRAINER = "nnUNetTrainer"
METHODS_READING_FEATURES = ("base_multi", "seatrans")  # the others read the image and the probabilities only


def segmentation_trainer_class(name: str) -> type:
    """``nnUNetTrainer`` or a trainer of nnunet_ext's registry, by name."""
    if name == nnUNetTrainer.__name__:
        return nnUNetTrainer
    from nnunet_ext.trainers.registry import get_trainer  # the registry imports the trainers, which import this
    try:
        return get_trainer(name).trainer_class
    except KeyError as error:
        raise UnsupportedConfigurationError(
            f"The segmentation model's trainer {name!r} is neither nnUNetTrainer nor a trainer of nnunet_ext, so "
            f"its network is unknown. {error.args[0]}") from None


def builds_planned_unet(trainer_class: type) -> bool:
    """Whether ``trainer_class`` builds nnU-Net's planned network (it keeps ``nnUNetTrainer``'s builder)."""
    return trainer_class.build_network_architecture is nnUNetTrainer.build_network_architecture


def build_segmentation_assisted_diagnosis_network(method: str, plans_manager, configuration_manager,
                                                  num_input_channels: int, num_output_channels: int,
                                                  enable_deep_supervision: bool = True, *,
                                                  segmentation_trainer: str = DEFAULT_SEGMENTATION_TRAINER,
                                                  features_from: str = "decoder",
                                                  probabilities_gradient: bool = False,
                                                  branch_options: Optional[Mapping] = None) -> nn.Module:
    """Same arguments as ``nnUNetTrainer.build_network_architecture`` (nnU-Net 2.8), plus the diagnosis ``method``
    (see ``architectures/diagnosis/diagnosis_methods.py``), the trainer whose network is the segmentation part,
    where nnU-Net's U-Net hands its features from (``"decoder"`` or ``"encoder"``), whether the diagnosis loss may
    reach the segmentation through the probabilities, and the branch's own options. The diagnosis classes come from
    the plans (``diagnosis/plans_entry.py``)."""
    settings = diagnosis_settings(plans_manager.plans)
    trainer_class = segmentation_trainer_class(segmentation_trainer)
    planned = builds_planned_unet(trainer_class)
    if planned:
        segmentation = build_planned_unet(configuration_manager, num_input_channels, num_output_channels,
                                          enable_deep_supervision)
        require_unet(segmentation, configuration_manager, "A diagnosis branch")
    else:
        if method in METHODS_READING_FEATURES:
            raise UnsupportedConfigurationError(
                f"The diagnosis method '{method}' reads nnU-Net's U-Net features, but the segmentation part is "
                f"{segmentation_trainer}'s network. Use a segmentation model trained by nnUNetTrainer for it, or "
                f"a method that reads the segmentation probabilities (image_only, base_cat, base_roi, sian, "
                f"sian_cw_maxpool).")
        segmentation = trainer_class.build_network_architecture(
            plans_manager, configuration_manager, num_input_channels, num_output_channels, enable_deep_supervision)
    encoder = segmentation.encoder
    branch = build_diagnosis_branch(method, encoder, num_input_channels, num_output_channels,
                                    num_diagnosis_outputs(len(settings["classes"])), configuration_manager.patch_size,
                                    settings["segmentation_softmax"], **dict(branch_options or {}))
    return SegmentationAssistedDiagnosisNetwork(segmentation, branch, settings["segmentation_softmax"],
                                                features_from=features_from if planned else None,
                                                probabilities_gradient=probabilities_gradient)
