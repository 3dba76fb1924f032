"""Mixin: read and check the dataset's ``diagnosis_labels.json`` when the trainer initialises (before the network
is built, before any training), put the classes into the plans the model is saved with, and copy the file to the
preprocessed folder and the model folder."""

from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.diagnosis.dataset_labels import load_dataset_diagnosis_labels
from nnunet_ext.diagnosis.labels import copy_diagnosis_labels
from nnunet_ext.diagnosis.plans_entry import add_diagnosis_settings


class DiagnosisLabelsLoading:
    """Place before an nnU-Net trainer class in the bases. Sets ``self.diagnosis_labels``.

    ``diagnosis_tile_pooling``: how a case's tiles make one diagnosis at validation and prediction (``"mean"``,
    ``"foreground_weighted"`` or ``"max"``, :mod:`nnunet_ext.diagnosis.aggregation`), stored in the plans."""
    diagnosis_tile_pooling = "mean"

    def initialize(self):
        if self.configuration_manager.previous_stage_name is not None:
            raise UnsupportedConfigurationError(
                f"Configuration '{self.configuration_name}' is a cascade stage; the diagnosis trainers support "
                f"single-stage configurations (2d, 3d_fullres, 3d_lowres). Train one of those.")
        self.diagnosis_labels = load_dataset_diagnosis_labels(
            self.plans_manager.dataset_name, self.preprocessed_dataset_folder_base, self.preprocessed_dataset_folder,
            self.dataset_json["file_ending"])
        add_diagnosis_settings(self.plans_manager.plans, self.diagnosis_labels,
                               segmentation_softmax=not self.label_manager.has_regions,
                               tile_pooling=self.diagnosis_tile_pooling)
        self.print_to_log_file(f"Diagnosis labels: {self.diagnosis_labels.source}, classes "
                               f"{self.diagnosis_labels.classes}")
        super().initialize()

    def on_train_start(self):
        super().on_train_start()
        if self.local_rank == 0:
            source = self.diagnosis_labels.source
            copy_diagnosis_labels(source, self.preprocessed_dataset_folder_base)
            copy_diagnosis_labels(source, self.output_folder_base)
