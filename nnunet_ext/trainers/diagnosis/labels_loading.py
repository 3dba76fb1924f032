"""Mixin: read and check the dataset's ``diagnosis_labels.json`` when the trainer initialises (before the network
is built, before any training), check that the fold's own training cases hold two classes, put the classes into
the plans the model is saved with, and copy the file to the preprocessed folder and the model folder.

The raw dataset's file is the source (``nnunet_ext.diagnosis.labels.find_diagnosis_labels``); a preprocessed copy
that differs from it is replaced at once, and the log says so. The whole dataset's labels may hold two classes while
one fold's training cases do not (nnU-Net's 5-fold split of a small dataset can put every case of a class into one
fold's validation): that fold would learn one class and end with an undefined AUC, so it is stopped with the case
ids; a validation set of one class is only logged (AUC undefined, accuracy still defined).
"""

from collections import Counter
from pathlib import Path

from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.diagnosis.dataset_labels import load_dataset_diagnosis_labels
from nnunet_ext.diagnosis.labels import LABELS_FILE_NAME, DiagnosisLabelsError, copy_diagnosis_labels
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
        self._update_preprocessed_copy()
        self._check_fold_classes()
        super().initialize()

    def _update_preprocessed_copy(self):
        source = Path(self.diagnosis_labels.source)
        copy = Path(self.preprocessed_dataset_folder_base) / LABELS_FILE_NAME
        if source.resolve() == copy.resolve():
            self.print_to_log_file(f"Diagnosis labels from the preprocessed copy {copy} (no raw dataset here)")
            return
        if copy.is_file() and copy.read_bytes() != source.read_bytes():
            self.print_to_log_file(f"{copy} differed from {source} (the labels were edited since the last "
                                   f"training); it is replaced by the raw dataset's file")
            if self.local_rank == 0:
                copy_diagnosis_labels(source, self.preprocessed_dataset_folder_base)

    def _check_fold_classes(self):
        """The fold's training cases must hold at least two classes; a one-class validation set is logged."""
        try:
            training, validation = self.do_split()
        except ValueError as error:  # e.g. fewer cases than folds: nnU-Net reports it when it splits for training
            self.print_to_log_file(f"Diagnosis classes per fold not checked: nnU-Net cannot split ({error})")
            return
        labels, classes = self.diagnosis_labels.labels, self.diagnosis_labels.classes
        counts = Counter(classes[labels[case]] for case in training)
        if len(counts) < 2:
            missing = [name for name in classes if name not in counts]
            elsewhere = sorted(case for case in validation if classes[labels[case]] in missing)
            raise DiagnosisLabelsError(
                f"Fold {self.fold}'s training cases are all '{next(iter(counts))}' ({len(training)} cases); the "
                f"cases of {', '.join(repr(m) for m in missing)} are all in its validation set "
                f"({', '.join(elsewhere[:5]) or 'none'}), so this fold would learn one class.",
                file=Path(self.preprocessed_dataset_folder_base) / "splits_final.json", case=", ".join(elsewhere[:5]),
                fix="label more cases of that class, or write a splits_final.json whose folds each train on every "
                    "class (nnU-Net uses it as it is)")
        validation_classes = {classes[labels[case]] for case in validation}
        if validation and len(validation_classes) < 2:
            self.print_to_log_file(f"Warning: fold {self.fold}'s validation cases are all "
                                   f"'{next(iter(validation_classes))}': its validation AUC is undefined (null)")

    def on_train_start(self):
        super().on_train_start()
        if self.local_rank == 0:
            source = self.diagnosis_labels.source
            copy_diagnosis_labels(source, self.preprocessed_dataset_folder_base)
            copy_diagnosis_labels(source, self.output_folder_base)
