"""One PNG per case: the image, the prediction's outline and each map, on the slices that matter.

Slices run along the first array axis of nnU-Net's reader (``z`` of a NIfTI image: axial for axially stored images).
For every map (its channels averaged, a ``background`` channel left out) the panels: the slice of the map's maximum,
the slice where the prediction holds most voxels of its highest label (usually the smallest structure, a lesion)
and, with a query, the slice of the query point, which is marked. Each panel shows the image's first channel in
grey, the map over it (colour, scaled to the map's own range on that slice; 0 stays transparent) and the outline of
every predicted label.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np


@dataclass
class MapSlices:
    """What a figure row needs of one map: its name and ``(label, slice index, 2D map slice)`` panels."""

    name: str
    panels: List[Tuple[str, int, np.ndarray]] = field(default_factory=list)


def map_slices(name: str, values: np.ndarray, channels: Sequence[str], query_slice: Optional[int],
               prediction_slice: Optional[int] = None) -> MapSlices:
    """``values [C, Z, Y, X]`` (original geometry) -> the slices of its channel mean (without a ``background``
    channel) at its maximum, at the prediction's slice and at the query."""
    kept = [c for c, name_ in enumerate(channels) if name_ != "background"] or list(range(values.shape[0]))
    mean = values[kept].mean(axis=0)
    peak = int(np.unravel_index(int(np.argmax(mean)), mean.shape)[0])
    slices = MapSlices(name, [("maximum", peak, mean[peak])])
    if prediction_slice is not None and prediction_slice != peak:
        slices.panels.append(("prediction", prediction_slice, mean[prediction_slice]))
    if query_slice is not None:
        slices.panels.append(("query", query_slice, mean[query_slice]))
    return slices


def prediction_slice(segmentation: np.ndarray) -> Optional[int]:
    """The slice with the most voxels of the highest predicted label (None: nothing predicted)."""
    highest = int(segmentation.max())
    if highest == 0:
        return None
    return int(np.argmax((segmentation == highest).reshape(segmentation.shape[0], -1).sum(axis=1)))


def case_figure(path: Path, case: str, image: np.ndarray, segmentation: np.ndarray, rows: Sequence[MapSlices],
                query_yx: Optional[Tuple[float, float]] = None, columns: int = 4) -> Path:
    """Write the PNG of one case: every map's panels, in reading order on a grid of ``columns``. ``image [Z, Y, X]``
    (first channel), ``segmentation [Z, Y, X]`` (labels, the original geometry), ``query_yx`` the query point's
    in-slice position (array indices), marked on the query panels."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    panels = [(row.name, *panel) for row in rows for panel in row.panels]
    columns = max(1, min(columns, len(panels)))
    lines = -(-len(panels) // columns)
    figure, axes = plt.subplots(lines, columns, figsize=(2.7 * columns, 2.7 * lines), squeeze=False, dpi=90)
    labels = [int(v) for v in np.unique(segmentation) if v > 0]
    for axis in axes.flat[len(panels):]:
        axis.axis("off")
    for axis, (name, label, index, values) in zip(axes.flat, panels):
        axis.imshow(image[index], cmap="gray", interpolation="nearest")
        shown = np.ma.masked_where(values <= 0, values)
        high = float(values.max())
        axis.imshow(shown, cmap="magma", alpha=0.55, interpolation="nearest", vmin=float(values.min()),
                    vmax=high if high > values.min() else None)
        for value, colour in zip(labels, ("#00e5ff", "#7CFC00", "#ffd700", "#ff69b4", "#ffffff")):
            if (segmentation[index] == value).any():
                axis.contour(segmentation[index] == value, levels=[0.5], colors=[colour], linewidths=0.8)
        if label == "query" and query_yx is not None:
            axis.plot([query_yx[1]], [query_yx[0]], marker="+", color="#00ff00", markersize=12, markeredgewidth=2)
        axis.set_title(f"{name}\n{label}, slice {index}", fontsize=7)
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle(f"{case}: image, prediction outline (labels {labels or 'none'}), map", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return Path(path)
