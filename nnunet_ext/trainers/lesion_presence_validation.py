"""Image-wise lesion classification scores after nnU-Net's final validation.

nnU-Net's validation exports the fold's segmentations to ``<fold>/validation`` and writes voxel-wise metrics to
``summary.json`` there; this mixin adds ``lesion_presence_summary.json`` beside it (per class and mean image-wise
precision, recall and F1 of presence, see ``nnunet_ext.evaluation.lesion_presence``).
"""

from batchgenerators.utilities.file_and_folder_operations import join

from nnunet_ext.evaluation.lesion_presence import default_summary_file, summarize_lesion_presence, summary_line


class LesionPresenceValidation:
    """Mixin for nnU-Net trainers, placed before the trainer class in the bases:
    ``class MyTrainer(LesionPresenceValidation, nnUNetTrainer)``."""

    def perform_actual_validation(self, save_probabilities: bool = False):
        super().perform_actual_validation(save_probabilities)
        if self.local_rank != 0:
            return
        validation_folder = join(self.output_folder, "validation")
        summary = summarize_lesion_presence(validation_folder,
                                            join(self.preprocessed_dataset_folder_base, "gt_segmentations"),
                                            self.dataset_json, self.plans_manager.plans)
        self.print_to_log_file(f"{summary_line(summary)} -> {default_summary_file(validation_folder)}",
                               also_print_to_console=True)
