"""Mixin: start the segmentation part from a trained segmentation model (see ``nnunet_ext.diagnosis.segmentation_model``
for where it is found and what is checked), frozen or trained further, as the class attributes say. The model's
trainer is the class attribute ``segmentation_model_trainer`` (which ``DiagnosisArchitecture`` also reads to build
the segmentation part); its default folder is ``<that trainer>__<plans>__<configuration>``.

The attributes are set by the variants of :mod:`nnunet_ext.trainers.diagnosis.variants` (``_FrozenSegmentation``,
``_PretrainedSegmentation``), which subclass a registered trainer: a subclass's attribute wins whatever the order of
the mixins, so a frozen trainer is frozen however its bases are arranged. The weights are loaded in
``configure_optimizers``: nnU-Net calls it right after building the network and before wrapping it in DDP, so DDP
never sees frozen parameters as trainable."""

from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.core.network_wrappers import inner_network
from nnunet_ext.diagnosis.segmentation_model import load_segmentation_model
from nnunet_ext.trainers.network_builders.diagnosis_network import DEFAULT_SEGMENTATION_TRAINER


class SegmentationFromTrainedModel:
    start_from_segmentation_model = False  # load the segmentation part from a trained segmentation model
    freeze_segmentation = False  # and keep it fixed (only the diagnosis branch trains)
    segmentation_model_trainer = DEFAULT_SEGMENTATION_TRAINER  # its trainer; default folder <this>__<plans>__<conf>

    def configure_optimizers(self):
        if self.freeze_segmentation and not self.start_from_segmentation_model:
            raise UnsupportedConfigurationError(
                f"{self.__class__.__name__} freezes its segmentation part but does not load a trained segmentation "
                f"model, so a randomly initialised segmentation would stay fixed. Set start_from_segmentation_model "
                f"= True, or use the trainer's _FrozenSegmentation variant.")
        if self.start_from_segmentation_model:
            path = load_segmentation_model(inner_network(self.network), self.plans_manager.plans,
                                           self.configuration_name, self.dataset_json, self.fold,
                                           self.segmentation_model_trainer, self.freeze_segmentation)
            state = "frozen" if self.freeze_segmentation else "trained further with the diagnosis"
            self.print_to_log_file(f"Segmentation part loaded from {path} ({state})")
        return super().configure_optimizers()
