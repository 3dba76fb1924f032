"""Mixin: read and check the dataset's ``diagnosis_labels.json`` when the trainer initialises (before the network
is built, before any training), put the classes into the plans the model is saved with, and copy the file to the
preprocessed folder and the model folder."""

import os
from os.path import isdir, join

from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
from nnunetv2.utilities.utils import get_identifiers_from_splitted_dataset_folder

from nnunet_ext.diagnosis.labels import copy_diagnosis_labels, find_diagnosis_labels, load_diagnosis_labels
from nnunet_ext.diagnosis.plans_entry import add_diagnosis_settings
from nnunet_ext.errors import UnsupportedConfigurationError


def raw_dataset_folder(dataset_name: str):
    """``$nnUNet_raw/<dataset_name>`` when it exists, else None (prediction and validation need no raw data)."""
    raw = os.environ.get("nnUNet_raw")
    folder = join(raw, dataset_name) if raw else None
    return folder if folder and isdir(folder) else None


def test_case_ids(raw_folder, file_ending: str):
    """Case ids of the raw dataset's ``imagesTs`` (file names without ``_XXXX`` and the ending), if any."""
    images = join(raw_folder, "imagesTs") if raw_folder else None
    if not images or not isdir(images):
        return []
    return get_identifiers_from_splitted_dataset_folder(images, file_ending)


def training_case_ids(preprocessed_folder: str):
    """The case ids nnU-Net preprocessed for training (from its preprocessed data folder)."""
    if not isdir(preprocessed_folder):
        raise UnsupportedConfigurationError(
            f"No preprocessed data at {preprocessed_folder}: run nnUNetv2_plan_and_preprocess for this dataset and "
            f"configuration before training.")
    return infer_dataset_class(preprocessed_folder).get_identifiers(preprocessed_folder)


class DiagnosisLabelsLoading:
    """Place before an nnU-Net trainer class in the bases. Sets ``self.diagnosis_labels``."""

    def initialize(self):
        if self.configuration_manager.previous_stage_name is not None:
            raise UnsupportedConfigurationError(
                f"Configuration '{self.configuration_name}' is a cascade stage; the diagnosis trainers support "
                f"single-stage configurations (2d, 3d_fullres, 3d_lowres). Train one of those.")
        raw_folder = raw_dataset_folder(self.plans_manager.dataset_name)
        labels_file = find_diagnosis_labels(raw_folder, self.preprocessed_dataset_folder_base)
        self.diagnosis_labels = load_diagnosis_labels(
            labels_file, training_case_ids(self.preprocessed_dataset_folder),
            test_case_ids(raw_folder, self.dataset_json["file_ending"]))
        add_diagnosis_settings(self.plans_manager.plans, self.diagnosis_labels,
                               segmentation_softmax=not self.label_manager.has_regions)
        self.print_to_log_file(f"Diagnosis labels: {labels_file}, classes {self.diagnosis_labels.classes}")
        super().initialize()

    def on_train_start(self):
        super().on_train_start()
        if self.local_rank == 0:
            source = self.diagnosis_labels.source
            copy_diagnosis_labels(source, self.preprocessed_dataset_folder_base)
            copy_diagnosis_labels(source, self.output_folder_base)
