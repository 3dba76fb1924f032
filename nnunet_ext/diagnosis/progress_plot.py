"""Add the per-epoch diagnosis score to nnU-Net's ``progress.png``.

nnU-Net draws its progress plot anew every epoch. This reads the picture it has just written and writes it back
with one more panel underneath: the validation AUC (binary) or quadratic weighted kappa (multi-class) per epoch.
nnU-Net's own drawing is left as it is."""

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.image import imread


def add_score_panel(progress_png, scores: Sequence[float], score_name: str) -> Path:
    """Append a panel plotting ``scores`` (one per epoch, NaN where undefined) under the image ``progress_png``."""
    progress_png = Path(progress_png)
    picture = imread(progress_png)
    height, width = picture.shape[:2]
    panel_height = max(1, height // 4)
    dpi = 100
    figure = Figure(figsize=(width / dpi, (height + panel_height) / dpi), dpi=dpi)
    top = figure.add_axes([0, panel_height / (height + panel_height), 1, height / (height + panel_height)])
    top.imshow(picture)
    top.set_axis_off()
    axis = figure.add_axes([0.06, 0.03, 0.9, 0.8 * panel_height / (height + panel_height)])
    epochs = np.arange(len(scores))
    axis.plot(epochs, np.asarray(scores, dtype=float), color="m", marker="o", linewidth=3, label=score_name)
    axis.set_xlabel("epoch")
    axis.set_ylabel(score_name)
    axis.legend(loc="lower right")
    figure.savefig(progress_png, dpi=dpi)
    return progress_png
