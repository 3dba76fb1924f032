"""The per-epoch diagnosis score as its own small picture, ``diagnosis_progress.png`` beside nnU-Net's
``progress.png``.

nnU-Net redraws its 3000 x 6750 pixel ``progress.png`` every epoch; reading it back and writing it again with one
more panel cost about 3.6 s an epoch. This draws only the diagnosis curves (the epoch's score, NaN where undefined,
and its EMA, which chooses ``checkpoint_best.pth``) into a 640 x 320 pixel file and leaves nnU-Net's picture alone.
"""

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from matplotlib.figure import Figure

PROGRESS_FILE_NAME = "diagnosis_progress.png"
SIZE_INCHES, DPI = (6.4, 3.2), 100


def save_score_plot(path, scores: Sequence[float], score_name: str,
                    ema: Optional[Sequence[float]] = None) -> Path:
    """Plot ``scores`` (one per epoch) and, if given, their ``ema`` against the epoch into ``path``."""
    path = Path(path)
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI)
    axis = figure.add_subplot()
    axis.plot(np.arange(len(scores)), np.asarray(scores, dtype=float), color="m", marker="o", linewidth=2,
              label=score_name)
    if ema is not None:
        axis.plot(np.arange(len(ema)), np.asarray(ema, dtype=float), color="k", linestyle="--", linewidth=1.5,
                  label="EMA (chooses checkpoint_best)")
    axis.set_xlabel("epoch")
    axis.set_ylabel(score_name)
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    return path
