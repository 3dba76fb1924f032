"""nnU-Net's predictor, plus one diagnosis per case for a model trained by a diagnosis trainer.

``DiagnosisPredictor`` predicts and exports segmentations exactly as ``nnUNetPredictor`` does; while it predicts a
case, the network's diagnosis output is on and a
:class:`~nnunet_ext.architectures.diagnosis.diagnosis_tap.DiagnosisRecorder` around it hands nnU-Net's sliding window
the segmentation and collects the diagnosis logits of every tile and fold in a tap, and the case's class
probabilities follow the rule of :mod:`nnunet_ext.diagnosis.aggregation` (the one validation uses).

Test-time mirroring is nnU-Net's augmentation of the segmentation: the diagnosis is taken from each tile's
unmirrored pass and the mirrored passes run the segmentation alone (``diagnosis_from_mirrors = False``). Running the
branch on all 8 mirrors of a 3D tile cost 1.2-1.35x the segmentation's prediction time (``python -m
benchmarks.costs``, README "Benchmark"); ``diagnosis_from_mirrors = True`` averages the diagnosis over them too. After ``predict_from_files`` (or its
sequential twin) the output folder gets ``diagnosis_predictions.csv`` (:mod:`nnunet_ext.diagnosis.predictions_csv`),
with the class names stored in the model's plans. For a model without a diagnosis branch it is nnU-Net's predictor.
"""

import os
from contextlib import contextmanager
from os.path import join
from typing import Dict, List, Optional

import numpy as np
import torch

from nnunetv2.configuration import default_num_processes
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

from nnunet_ext.architectures.diagnosis.diagnosis_tap import DiagnosisRecorder, DiagnosisTap, set_diagnosis_output
from nnunet_ext.diagnosis.aggregation import case_probabilities
from nnunet_ext.diagnosis.plans_entry import DIAGNOSIS_PLANS_KEY
from nnunet_ext.diagnosis.predictions_csv import read_diagnosis_csv, write_diagnosis_csv

DIAGNOSIS_CSV_NAME = "diagnosis_predictions.csv"


def case_id_of_output(truncated_output_file: str) -> str:
    """nnU-Net's truncated output file name (``<folder>/<case id>``) -> the case id."""
    return os.path.basename(truncated_output_file)


class DiagnosisPredictor(nnUNetPredictor):
    diagnosis_from_mirrors = False  # True: every mirrored pass of a tile adds its diagnosis logits too

    @property
    def diagnosis_classes(self) -> Optional[List[str]]:
        settings = self.plans_manager.plans.get(DIAGNOSIS_PLANS_KEY)
        return None if settings is None else list(settings["classes"])

    def _manage_input_and_output_lists(self, *args, **kwargs):
        inputs, outputs, previous_stage = super()._manage_input_and_output_lists(*args, **kwargs)
        self.diagnosis_probabilities: Dict[str, np.ndarray] = {}
        self._outputs_in_order = list(outputs) if outputs is not None else []
        self._current_output = None
        return inputs, outputs, previous_stage

    def predict_from_data_iterator(self, data_iterator, *args, **kwargs):
        def noting_each_case(iterator):
            for item in iterator:
                self._current_output = item["ofile"]
                yield item
        return super().predict_from_data_iterator(noting_each_case(data_iterator), *args, **kwargs)

    def _next_case_id(self) -> Optional[str]:
        if getattr(self, "_current_output", None) is not None:
            output, self._current_output = self._current_output, None
        elif getattr(self, "_outputs_in_order", None):
            output = self._outputs_in_order.pop(0)
        else:
            return None
        return case_id_of_output(output)

    @contextmanager
    def recording_diagnosis(self, tap: DiagnosisTap):
        """While the block runs, the network's diagnosis output is on and every forward pass of the sliding window
        leaves its diagnosis logits in ``tap`` (cleared first). Does nothing for a network without diagnosis."""
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
            self.diagnosis_probabilities[case_id] = case_probabilities(tap.logits)
        return logits

    def write_diagnosis_csv(self, output_folder: Optional[str]) -> Optional[str]:
        """Write ``diagnosis_predictions.csv`` for the cases predicted by the last call; None when there is nothing
        to write (no diagnosis model, no output folder, or no case predicted)."""
        probabilities = getattr(self, "diagnosis_probabilities", {})
        if self.diagnosis_classes is None or output_folder is None or not probabilities:
            return None
        path = join(output_folder, DIAGNOSIS_CSV_NAME)
        probabilities = {**earlier_predictions(path, self.diagnosis_classes), **probabilities}
        case_ids = sorted(probabilities)
        return str(write_diagnosis_csv(join(output_folder, DIAGNOSIS_CSV_NAME), case_ids,
                                       np.stack([probabilities[c] for c in case_ids]), self.diagnosis_classes))

    # nnU-Net records these methods' arguments by reading locals() against their signatures: spell them out.
    def predict_from_files(self, list_of_lists_or_source_folder, output_folder_or_list_of_truncated_output_files,
                           save_probabilities: bool = False, overwrite: bool = True,
                           num_processes_preprocessing: int = default_num_processes,
                           num_processes_segmentation_export: int = default_num_processes,
                           folder_with_segs_from_prev_stage: str = None, num_parts: int = 1, part_id: int = 0):
        result = super().predict_from_files(
            list_of_lists_or_source_folder, output_folder_or_list_of_truncated_output_files, save_probabilities,
            overwrite, num_processes_preprocessing, num_processes_segmentation_export,
            folder_with_segs_from_prev_stage, num_parts, part_id)
        self.write_diagnosis_csv(_output_folder(output_folder_or_list_of_truncated_output_files))
        return result

    def predict_from_files_sequential(self, list_of_lists_or_source_folder,
                                      output_folder_or_list_of_truncated_output_files,
                                      save_probabilities: bool = False, overwrite: bool = True,
                                      folder_with_segs_from_prev_stage: str = None):
        result = super().predict_from_files_sequential(
            list_of_lists_or_source_folder, output_folder_or_list_of_truncated_output_files, save_probabilities,
            overwrite, folder_with_segs_from_prev_stage)
        self.write_diagnosis_csv(_output_folder(output_folder_or_list_of_truncated_output_files))
        return result


def earlier_predictions(path: str, class_names: List[str]) -> Dict[str, np.ndarray]:
    """The rows of an existing ``diagnosis_predictions.csv`` of the same classes (kept when ``--continue_prediction``
    predicts only the remaining cases), as case id -> probabilities."""
    if not os.path.isfile(path):
        return {}
    try:
        rows = read_diagnosis_csv(path)
    except ValueError:
        return {}
    return {row["case_id"]: np.array([row["probabilities"][name] for name in class_names]) for row in rows
            if list(row["probabilities"]) == list(class_names)}


def _output_folder(output) -> Optional[str]:
    if isinstance(output, str):
        return output
    if isinstance(output, list) and output:
        return os.path.dirname(output[0]) or os.path.curdir
    return None
