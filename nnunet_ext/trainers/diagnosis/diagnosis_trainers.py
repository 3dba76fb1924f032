"""The segmentation-assisted diagnosis trainers. Each name says the diagnosis method (the papers' names) and how the
segmentation part is trained:

* ``<Method>DiagnosisTrainer``: segmentation and diagnosis trained together from scratch (nnU-Net's segmentation
  loss + ``diagnosis_loss_weight`` x the diagnosis loss).
* ``<Method>DiagnosisTrainer_FrozenSegmentation``: the segmentation part is a trained segmentation model (by default
  ``nnUNetTrainer``'s model of the same dataset, plans, configuration and fold; or ``$NNUNET_EXT_SEGMENTATION_MODEL``),
  frozen; only the diagnosis branch trains (the papers' setting).
* ``BaseMultiDiagnosisTrainer_PretrainedSegmentation``: Base-multi starting from such a model, all trained further
  (a head on a frozen bottleneck would not be the multi-task baseline).
"""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.trainers.checkpoint_origin import CheckpointOriginCheck
from nnunet_ext.trainers.diagnosis.architecture import DiagnosisArchitecture
from nnunet_ext.trainers.diagnosis.epoch_score import DiagnosisEpochScore
from nnunet_ext.trainers.diagnosis.final_validation import DiagnosisFinalValidation
from nnunet_ext.trainers.diagnosis.labels_loading import DiagnosisLabelsLoading
from nnunet_ext.trainers.diagnosis.loss import DiagnosisLoss
from nnunet_ext.trainers.diagnosis.segmentation_model import TrainedSegmentationModel


class SegmentationAssistedDiagnosisTrainer(DiagnosisFinalValidation, DiagnosisEpochScore, DiagnosisLoss,
                                           DiagnosisLabelsLoading, DiagnosisArchitecture, CheckpointOriginCheck,
                                           nnUNetTrainer):
    """The composition every diagnosis trainer shares; ``diagnosis_method`` picks the branch."""


class ImageOnlyDiagnosisTrainer(SegmentationAssistedDiagnosisTrainer):
    """The classifier without mask: the diagnosis CNN sees the image only."""
    diagnosis_method = "image_only"


class BaseMultiDiagnosisTrainer(SegmentationAssistedDiagnosisTrainer):
    """Base-multi: a classification head on the segmentation encoder's bottleneck."""
    diagnosis_method = "base_multi"


class BaseCatDiagnosisTrainer(SegmentationAssistedDiagnosisTrainer):
    """Base-cat: the diagnosis CNN sees the image and the segmentation probabilities."""
    diagnosis_method = "base_cat"


class BaseROIDiagnosisTrainer(SegmentationAssistedDiagnosisTrainer):
    """Base-ROI: the diagnosis CNN sees the region around the predicted segmentation."""
    diagnosis_method = "base_roi"


class SiANDiagnosisTrainer(SegmentationAssistedDiagnosisTrainer):
    """SiAN: learned side-attention weight maps (eq. 7) on the diagnosis CNN's last features."""
    diagnosis_method = "sian"


class SiANCWMaxPoolDiagnosisTrainer(SegmentationAssistedDiagnosisTrainer):
    """SiAN with CW-MaxPool weight maps (eq. 6)."""
    diagnosis_method = "sian_cw_maxpool"


class SeATransDiagnosisTrainer(SegmentationAssistedDiagnosisTrainer):
    """SeATrans: SeA-blocks with the asymmetric multi-scale interaction."""
    diagnosis_method = "seatrans"


class ImageOnlyDiagnosisTrainer_FrozenSegmentation(TrainedSegmentationModel, ImageOnlyDiagnosisTrainer):
    """Image-only diagnosis next to a trained, frozen segmentation model."""


class BaseCatDiagnosisTrainer_FrozenSegmentation(TrainedSegmentationModel, BaseCatDiagnosisTrainer):
    """Base-cat on a trained, frozen segmentation model."""


class BaseROIDiagnosisTrainer_FrozenSegmentation(TrainedSegmentationModel, BaseROIDiagnosisTrainer):
    """Base-ROI on a trained, frozen segmentation model."""


class SiANDiagnosisTrainer_FrozenSegmentation(TrainedSegmentationModel, SiANDiagnosisTrainer):
    """SiAN on a trained, frozen segmentation model."""


class SiANCWMaxPoolDiagnosisTrainer_FrozenSegmentation(TrainedSegmentationModel, SiANCWMaxPoolDiagnosisTrainer):
    """SiAN (CW-MaxPool) on a trained, frozen segmentation model."""


class SeATransDiagnosisTrainer_FrozenSegmentation(TrainedSegmentationModel, SeATransDiagnosisTrainer):
    """SeATrans on a trained, frozen segmentation model."""


class BaseMultiDiagnosisTrainer_PretrainedSegmentation(TrainedSegmentationModel, BaseMultiDiagnosisTrainer):
    """Base-multi starting from a trained segmentation model, segmentation and diagnosis trained further."""
    freeze_segmentation = False
