"""Mixin: after nnU-Net's final validation, one diagnosis per validation case by the rule of
``nnunet_ext.diagnosis.aggregation`` (the rule prediction uses, with the tile pooling stored in the plans), written
beside nnU-Net's ``summary.json`` as ``validation/diagnosis_summary.json`` with ``diagnosis_roc.png`` and
``diagnosis_confusion_matrix.png``.

The cases are predicted as nnU-Net's final validation predicts them: tile step 0.5, Gaussian weighting, test-time
mirroring on the trainer's axes, this fold's weights as they are when the validation runs (after training: the
weights at the end of training, i.e. ``checkpoint_final.pth``; ``--val``: the checkpoint loaded, ``--val_best``
``checkpoint_best.pth``). The summary records these settings (``settings``: the keys of
``DiagnosisPredictor.diagnosis_settings``); ``nnunet_ext_predict -f <fold> -step_size 0.5 -chk <that checkpoint>``
with mirroring on gives the same probabilities for the same cases (an end-to-end test checks it)."""

import os
from os.path import join
from typing import Optional, Union

import numpy as np
import torch
import torch.distributed as dist

from nnunet_ext.architectures.diagnosis.diagnosis_tap import DiagnosisTap, set_diagnosis_output
from nnunet_ext.diagnosis.predictor import FINAL_WEIGHTS, DiagnosisPredictor
from nnunet_ext.diagnosis.summary import write_diagnosis_summary

VALIDATION_TILE_STEP_SIZE = 0.5  # nnU-Net's perform_actual_validation, with Gaussian weighting and mirroring


class DiagnosisFinalValidation:
    # the checkpoint file whose weights the network holds (None: not known, e.g. weights given as a dictionary)
    weights_checkpoint: Optional[str] = None

    def load_checkpoint(self, filename_or_checkpoint: Union[dict, str]) -> None:
        super().load_checkpoint(filename_or_checkpoint)
        self.weights_checkpoint = (os.path.basename(filename_or_checkpoint)
                                   if isinstance(filename_or_checkpoint, str) else None)

    def on_train_end(self):
        super().on_train_end()  # nnU-Net saves the weights as checkpoint_final.pth here
        self.weights_checkpoint = FINAL_WEIGHTS

    def perform_actual_validation(self, save_probabilities: bool = False):
        set_diagnosis_output(self.network, False)  # nnU-Net's own pass: segmentation only
        super().perform_actual_validation(save_probabilities)
        case_ids, probabilities, settings = self.validation_case_diagnoses()
        set_diagnosis_output(self.network, True)
        if self.local_rank == 0:
            targets = np.array(self.diagnosis_labels.class_indices(case_ids))
            summary = write_diagnosis_summary(join(self.output_folder, "validation"), case_ids, probabilities,
                                              targets, self.diagnosis_labels, settings["aggregation"], settings)
            self.print_to_log_file(f"Diagnosis on {len(case_ids)} validation cases: {summary['metrics']}")

    def validation_predictor(self) -> DiagnosisPredictor:
        """The predictor of the final validation, on this trainer's network, with nnU-Net's validation settings."""
        predictor = DiagnosisPredictor(tile_step_size=VALIDATION_TILE_STEP_SIZE, use_gaussian=True,
                                       use_mirroring=True, perform_everything_on_device=True, device=self.device,
                                       verbose=False, verbose_preprocessing=False, allow_tqdm=False)
        predictor.manual_initialization(self.network, self.plans_manager, self.configuration_manager, None,
                                        self.dataset_json, self.__class__.__name__,
                                        self.inference_allowed_mirroring_axes)
        predictor.used_folds = [self.fold if self.fold == "all" else int(self.fold)]
        predictor.checkpoint_name = self.weights_checkpoint
        return predictor

    @torch.inference_mode()
    def validation_case_diagnoses(self):
        """(case ids, ``[N, num_classes]`` probabilities, the predictor's settings) of this fold's validation cases,
        gathered over DDP ranks."""
        self.set_deep_supervision_enabled(False)
        self.network.eval()
        predictor = self.validation_predictor()
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
            probabilities.append(predictor.case_diagnosis(tap, case_id))
        if self.is_ddp:
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, (case_ids, probabilities))
            case_ids = [c for ids, _ in gathered for c in ids]
            probabilities = [p for _, probs in gathered for p in probs]
        settings = predictor.diagnosis_settings()
        if not probabilities:
            return case_ids, np.zeros((0, len(self.diagnosis_labels.classes))), settings
        return case_ids, np.stack(probabilities), settings
