"""nnU-Net's predictor, plus one diagnosis per case for a model trained by a diagnosis trainer.

``DiagnosisPredictor`` predicts and exports segmentations exactly as ``nnUNetPredictor`` does; while it predicts a
case, the network's diagnosis output is on and a
:class:`~nnunet_ext.architectures.diagnosis.diagnosis_tap.DiagnosisRecorder` around it hands nnU-Net's sliding window
the segmentation and collects, in a tap, the diagnosis logits of every tile and fold with each tile's foreground
weight. The case's class probabilities follow the rule of :mod:`nnunet_ext.diagnosis.aggregation` (the one the
final validation uses), with the tile pooling rule stored in the model's plans (``tile_pooling``,
:mod:`nnunet_ext.diagnosis.plans_entry`): per fold the tiles pooled by it, then the mean over the folds.

Test-time mirroring is nnU-Net's augmentation of the segmentation: the diagnosis is taken from each tile's
unmirrored pass and the mirrored passes run the segmentation alone (``diagnosis_from_mirrors = False``). Running the
branch on all 8 mirrors of a 3D tile cost 1.2-1.35x the segmentation's prediction time (``python -m
benchmarks.costs``, README "Benchmark"); ``diagnosis_from_mirrors = True`` pools the diagnosis over them too.

Which case a prediction belongs to: in ``predict_from_data_iterator`` (``predict_from_files``,
``predict_from_list_of_npy_arrays``) the ``ofile`` of the item being predicted (no ``ofile``: no diagnosis); in
``predict_from_files_sequential`` the output files in nnU-Net's order. A direct
``predict_logits_from_preprocessed_data`` or ``predict_single_npy_array`` call outside these records no diagnosis.

A sliding window that fails on the device (any RuntimeError, typically out of memory) is run again by nnU-Net with
the results on the CPU; the passes its first attempt recorded are dropped (the tap notes where each fold's sliding
window starts and goes back there at every attempt), so no tile counts twice.

While ``predict_from_files`` (or its sequential twin) runs, the output folder gets ``diagnosis_predictions.csv`` and
``diagnosis_predictions_settings.json``, rewritten after every case (an interrupted run keeps what it predicted;
files there that we did not write stop the run before any prediction) (:func:`~nnunet_ext.diagnosis.predictions_csv.write_prediction_diagnoses`:
merged with an earlier file only with ``--continue_prediction``; parallel ``-num_parts`` runs write part files and
join them under a lock). The settings (:meth:`DiagnosisPredictor.diagnosis_settings`) are the ones the final
validation records in ``diagnosis_summary.json``, so the two can be compared. For a model without a diagnosis
branch it is nnU-Net's predictor.
"""

import os
from contextlib import contextmanager
from typing import Dict, List, Optional

import numpy as np
import torch
from batchgenerators.dataloading.multi_threaded_augmenter import MultiThreadedAugmenter

from nnunetv2.configuration import default_num_processes
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

from nnunet_ext.checks.model_folder import check_trained_model
from nnunet_ext.architectures.diagnosis.diagnosis_tap import DiagnosisRecorder, DiagnosisTap, set_diagnosis_output
from nnunet_ext.diagnosis.aggregation import aggregation_rule, case_probabilities
from nnunet_ext.diagnosis.plans_entry import DIAGNOSIS_PLANS_KEY, TILE_POOLING_KEY
from nnunet_ext.diagnosis.plans_entry import diagnosis_settings as settings_in_plans
from nnunet_ext.core.owned_files import check_may_replace
from nnunet_ext.diagnosis.predictions_csv import (DIAGNOSIS_CSV_NAME, MODEL_KEY, OVERWRITE_FLAG,  # noqa: F401
                                                  SETTINGS_FILE_NAME, check_same_model, earlier_predictions,
                                                  part_csv_name, settings_file_name, write_prediction_diagnoses)

FINAL_WEIGHTS = "checkpoint_final.pth"  # nnU-Net's weights at the end of training


def case_id_of_output(truncated_output_file: str) -> str:
    """nnU-Net's truncated output file name (``<folder>/<case id>``) -> the case id."""
    return os.path.basename(truncated_output_file)


class DiagnosisPredictor(nnUNetPredictor):
    diagnosis_from_mirrors = False  # True: every mirrored pass of a tile adds its diagnosis logits too
    used_folds = None  # set by initialize_from_trained_model_folder (or the trainer's final validation)
    checkpoint_name = FINAL_WEIGHTS
    written_diagnosis_csv: Optional[str] = None  # the CSV the last predict_from_files(_sequential) wrote
    overwrite_outputs = False  # True: replace a diagnosis CSV / settings file there that we did not write
    model_folder: Optional[str] = None  # set by initialize_from_trained_model_folder
    checks_model_folder = True  # False where the caller ran the same checks first (nnunet_ext_predict)

    def initialize_from_trained_model_folder(self, model_training_output_dir: str, use_folds,
                                             checkpoint_name: str = FINAL_WEIGHTS):
        """nnU-Net's, remembering the folds (found as nnU-Net finds them when ``use_folds`` is None) and the
        checkpoint for :meth:`diagnosis_settings`. First, as ``nnunet_ext_predict`` does: the folds hold the
        checkpoint and each checkpoint was written by the trainer the folder is named after
        (:func:`~nnunet_ext.checks.model_folder.check_trained_model`), so a plain nnU-Net checkpoint copied into a
        diagnosis model's folder stops here instead of predicting without a diagnosis."""
        if isinstance(use_folds, (str, int)):
            use_folds = [use_folds]
        if self.checks_model_folder:
            use_folds = check_trained_model(model_training_output_dir, use_folds, checkpoint_name)
        elif use_folds is None:
            use_folds = nnUNetPredictor.auto_detect_available_folds(model_training_output_dir, checkpoint_name)
        super().initialize_from_trained_model_folder(model_training_output_dir, use_folds, checkpoint_name)
        self.used_folds = [f if f == "all" else int(f) for f in use_folds]
        self.checkpoint_name = checkpoint_name
        self.model_folder = os.path.abspath(model_training_output_dir)

    def model_identity(self) -> Optional[dict]:
        """Which model predicts (trainer, plans, configuration, folder, folds, checkpoint), as the settings file
        beside ``diagnosis_predictions.csv`` records it; None for a predictor not initialised from a folder."""
        if self.model_folder is None:
            return None
        return {"trainer": self.trainer_name, "plans": self.plans_manager.plans_name,
                "configuration": os.path.basename(self.model_folder).split("__")[-1], "folder": self.model_folder,
                "folds": None if self.used_folds is None else list(self.used_folds),
                "checkpoint": self.checkpoint_name}

    def output_settings(self) -> dict:
        """:meth:`diagnosis_settings` and, for a model from a folder, its :meth:`model_identity` (``model``)."""
        identity = self.model_identity()
        return {**self.diagnosis_settings(), **({MODEL_KEY: identity} if identity is not None else {})}

    @property
    def diagnosis_classes(self) -> Optional[List[str]]:
        settings = self.plans_manager.plans.get(DIAGNOSIS_PLANS_KEY)
        return None if settings is None else list(settings["classes"])

    @property
    def tile_pooling(self) -> str:
        """The model's tile pooling rule (the plans' ``tile_pooling``; ``"mean"`` for plans without one)."""
        return settings_in_plans(self.plans_manager.plans)[TILE_POOLING_KEY]

    def diagnosis_settings(self) -> dict:
        """What decided each case's probabilities, as ``diagnosis_predictions_settings.json`` and the final
        validation's ``diagnosis_summary.json`` (``settings``) record it."""
        mirrored = self.use_mirroring and self.allowed_mirroring_axes is not None
        return {"tile_step_size": float(self.tile_step_size), "use_gaussian": bool(self.use_gaussian),
                "use_mirroring": bool(self.use_mirroring),
                "mirroring_axes": [int(a) for a in self.allowed_mirroring_axes] if mirrored else None,
                "diagnosis_from_mirrors": bool(self.diagnosis_from_mirrors), "tile_pooling": self.tile_pooling,
                "folds": None if self.used_folds is None else list(self.used_folds),
                "checkpoint": self.checkpoint_name,
                "aggregation": aggregation_rule(self.tile_pooling, self.diagnosis_from_mirrors and mirrored)}

    # --- which case is being predicted ---

    def _manage_input_and_output_lists(self, list_of_lists_or_source_folder,
                                       output_folder_or_list_of_truncated_output_files,
                                       folder_with_segs_from_prev_stage: str = None, overwrite: bool = True,
                                       part_id: int = 0, num_parts: int = 1, save_probabilities: bool = False):
        inputs, outputs, previous_stage = super()._manage_input_and_output_lists(
            list_of_lists_or_source_folder, output_folder_or_list_of_truncated_output_files,
            folder_with_segs_from_prev_stage, overwrite, part_id, num_parts, save_probabilities)
        self.diagnosis_probabilities: Dict[str, np.ndarray] = {}
        self._outputs_in_order = list(outputs) if outputs is not None else []
        return inputs, outputs, previous_stage

    def predict_from_data_iterator(self, data_iterator, save_probabilities: bool = False,
                                   num_processes_segmentation_export: int = default_num_processes):
        if not hasattr(self, "diagnosis_probabilities"):  # predict_from_list_of_npy_arrays comes here directly
            self.diagnosis_probabilities = {}

        def noting_each_case(iterator):
            for item in iterator:
                self._current_output = item["ofile"]
                yield item
        self._predicting_from_iterator, self._current_output = True, None
        try:
            return super().predict_from_data_iterator(noting_each_case(data_iterator), save_probabilities,
                                                      num_processes_segmentation_export)
        finally:
            self._predicting_from_iterator, self._current_output = False, None
            if isinstance(data_iterator, MultiThreadedAugmenter):  # nnU-Net's check sees our generator instead
                data_iterator._finish()

    def _next_case_id(self) -> Optional[str]:
        if getattr(self, "_predicting_from_iterator", False):
            output, self._current_output = self._current_output, None
        elif getattr(self, "_outputs_in_order", None):
            output = self._outputs_in_order.pop(0)
        else:
            return None
        return None if output is None else case_id_of_output(output)

    # --- recording the diagnosis of every pass ---

    @contextmanager
    def recording_diagnosis(self, tap: DiagnosisTap):
        """While the block runs, the network's diagnosis output is on and every forward pass of the sliding window
        leaves its diagnosis logits and foreground weight in ``tap`` (cleared first), each fold's sliding window
        starting a model there. Does nothing for a network without diagnosis."""
        tap.clear()
        if not set_diagnosis_output(self.network, True):
            yield
            return
        self._diagnosis_tap = tap
        try:
            yield
        finally:
            self._diagnosis_tap = None
            set_diagnosis_output(self.network, False)

    def case_diagnosis(self, tap: DiagnosisTap, case_id: str) -> np.ndarray:
        """``[num_classes]`` probabilities of one case from what ``tap`` recorded, by the model's tile pooling."""
        return case_probabilities(tap.logits, tap.weights, self.tile_pooling, tap.model_starts,
                                  case=f"case {case_id!r}")

    def predict_sliding_window_return_logits(self, input_image: torch.Tensor):
        tap = getattr(self, "_diagnosis_tap", None)
        if tap is not None:
            tap.start_model()  # once per fold (predict_logits_from_preprocessed_data loops over the folds)
        return super().predict_sliding_window_return_logits(input_image)

    def _internal_predict_sliding_window_return_logits(self, data, slicers, do_on_device: bool = True):
        # once per attempt: after a RuntimeError on the device nnU-Net runs every tile again, results on the CPU
        tap = getattr(self, "_diagnosis_tap", None)
        if tap is not None:
            tap.restart_model()
        return super()._internal_predict_sliding_window_return_logits(data, slicers, do_on_device)

    def _internal_maybe_mirror_and_predict(self, x: torch.Tensor) -> torch.Tensor:
        tap = getattr(self, "_diagnosis_tap", None)
        if tap is None:
            return super()._internal_maybe_mirror_and_predict(x)
        network = self.network
        # only for nnU-Net's network(x) calls of this tile; its first call is the unmirrored one
        self.network = DiagnosisRecorder(network, tap, calls_to_record=None if self.diagnosis_from_mirrors else 1)
        try:
            return super()._internal_maybe_mirror_and_predict(x)
        finally:
            self.network = network
            set_diagnosis_output(network, True)  # for the next tile (recording_diagnosis switches it off at the end)

    def predict_logits_from_preprocessed_data(self, data: torch.Tensor) -> torch.Tensor:
        case_id = self._next_case_id()
        if case_id is None or self.diagnosis_classes is None:
            return super().predict_logits_from_preprocessed_data(data)
        tap = DiagnosisTap()
        with self.recording_diagnosis(tap):
            logits = super().predict_logits_from_preprocessed_data(data)
        if tap.logits:
            if not hasattr(self, "diagnosis_probabilities"):  # a direct call, outside predict_from_files
                self.diagnosis_probabilities = {}
            self.diagnosis_probabilities[case_id] = self.case_diagnosis(tap, case_id)
            self._write_rows_so_far()
        return logits

    # --- the files ---

    def write_diagnosis_csv(self, output_folder: Optional[str], continuing: bool = False, num_parts: int = 1,
                            part_id: int = 0) -> Optional[str]:
        """Write ``diagnosis_predictions.csv`` and ``diagnosis_predictions_settings.json`` (a part's own files for a
        part of ``num_parts``, joined once all are there) for the cases predicted by the last call; with
        ``continuing`` (``--continue_prediction``) the rows of cases not predicted again are kept. Returns the CSV
        written; None when there is nothing to write (no diagnosis model, no output folder, or no case predicted)."""
        probabilities = getattr(self, "diagnosis_probabilities", {})
        if self.diagnosis_classes is None or output_folder is None or not probabilities:
            return None
        return str(write_prediction_diagnoses(output_folder, probabilities, self.diagnosis_classes,
                                              self.output_settings(), continuing, num_parts, part_id,
                                              self.overwrite_outputs))

    @contextmanager
    def writing_rows_as_cases_finish(self, output, continuing: bool, num_parts: int = 1, part_id: int = 0):
        """For the block (one ``predict_from_files`` call): first the checks that need no prediction (our files
        there are ours, the earlier rows are this model's when continuing), then every case's row is written as
        soon as its diagnosis is known, so an interrupted run keeps what it predicted and ``--continue_prediction``
        completes it; the files once more at the end."""
        folder = _output_folder(output)
        if folder is not None and self.diagnosis_classes is not None:
            name = DIAGNOSIS_CSV_NAME if num_parts == 1 else part_csv_name(part_id, num_parts)
            for ours in (os.path.join(folder, name), os.path.join(folder, settings_file_name(name))):
                check_may_replace(ours, OVERWRITE_FLAG, self.overwrite_outputs)
            if continuing:
                check_same_model(os.path.join(folder, settings_file_name(name)), self.output_settings())
        self._rows_destination = None if folder is None else (folder, continuing, num_parts, part_id)
        try:
            yield
        finally:
            self._outputs_in_order = []
            self._rows_destination = None
        self.written_diagnosis_csv = self.write_diagnosis_csv(folder, continuing, num_parts, part_id)

    def _write_rows_so_far(self) -> None:
        destination = getattr(self, "_rows_destination", None)
        if destination is not None:
            self.write_diagnosis_csv(*destination)

    # nnU-Net records these methods' arguments by reading locals() against their signatures: spell them out.
    def predict_from_files(self, list_of_lists_or_source_folder, output_folder_or_list_of_truncated_output_files,
                           save_probabilities: bool = False, overwrite: bool = True,
                           num_processes_preprocessing: int = default_num_processes,
                           num_processes_segmentation_export: int = default_num_processes,
                           folder_with_segs_from_prev_stage: str = None, num_parts: int = 1, part_id: int = 0):
        with self.writing_rows_as_cases_finish(output_folder_or_list_of_truncated_output_files, not overwrite,
                                               num_parts, part_id):
            return super().predict_from_files(
                list_of_lists_or_source_folder, output_folder_or_list_of_truncated_output_files, save_probabilities,
                overwrite, num_processes_preprocessing, num_processes_segmentation_export,
                folder_with_segs_from_prev_stage, num_parts, part_id)

    def predict_from_files_sequential(self, list_of_lists_or_source_folder,
                                      output_folder_or_list_of_truncated_output_files,
                                      save_probabilities: bool = False, overwrite: bool = True,
                                      folder_with_segs_from_prev_stage: str = None):
        with self.writing_rows_as_cases_finish(output_folder_or_list_of_truncated_output_files, not overwrite):
            return super().predict_from_files_sequential(
                list_of_lists_or_source_folder, output_folder_or_list_of_truncated_output_files, save_probabilities,
                overwrite, folder_with_segs_from_prev_stage)


def _output_folder(output) -> Optional[str]:
    if isinstance(output, str):
        return output
    if isinstance(output, list) and output:
        return os.path.dirname(output[0]) or os.path.curdir
    return None
