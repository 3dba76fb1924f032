"""Mixin: each epoch's validation AUC (binary diagnosis) or quadratic weighted kappa (multi-class), computed on the
validation patches of the epoch (each patch carries its case's label), written to the training log, to nnU-Net's
logger (and so its checkpoints) and drawn, with its EMA where logged, into ``diagnosis_progress.png`` (640 x 320
pixels, :mod:`nnunet_ext.diagnosis.progress_plot`) beside nnU-Net's ``progress.png``, which stays as nnU-Net wrote
it. Outputs of all DDP ranks are gathered first."""

from os.path import join

import numpy as np
import torch.distributed as dist

from nnunet_ext.diagnosis.metrics import epoch_score, probabilities_from_logits
from nnunet_ext.diagnosis.progress_plot import PROGRESS_FILE_NAME, save_score_plot

PROBABILITIES_KEY = "diagnosis_probabilities"
TARGETS_KEY = "diagnosis_targets"


def epoch_score_name(num_classes: int) -> str:
    return "val_diagnosis_auc" if num_classes == 2 else "val_diagnosis_kappa"


class DiagnosisEpochScore:

    def on_train_start(self):
        super().on_train_start()
        name = epoch_score_name(len(self.diagnosis_labels.classes))
        self.logger.local_logger.my_fantastic_logging.setdefault(name, [])

    def validation_step(self, batch: dict) -> dict:
        result = super().validation_step(batch)
        result[PROBABILITIES_KEY] = probabilities_from_logits(self.diagnosis_tap.latest())
        result[TARGETS_KEY] = self.diagnosis_tap.targets.cpu().numpy()
        return result

    def on_validation_epoch_end(self, val_outputs):
        probabilities = np.concatenate([o.pop(PROBABILITIES_KEY) for o in val_outputs], 0)
        targets = np.concatenate([o.pop(TARGETS_KEY) for o in val_outputs], 0)
        if self.is_ddp:
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, (probabilities, targets))
            probabilities = np.concatenate([p for p, _ in gathered], 0)
            targets = np.concatenate([t for _, t in gathered], 0)
        name, value = epoch_score(probabilities, targets)
        self.logger.log(name, value, self.current_epoch)
        self.print_to_log_file(f"{name} (validation patches): {np.round(value, 4)}")
        super().on_validation_epoch_end(val_outputs)

    def on_epoch_end(self):
        super().on_epoch_end()
        if self.local_rank == 0:
            name = epoch_score_name(len(self.diagnosis_labels.classes))
            history = self.logger.local_logger.my_fantastic_logging
            save_score_plot(join(self.output_folder, PROGRESS_FILE_NAME), history.get(name, []), name,
                            history.get("ema_" + name))
