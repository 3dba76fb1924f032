"""Mixin: the segmentation-assisted diagnosis network of the class attribute ``diagnosis_method`` (one of
``nnunet_ext.architectures.diagnosis.diagnosis_methods.DIAGNOSIS_METHODS``), with the options the class attributes
give (see ``network_builders/diagnosis_network.py``):

- ``segmentation_model_trainer`` (``SegmentationFromTrainedModel``'s): the trainer whose network is the segmentation part (and whose model a frozen
  variant loads), ``nnUNetTrainer`` by default; ``LNetTrainer`` or ``DivAttentionTrainer`` for the methods that read
  the segmentation probabilities only;
- ``segmentation_features``: ``"decoder"`` (SeATrans' "multi-scale features in UNet decoder") or ``"encoder"``
  (the encoder's skips) for the methods that read nnU-Net's U-Net features;
- ``diagnosis_probabilities_gradient``: False (the papers: the probabilities are read, not trained through);
- ``branch_option_names``: the class attributes handed to the branch as options (SeATrans: ``interaction_stages``,
  ``max_tokens``, ``residual``).
"""

from typing import Tuple

from torch import nn

from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager

from nnunet_ext.trainers.network_builders.diagnosis_network import (DEFAULT_SEGMENTATION_TRAINER,
                                                                    build_segmentation_assisted_diagnosis_network)


class DiagnosisArchitecture:
    diagnosis_method = "base_multi"
    segmentation_features = "decoder"
    diagnosis_probabilities_gradient = False
    branch_option_names: Tuple[str, ...] = ()

    @classmethod
    def build_network_architecture(cls, plans_manager: PlansManager, configuration_manager: ConfigurationManager,
                                   num_input_channels: int, num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        return build_segmentation_assisted_diagnosis_network(
            cls.diagnosis_method, plans_manager, configuration_manager, num_input_channels, num_output_channels,
            enable_deep_supervision, segmentation_trainer=getattr(cls, "segmentation_model_trainer", DEFAULT_SEGMENTATION_TRAINER),
            features_from=cls.segmentation_features, probabilities_gradient=cls.diagnosis_probabilities_gradient,
            branch_options={name: getattr(cls, name) for name in cls.branch_option_names})
