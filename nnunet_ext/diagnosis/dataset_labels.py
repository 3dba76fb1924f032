"""The diagnosis labels of an nnU-Net dataset, found and checked as every diagnosis tool needs them: the raw
dataset's ``diagnosis_labels.json`` (the user's file) or else the copy in the preprocessed folder, checked against
the case ids nnU-Net preprocessed for training and the raw dataset's ``imagesTs``."""

import os
from os.path import isdir, join
from typing import List, Mapping, Optional

from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
from nnunetv2.utilities.utils import get_identifiers_from_splitted_dataset_folder

from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.diagnosis.labels import DiagnosisLabels, find_diagnosis_labels, load_diagnosis_labels


def raw_dataset_folder(dataset_name: str, environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """``$nnUNet_raw/<dataset_name>`` when it exists, else None (prediction and validation need no raw data)."""
    raw = (os.environ if environ is None else environ).get("nnUNet_raw")
    folder = join(raw, dataset_name) if raw else None
    return folder if folder and isdir(folder) else None


def raw_data_missing_hint(dataset_name: str) -> str:
    """Why the raw dataset (and its imagesTs) could not be found, and the fix."""
    raw = os.environ.get("nnUNet_raw")
    where = "nnUNet_raw is not set" if not raw else f"nnUNet_raw ({raw}) holds no {dataset_name}"
    return (f"(They may be test cases: {where}, so the raw dataset's imagesTs could not be listed; set nnUNet_raw "
            f"to the folder holding {dataset_name}.)")


def test_case_ids(raw_folder: Optional[str], file_ending: str) -> List[str]:
    """Case ids of the raw dataset's ``imagesTs`` (file names without ``_XXXX`` and the ending), if any."""
    images = join(raw_folder, "imagesTs") if raw_folder else None
    if not images or not isdir(images):
        return []
    return get_identifiers_from_splitted_dataset_folder(images, file_ending)


def training_case_ids(preprocessed_data_folder: str) -> List[str]:
    """The case ids nnU-Net preprocessed for training (from its preprocessed data folder of one configuration)."""
    if not isdir(preprocessed_data_folder):
        raise UnsupportedConfigurationError(
            f"No preprocessed data at {preprocessed_data_folder}: run nnUNetv2_plan_and_preprocess for this dataset "
            f"and configuration before training.")
    return infer_dataset_class(preprocessed_data_folder).get_identifiers(preprocessed_data_folder)


def load_dataset_diagnosis_labels(dataset_name: str, preprocessed_dataset_folder: str,
                                  preprocessed_data_folder: str, file_ending: str) -> DiagnosisLabels:
    """Find and check the labels of ``dataset_name``.

    :param preprocessed_dataset_folder: ``$nnUNet_preprocessed/<dataset_name>`` (where the copy lives).
    :param preprocessed_data_folder: the configuration's data folder in it (whose case ids must all be labelled).
    :param file_ending: the dataset's file ending (``dataset.json``), to read ``imagesTs``' case ids.
    :raises DiagnosisLabelsError: naming the file, the case and the fix.
    """
    raw_folder = raw_dataset_folder(dataset_name)
    labels_file = find_diagnosis_labels(raw_folder, preprocessed_dataset_folder)
    hint = "" if raw_folder is not None else raw_data_missing_hint(dataset_name)
    return load_diagnosis_labels(labels_file, training_case_ids(preprocessed_data_folder),
                                 test_case_ids(raw_folder, file_ending), unknown_case_hint=hint)
