"""``DivAttentionTrainer``: nnU-Net's trainer with Div-attention junctions over the decoder paths, and its readings
of the paper as class attributes, each with a registered variant (issue 11).

Loss, data, augmentation, schedule and deep supervision are nnU-Net's defaults (Dice + CE, or Dice + BCE for
region-based datasets); only the network changes. ``build_network_architecture`` is a classmethod that reads the
attributes, so ``nnUNetv2_predict`` (which calls it on the class named in the checkpoint, with the plans only)
rebuilds the network the trainer trained:

* ``div_attention_placement``: ``"logits"`` (junctions over the paths' ``K``-channel logits, the network of issue 2)
  or ``"features"`` (inside nnU-Net's decoder on its feature maps; ``DivAttentionFeaturesTrainer``).
* ``div_attention_map`` (eq. 4): ``"divergence"`` (the default since issue 11: the paper's "from 0 to 1",
  ``|M_i - M_{i-1}|``) or ``"softmax"`` (``N * softmax`` over space, in [1/e, e], mean 1: the network of issue 2;
  ``_SoftmaxMap``).
* ``div_attention_masks`` (eq. 2-3): ``"sigmoid"`` or ``"softmax"`` over the channels (``_SoftmaxMasks``), for
  label datasets only: a region dataset's channels are independent sigmoids, and ``initialize`` refuses
  ``"softmax"`` there (the network itself cannot tell: ``build_network_architecture`` gets the plans, not the
  dataset.json that says whether the dataset has regions; a softmax over a label dataset's logits is what its
  softmax-trained outputs mean, so the class attribute is all the predictor needs).
* ``div_attention_residual``: ``R_i = O_i + fusion`` (True) or the fusion's prediction alone (``_NoResidual``).
* ``div_attention_feature_masks`` (features placement only): ``"heads"`` (masks of the stage's 1x1 head's
  predictions) or ``"features"`` (sigmoid of the feature channels; ``DivAttentionFeaturesTrainer_FeatureMasks``).

``DivAttentionTrainer``'s defaults follow the ablation of issue 11 (README, "Ablation on the real BraTS sample"):
where no option beat the reading closest to the paper by more than the spread between runs, with its cost counted,
that reading is the default.
"""

from torch import nn

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager

from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.trainers.best_checkpoint_metric import BestCheckpointMetricOnLoading
from nnunet_ext.trainers.checkpoint_origin import CheckpointOriginCheck
from nnunet_ext.trainers.network_builders.div_attention_unet import (build_div_attention_features_unet,
                                                                     build_div_attention_unet)
from nnunet_ext.trainers.registry import deprecated_trainer_name, register_trainer


@register_trainer("div_attention", "nnU-Net's trainer (Dice + CE, or Dice + BCE for regions; deep supervision) with "
                                   "Div-attention junctions", e2e_configuration="3d_fullres")
class DivAttentionTrainer(CheckpointOriginCheck, BestCheckpointMetricOnLoading, nnUNetTrainer):
    div_attention_placement = "logits"
    div_attention_map = "divergence"
    div_attention_masks = "sigmoid"
    div_attention_residual = True
    div_attention_feature_masks = "heads"

    @classmethod
    def build_network_architecture(cls, plans_manager: PlansManager,
                                   configuration_manager: ConfigurationManager,
                                   num_input_channels: int,
                                   num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        options = dict(attention=cls.div_attention_map, masks=cls.div_attention_masks,
                       residual=cls.div_attention_residual)
        if cls.div_attention_placement == "features":
            return build_div_attention_features_unet(plans_manager, configuration_manager, num_input_channels,
                                                     num_output_channels, enable_deep_supervision,
                                                     feature_masks=cls.div_attention_feature_masks, **options)
        if cls.div_attention_placement != "logits":
            raise ValueError(f"{cls.__name__}.div_attention_placement must be 'logits' or 'features', got "
                             f"{cls.div_attention_placement!r}")
        return build_div_attention_unet(plans_manager, configuration_manager, num_input_channels,
                                        num_output_channels, enable_deep_supervision, **options)

    def initialize(self):
        if self.div_attention_masks == "softmax" and self.label_manager.has_regions:
            raise UnsupportedConfigurationError(
                f"{self.__class__.__name__} takes Div-attention's masks from a softmax over the channels "
                f"(div_attention_masks = 'softmax'), which only a label dataset's logits mean; this dataset is "
                f"region-based (dataset.json 'regions_class_order'), each channel an independent sigmoid. Use a "
                f"trainer with sigmoid masks, e.g. {DivAttentionTrainer.__name__}.")
        super().initialize()


@register_trainer("div_attention", "Div-attention with issue 2's eq. 4 reading: attention `N * softmax` over "
                                   "space of `abs(M_i - M_{i-1})`, mean 1, in [1/e, e]")
class DivAttentionTrainer_SoftmaxMap(DivAttentionTrainer):
    div_attention_map = "softmax"


@deprecated_trainer_name(DivAttentionTrainer)
class DivAttentionTrainer_Divergence(DivAttentionTrainer):
    """The divergence map's variant before issue 11 made it the default: builds and trains as
    ``DivAttentionTrainer``, so its models still predict."""


@register_trainer("div_attention", "Div-attention with masks from a softmax over the classes (label datasets; "
                                   "refused on region datasets)")
class DivAttentionTrainer_SoftmaxMasks(DivAttentionTrainer):
    div_attention_masks = "softmax"


@register_trainer("div_attention", "Div-attention without the residual: each path's output is the fusion's "
                                   "prediction alone")
class DivAttentionTrainer_NoResidual(DivAttentionTrainer):
    div_attention_residual = False


@register_trainer("div_attention", "Div-attention inside nnU-Net's decoder, on the stages' feature maps; masks "
                                   "from each stage's 1x1 head")
class DivAttentionFeaturesTrainer(DivAttentionTrainer):
    div_attention_placement = "features"


@register_trainer("div_attention", "feature-level Div-attention with masks `sigmoid` of the feature maps "
                                   "themselves")
class DivAttentionFeaturesTrainer_FeatureMasks(DivAttentionFeaturesTrainer):
    div_attention_feature_masks = "features"
