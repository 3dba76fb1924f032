"""Mixin: every training and validation batch puts the diagnosis targets of its cases (``batch['keys']``) into the
network's tap before nnU-Net's step runs, and clears the logits of the step before."""

from nnunet_ext.diagnosis.batch_targets import diagnosis_targets


class DiagnosisBatchTargets:

    def _prepare_diagnosis_batch(self, batch: dict) -> None:
        self.diagnosis_tap.clear()
        self.diagnosis_tap.targets = diagnosis_targets(self.diagnosis_labels, batch["keys"], self.device)

    def train_step(self, batch: dict) -> dict:
        self._prepare_diagnosis_batch(batch)
        return super().train_step(batch)

    def validation_step(self, batch: dict) -> dict:
        self._prepare_diagnosis_batch(batch)
        return super().validation_step(batch)
