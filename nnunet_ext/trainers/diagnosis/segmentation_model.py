"""Mixin: start from a trained segmentation model (see ``nnunet_ext.diagnosis.segmentation_model`` for where it is
found and what is checked), frozen by default (the papers' setting: only the diagnosis branch trains).

The weights are loaded in ``configure_optimizers``: nnU-Net calls it right after building the network and before
wrapping it in DDP, so DDP never sees the frozen parameters as trainable."""

from nnunet_ext.architectures.diagnosis.diagnosis_tap import inner_network
from nnunet_ext.diagnosis.segmentation_model import load_segmentation_model


class TrainedSegmentationModel:
    segmentation_model_trainer = "nnUNetTrainer"  # default model folder: <this>__<plans>__<configuration>
    freeze_segmentation = True

    @property
    def train_segmentation(self) -> bool:
        return not self.freeze_segmentation

    def configure_optimizers(self):
        path = load_segmentation_model(inner_network(self.network), self.plans_manager.plans,
                                       self.configuration_name, self.dataset_json, self.fold,
                                       self.segmentation_model_trainer, self.freeze_segmentation)
        state = "frozen" if self.freeze_segmentation else "trained further with the diagnosis"
        self.print_to_log_file(f"Segmentation part loaded from {path} ({state})")
        return super().configure_optimizers()
