"""Mixin: the loss of a diagnosis trainer. nnU-Net's segmentation loss plus ``diagnosis_loss_weight`` x the
diagnosis loss; with a frozen segmentation part (``freeze_segmentation``) the diagnosis loss alone. The diagnosis
logits and targets reach the loss through the network's tap, which this mixin creates and attaches."""

from nnunet_ext.architectures.diagnosis.diagnosis_tap import DiagnosisTap, attach_diagnosis_tap
from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.losses.segmentation_assisted_diagnosis import SegmentationAssistedDiagnosisLoss


class DiagnosisLoss:
    diagnosis_loss_weight = 1.0  # weight of the diagnosis loss next to nnU-Net's segmentation loss (joint training)

    def _build_loss(self):
        if self.diagnosis_loss_weight <= 0:
            raise UnsupportedConfigurationError(
                f"{self.__class__.__name__}.diagnosis_loss_weight is {self.diagnosis_loss_weight}; it must be "
                f"positive, or the diagnosis branch learns nothing.")
        self.diagnosis_tap = DiagnosisTap()
        attach_diagnosis_tap(self.network, self.diagnosis_tap)
        frozen = getattr(self, "freeze_segmentation", False)  # SegmentationFromTrainedModel's, set by the variants
        segmentation_loss = None if frozen else super()._build_loss()
        return SegmentationAssistedDiagnosisLoss(segmentation_loss, self.diagnosis_tap, self.diagnosis_loss_weight)
