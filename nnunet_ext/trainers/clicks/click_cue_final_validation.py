"""Mixin: nnU-Net's own final validation (``perform_actual_validation``: sliding window, mirroring, export,
``summary.json``) with simulated clicks: while it runs, the validation cases it loads get the cue of one click in
each component of their reference labels (:func:`~nnunet_ext.clicks.drawing.simulated_clicks`, seed 0: what
``nnunet_ext_predict --simulated_clicks`` gives a labelled test set), appended as the last channel. Only the dataset
class that nnU-Net's validation loads cases with is replaced, for its duration; nnU-Net's loop is its own."""

import numpy as np

from nnunet_ext.clicks.cue import click_cue
from nnunet_ext.clicks.drawing import simulated_clicks

SIMULATED_CLICK_SEED = 0


def dataset_class_with_click_cues(dataset_class, trainer):
    """A subclass of nnU-Net's dataset class whose ``load_case`` appends the simulated-click cue to ``data``."""

    class WithClickCues(dataset_class):
        def load_case(self, identifier):
            data, seg, seg_prev, properties = super().load_case(identifier)
            data, labels = np.asarray(data[:]), np.asarray(seg[:])
            ignore = trainer.label_manager.ignore_label if trainer.label_manager.has_ignore_label else None
            clicks = simulated_clicks(labels[0], identifier, SIMULATED_CLICK_SEED, ignore)
            spacing = trainer.preprocessed_spacing(data.ndim - 1)  # a 2D dataset's cases are [C, 1, Y, X]
            radius = float(trainer.plans_manager.plans["nnunet_ext_click_cue"]["radius_mm"])
            cue = click_cue(data.shape[1:], clicks, spacing, radius).numpy()
            return np.concatenate([data, cue[None].astype(data.dtype)]), seg, seg_prev, properties

    WithClickCues.__name__ = WithClickCues.__qualname__ = f"{dataset_class.__name__}WithClickCues"
    return WithClickCues


class ClickCueFinalValidation:
    def preprocessed_spacing(self, ndim: int) -> list:
        """The configuration's spacing for a case of ``ndim`` axes (a 2D dataset's single slice gets a spacing of
        its own on the first axis, where it matters to no distance)."""
        spacing = [float(s) for s in self.configuration_manager.spacing]
        return spacing if len(spacing) == ndim else [float(max(spacing)), *spacing]

    def perform_actual_validation(self, save_probabilities: bool = False):
        original = self.dataset_class
        self.dataset_class = dataset_class_with_click_cues(original, self)
        try:
            super().perform_actual_validation(save_probabilities)
        finally:
            self.dataset_class = original
