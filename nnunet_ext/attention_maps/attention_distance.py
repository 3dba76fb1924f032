"""The mean attention distance of every block and head, the evidence for how many blocks to keep (the seminar in
``../shared/papers/004``: "attention distance is analogous to receptive field size"; UNETR's "receptive field starts
to be global after 3 blocks").

Per case the distances are the mean over the case's tiles (and folds) of each block's and head's
``mean_i sum_j A[i, j] d(i, j)`` in mm (:mod:`~nnunet_ext.architectures.attention.token_attention`); over cases, their
mean. **The criterion for global attention**: a block attends globally when the mean over its heads reaches
``global_fraction`` (0.75 by default) of the distance uniform attention would give on the same token grid (the mean
distance between two tokens). The first such block is reported; the seminar's proposal is to keep that many blocks.
"""

import json
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

DEFAULT_GLOBAL_FRACTION = 0.75


def first_global_block(head_mean: Sequence[float], uniform: float, fraction: float) -> Optional[int]:
    """1-based index of the first block whose head-mean distance is at least ``fraction * uniform``; None if none."""
    for index, distance in enumerate(head_mean, start=1):
        if distance >= fraction * uniform:
            return index
    return None


def distance_summary(per_case: Dict[str, np.ndarray], uniform: float,
                     fraction: float = DEFAULT_GLOBAL_FRACTION) -> dict:
    """``{case: [blocks, heads] distances in mm}`` -> the JSON summary (per case, their mean, the head means, the
    uniform distance, the criterion and the first global block)."""
    stacked = np.stack([np.asarray(d, dtype=float) for d in per_case.values()])
    mean = stacked.mean(axis=0)
    head_mean = mean.mean(axis=1)
    return {
        "unit": "mm",
        "what": "mean attention distance: mean over query tokens of sum_j A[i, j] * d(i, j), d between token centres "
                "(token cell x voxel spacing); per block (rows) and head (columns); mean over each case's tiles and "
                "folds, then over the cases",
        "blocks": int(mean.shape[0]), "heads": int(mean.shape[1]),
        "per_block_and_head": mean.round(4).tolist(),
        "per_block_head_mean": head_mean.round(4).tolist(),
        "uniform_attention_distance": round(float(uniform), 4),
        "criterion": f"a block attends globally when its head-mean distance >= {fraction} x the uniform attention's "
                     f"distance",
        "global_fraction": fraction,
        "first_global_block": first_global_block(head_mean, uniform, fraction),
        "per_case": {case: np.asarray(d, dtype=float).round(4).tolist() for case, d in per_case.items()},
    }


def write_distance_report(summary: dict, json_path: Path, png_path: Path, title: str) -> None:
    """The JSON, and its plot against the block index (each head a dot, the head mean a line, the uniform
    attention's distance and the criterion's threshold dashed)."""
    Path(json_path).write_text(json.dumps(summary, indent=2) + "\n")
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    values = np.asarray(summary["per_block_and_head"])
    blocks = np.arange(1, values.shape[0] + 1)
    figure, axis = plt.subplots(figsize=(5.2, 3.4), dpi=100)
    for head in range(values.shape[1]):
        axis.scatter(blocks, values[:, head], s=10, color="#7f7f7f", alpha=0.7, label="heads" if head == 0 else None)
    axis.plot(blocks, summary["per_block_head_mean"], marker="o", color="#d62728", label="mean over heads")
    uniform = summary["uniform_attention_distance"]
    axis.axhline(uniform, color="#1f77b4", linestyle="--", linewidth=1, label="uniform attention")
    axis.axhline(summary["global_fraction"] * uniform, color="#1f77b4", linestyle=":", linewidth=1,
                 label=f"{summary['global_fraction']} x uniform")
    first = summary["first_global_block"]
    if first is not None:
        axis.axvline(first, color="#2ca02c", linewidth=1, label=f"first global block: {first}")
    axis.set_xlabel("block")
    axis.set_ylabel("mean attention distance (mm)")
    axis.set_xticks(blocks)
    axis.set_ylim(bottom=0)
    axis.set_title(title, fontsize=8)
    axis.legend(fontsize=6, loc="lower right")
    figure.tight_layout()
    figure.savefig(png_path)
    plt.close(figure)
