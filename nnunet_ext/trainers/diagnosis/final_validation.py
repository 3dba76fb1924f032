"""Mixin: after nnU-Net's final validation, one diagnosis per validation case by the rule of
``nnunet_ext.diagnosis.aggregation`` (the rule prediction uses), written beside nnU-Net's ``summary.json`` as
``validation/diagnosis_summary.json`` with ``diagnosis_roc.png`` and ``diagnosis_confusion_matrix.png``."""

from os.path import join

import numpy as np
import torch
import torch.distributed as dist

from nnunet_ext.architectures.diagnosis.diagnosis_tap import DiagnosisTap, set_diagnosis_output
from nnunet_ext.diagnosis.aggregation import AGGREGATION_RULE, case_probabilities
from nnunet_ext.diagnosis.predictor import DiagnosisPredictor
from nnunet_ext.diagnosis.summary import write_diagnosis_summary


class DiagnosisFinalValidation:

    def perform_actual_validation(self, save_probabilities: bool = False):
        set_diagnosis_output(self.network, False)  # nnU-Net's own pass: segmentation only
        super().perform_actual_validation(save_probabilities)
        case_ids, probabilities = self.validation_case_diagnoses()
        set_diagnosis_output(self.network, True)
        if self.local_rank == 0:
            targets = np.array(self.diagnosis_labels.class_indices(case_ids))
            summary = write_diagnosis_summary(join(self.output_folder, "validation"), case_ids, probabilities,
                                              targets, self.diagnosis_labels, AGGREGATION_RULE)
            self.print_to_log_file(f"Diagnosis on {len(case_ids)} validation cases: {summary['metrics']}")

    @torch.inference_mode()
    def validation_case_diagnoses(self):
        """(case ids, ``[N, num_classes]`` probabilities) of this fold's validation cases, gathered over DDP ranks."""
        self.set_deep_supervision_enabled(False)
        self.network.eval()
        predictor = DiagnosisPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                                    perform_everything_on_device=True, device=self.device, verbose=False,
                                    verbose_preprocessing=False, allow_tqdm=False)
        predictor.manual_initialization(self.network, self.plans_manager, self.configuration_manager, None,
                                        self.dataset_json, self.__class__.__name__,
                                        self.inference_allowed_mirroring_axes)
        _, val_keys = self.do_split()
        if self.is_ddp:
            val_keys = val_keys[self.local_rank::dist.get_world_size()]
        dataset = self.dataset_class(self.preprocessed_dataset_folder, val_keys)
        tap = DiagnosisTap()
        case_ids, probabilities = [], []
        for case_id in dataset.identifiers:
            data = dataset.load_case(case_id)[0]
            with predictor.recording_diagnosis(tap):
                predictor.predict_sliding_window_return_logits(torch.from_numpy(np.asarray(data[:])))
            case_ids.append(case_id)
            probabilities.append(case_probabilities(tap.logits))
        if self.is_ddp:
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, (case_ids, probabilities))
            case_ids = [c for ids, _ in gathered for c in ids]
            probabilities = [p for _, probs in gathered for p in probs]
        if not probabilities:
            return case_ids, np.zeros((0, len(self.diagnosis_labels.classes)))
        return case_ids, np.stack(probabilities)
