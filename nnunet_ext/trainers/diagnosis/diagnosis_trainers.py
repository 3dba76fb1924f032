"""The segmentation-assisted diagnosis trainers, one registered class per method (the papers' names). Each is
trained jointly from scratch (nnU-Net's segmentation loss + ``diagnosis_loss_weight`` x the diagnosis loss); its
generated variants start from a trained segmentation model (:mod:`nnunet_ext.trainers.diagnosis.variants`):

* ``<Method>DiagnosisTrainer_FrozenSegmentation``: the segmentation part is a trained segmentation model (by default
  ``nnUNetTrainer``'s model of the same dataset, plans, configuration and fold; or ``$NNUNET_EXT_SEGMENTATION_MODEL``),
  frozen; only the diagnosis branch trains (the papers' setting).
* ``BaseMultiDiagnosisTrainer_PretrainedSegmentation``: Base-multi starting from such a model, all trained further
  (a head on a frozen bottleneck would not be the multi-task baseline).
* ``SiANDiagnosisTrainer_FrozenLNetSegmentation`` / ``_FrozenDivAttentionSegmentation``: SiAN's branch on a trained,
  frozen ``LNetTrainer`` (the paper's side branch) or ``DivAttentionTrainer`` model.
* ``<Method>DiagnosisTrainer_CoupledProbabilities`` (Base-cat, SiAN): joint training in which the diagnosis loss
  also reaches the segmentation through the probabilities; the joint trainers themselves detach them, as the
  papers' Base-cat and SiAN read a segmentation's output without training it.

``checkpoint_best.pth`` follows the diagnosis score (:mod:`best_checkpoint`); the frozen SeATrans and SiAN variants
train with their paper's optimiser (:mod:`paper_optimizers`).

Adding a method: a branch in ``architectures/diagnosis/`` with its name in ``diagnosis_methods.py``, and one class
here.
"""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.trainers.best_checkpoint_metric import BestCheckpointMetricOnLoading
from nnunet_ext.trainers.checkpoint_origin import CheckpointOriginCheck
from nnunet_ext.trainers.diagnosis.architecture import DiagnosisArchitecture
from nnunet_ext.trainers.diagnosis.batch_targets import DiagnosisBatchTargets
from nnunet_ext.trainers.diagnosis.best_checkpoint import DiagnosisBestCheckpoint
from nnunet_ext.trainers.diagnosis.epoch_score import DiagnosisEpochScore
from nnunet_ext.trainers.diagnosis.final_validation import DiagnosisFinalValidation
from nnunet_ext.trainers.diagnosis.labels_loading import DiagnosisLabelsLoading
from nnunet_ext.trainers.diagnosis.loss import DiagnosisLoss
from nnunet_ext.trainers.diagnosis.pretrained_weights_check import PretrainedWeightsCheck
from nnunet_ext.trainers.diagnosis.segmentation_model import SegmentationFromTrainedModel
from nnunet_ext.trainers.diagnosis.variants import (COUPLED_PROBABILITIES, FROZEN_DIV_ATTENTION_SEGMENTATION,
                                                    FROZEN_LNET_SEGMENTATION, FROZEN_SEGMENTATION,
                                                    FROZEN_SEGMENTATION_ADAM, FROZEN_SEGMENTATION_NNUNET_SGD,
                                                    FROZEN_SEGMENTATION_SIAN,
                                                    PRETRAINED_SEGMENTATION)
from nnunet_ext.trainers.registry import register_trainer

DIAGNOSIS = ("diagnosis",)


class _DiagnosisTrainer(DiagnosisFinalValidation, DiagnosisBestCheckpoint, DiagnosisEpochScore, DiagnosisBatchTargets,
                        DiagnosisLoss, SegmentationFromTrainedModel, DiagnosisLabelsLoading, DiagnosisArchitecture,
                        PretrainedWeightsCheck, CheckpointOriginCheck, BestCheckpointMetricOnLoading, nnUNetTrainer):
    """The composition every diagnosis trainer shares (each mixin overrides its own hooks, so their order among
    themselves does not matter); ``diagnosis_method`` picks the branch. Not a trainer of its own."""


@register_trainer("diagnosis", "diagnosis CNN (a dynamic-network-architectures encoder shaped like the plans' "
                               "encoder) on the image only, no mask", tags=DIAGNOSIS, variants=(FROZEN_SEGMENTATION,))
class ImageOnlyDiagnosisTrainer(_DiagnosisTrainer):
    """The classifier without mask: the diagnosis CNN sees the image only."""
    diagnosis_method = "image_only"


@register_trainer("diagnosis", "Base-multi: a head (global average pooling + linear) on the segmentation "
                               "encoder's bottleneck", tags=DIAGNOSIS, variants=(PRETRAINED_SEGMENTATION,))
class BaseMultiDiagnosisTrainer(_DiagnosisTrainer):
    """Base-multi: a classification head on the segmentation encoder's bottleneck."""
    diagnosis_method = "base_multi"


@register_trainer("diagnosis", "Base-cat: the diagnosis CNN on the image concatenated with the segmentation "
                               "probabilities", tags=DIAGNOSIS,
                  variants=(FROZEN_SEGMENTATION, COUPLED_PROBABILITIES))
class BaseCatDiagnosisTrainer(_DiagnosisTrainer):
    """Base-cat: the diagnosis CNN sees the image and the segmentation probabilities."""
    diagnosis_method = "base_cat"


@register_trainer("diagnosis", "Base-ROI: the diagnosis CNN on the box around the predicted foreground (+10 % "
                               "margin), resized to the patch", tags=DIAGNOSIS, variants=(FROZEN_SEGMENTATION,))
class BaseROIDiagnosisTrainer(_DiagnosisTrainer):
    """Base-ROI: the diagnosis CNN sees the region around the predicted segmentation."""
    diagnosis_method = "base_roi"


@register_trainer("diagnosis", "SiAN: the diagnosis CNN's last features times learned weight maps from the lesion "
                               "probabilities (two 3x3 convs + sigmoid, eq. 7), pooled, linear classifier",
                  tags=DIAGNOSIS, variants=(FROZEN_SEGMENTATION_SIAN, FROZEN_SEGMENTATION_NNUNET_SGD,
                                            FROZEN_LNET_SEGMENTATION, FROZEN_DIV_ATTENTION_SEGMENTATION,
                                            COUPLED_PROBABILITIES),
                  e2e_configuration="2d", e2e_variant=FROZEN_SEGMENTATION_SIAN.suffix)
class SiANDiagnosisTrainer(_DiagnosisTrainer):
    """SiAN: learned side-attention weight maps (eq. 7) on the diagnosis CNN's last features."""
    diagnosis_method = "sian"


@register_trainer("diagnosis", "SiAN with CW-MaxPool weight maps (eq. 6)", tags=DIAGNOSIS,
                  variants=(FROZEN_SEGMENTATION_SIAN, FROZEN_SEGMENTATION_NNUNET_SGD))
class SiANCWMaxPoolDiagnosisTrainer(_DiagnosisTrainer):
    """SiAN with CW-MaxPool weight maps (eq. 6)."""
    diagnosis_method = "sian_cw_maxpool"


@register_trainer("diagnosis", "SeATrans: SeA-blocks (cross-attention between segmentation and diagnosis "
                               "features) with the asymmetric multi-scale interaction", tags=DIAGNOSIS,
                  variants=(FROZEN_SEGMENTATION_ADAM, FROZEN_SEGMENTATION_NNUNET_SGD))
class SeATransDiagnosisTrainer(_DiagnosisTrainer):
    """SeATrans: SeA-blocks with the asymmetric multi-scale interaction, on the U-Net decoder's multi-scale
    features (``segmentation_features = "encoder"`` reads the encoder's skips instead).

    ``interaction_stages``: the diagnosis-encoder stages with SeA-blocks (None: the paper's placement by total
    stride, see ``seatrans_branch.py``); ``max_tokens``: the bound on the tokens of a SeA-block (the maps are
    average-pooled to it, 2D and 3D alike); ``residual``: add the diagnosis feature to the fused SeA-block outputs
    (not the paper's form); ``spatial_prior``: ``"none"`` here, SMCA's prior in the trainers below."""
    diagnosis_method = "seatrans"
    branch_option_names = ("interaction_stages", "max_tokens", "residual", "spatial_prior")
    interaction_stages = None
    max_tokens = 256
    residual = False
    spatial_prior = "none"


@register_trainer("diagnosis", "SeATrans with SMCA's spatial prior: `log G` of a centre and scale that each "
                               "diagnosis token predicts per head, added to the SeA-blocks' decoder logits, and "
                               "SMCA's scale-attention in place of the 1x1 fusion of the coarse and fine paths",
                  tags=DIAGNOSIS, variants=(FROZEN_SEGMENTATION_ADAM,),
                  e2e_configuration="2d", e2e_variant=FROZEN_SEGMENTATION_ADAM.suffix)
class SeATransSMCADiagnosisTrainer(SeATransDiagnosisTrainer):
    """SeATrans with SMCA's spatial prior on eq. 2's cross-attention (``architectures/building_blocks/
    spatial_prior.py``, ``seatrans_branch.py`` "SMCA's spatial prior")."""
    spatial_prior = "smca"


@register_trainer("diagnosis", "SeATrans with SMCA's prior whose centres and scales start at the centroid and "
                               "spread of the segmentation's predicted lesion", tags=DIAGNOSIS,
                  variants=(FROZEN_SEGMENTATION_ADAM,))
class SeATransSMCALesionDiagnosisTrainer(SeATransSMCADiagnosisTrainer):
    """SMCA's prior with every query's centre starting on the segmentation's lesion probabilities."""
    spatial_prior = "smca_lesion"
