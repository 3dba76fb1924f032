"""The diagnosis score panel goes under nnU-Net's progress plot, which stays as it was above it."""

import numpy as np
from matplotlib.figure import Figure
from matplotlib.image import imread

from nnunet_ext.diagnosis.progress_plot import add_score_panel


def test_panel_is_added_below_the_original_picture(tmp_path):
    path = tmp_path / "progress.png"
    figure = Figure(figsize=(6, 4), dpi=100)
    figure.add_subplot().plot([0, 1], [1, 0], color="k")
    figure.savefig(path)
    before = imread(path)
    add_score_panel(path, [0.5, float("nan"), 0.75], "val_diagnosis_auc")
    after = imread(path)
    assert after.shape[1] == before.shape[1] and after.shape[0] == before.shape[0] + before.shape[0] // 4
    top = after[:before.shape[0], :, :3]
    assert np.abs(top - before[..., :3]).mean() < 0.02  # nnU-Net's drawing, unchanged
    panel = after[before.shape[0]:, :, :3]
    magenta = (panel[..., 0] > 0.6) & (panel[..., 1] < 0.4) & (panel[..., 2] > 0.6)
    assert magenta.sum() > 20  # the score curve is drawn
