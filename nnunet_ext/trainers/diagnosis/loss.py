"""Mixin: the loss of a diagnosis trainer. nnU-Net's segmentation loss plus ``diagnosis_loss_weight`` x the
diagnosis loss; with a frozen segmentation part (``freeze_segmentation``) the diagnosis loss alone. The mixin switches
the network's diagnosis output on (the diagnosis logits follow the segmentation outputs) and creates the tap in which
the loss leaves them and the trainer puts each batch's targets."""

from nnunet_ext.architectures.diagnosis.diagnosis_tap import DiagnosisTap, set_diagnosis_output
from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.losses.segmentation_assisted_diagnosis import SegmentationAssistedDiagnosisLoss


class DiagnosisLoss:
    diagnosis_loss_weight = 1.0  # weight of the diagnosis loss next to nnU-Net's segmentation loss (joint training)

    def _build_loss(self):
        if self.diagnosis_loss_weight <= 0:
            raise UnsupportedConfigurationError(
                f"{self.__class__.__name__}.diagnosis_loss_weight is {self.diagnosis_loss_weight}; it must be "
                f"positive, or the diagnosis branch learns nothing.")
        if not self.enable_deep_supervision:
            raise UnsupportedConfigurationError(
                f"{self.__class__.__name__} trains without deep supervision; the diagnosis trainers need nnU-Net's "
                f"deep supervision (enable_deep_supervision = True): with it on, nnU-Net's validation step reads the "
                f"full-resolution segmentation as output[0], ahead of the diagnosis logits.")
        self.diagnosis_tap = DiagnosisTap()
        set_diagnosis_output(self.network, True)
        frozen = getattr(self, "freeze_segmentation", False)  # SegmentationFromTrainedModel's, set by the variants
        segmentation_loss = None if frozen else super()._build_loss()
        return SegmentationAssistedDiagnosisLoss(segmentation_loss, self.diagnosis_tap, self.diagnosis_loss_weight,
                                                 deep_supervision=self.enable_deep_supervision)
