"""Mixin: train the diagnosis with the segmentation. Every training and validation batch gets the diagnosis
targets of its cases (``batch['keys']``); the loss adds the weighted diagnosis loss to nnU-Net's segmentation loss,
or, with ``train_segmentation = False`` (a frozen segmentation model), is the diagnosis loss alone."""

from nnunet_ext.architectures.diagnosis.diagnosis_tap import DiagnosisTap, attach_diagnosis_tap
from nnunet_ext.diagnosis.batch_targets import diagnosis_targets
from nnunet_ext.errors import UnsupportedConfigurationError
from nnunet_ext.losses.segmentation_assisted_diagnosis import SegmentationAssistedDiagnosisLoss


class DiagnosisLoss:
    diagnosis_loss_weight = 1.0  # weight of the diagnosis loss next to nnU-Net's segmentation loss (joint training)
    train_segmentation = True

    def _build_loss(self):
        if self.diagnosis_loss_weight <= 0:
            raise UnsupportedConfigurationError(
                f"{self.__class__.__name__}.diagnosis_loss_weight is {self.diagnosis_loss_weight}; it must be "
                f"positive, or the diagnosis branch learns nothing.")
        self.diagnosis_tap = DiagnosisTap()
        attach_diagnosis_tap(self.network, self.diagnosis_tap)
        segmentation_loss = super()._build_loss() if self.train_segmentation else None
        return SegmentationAssistedDiagnosisLoss(segmentation_loss, self.diagnosis_tap, self.diagnosis_loss_weight)

    def _prepare_diagnosis_batch(self, batch: dict) -> None:
        self.diagnosis_tap.clear()
        self.diagnosis_tap.targets = diagnosis_targets(self.diagnosis_labels, batch["keys"], self.device)

    def train_step(self, batch: dict) -> dict:
        self._prepare_diagnosis_batch(batch)
        return super().train_step(batch)

    def validation_step(self, batch: dict) -> dict:
        self._prepare_diagnosis_batch(batch)
        return super().validation_step(batch)
