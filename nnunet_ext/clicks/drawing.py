"""Where clicks are drawn: inside the connected components of the target, one label value at a time.

A *target component* is a connected component (full connectivity: faces, edges and corners) of the voxels of one
foreground label (labels > 0, the ignore label excluded); for region-based targets (one channel per region), of one
region channel. A voxel of the organ and one of a lesion inside it belong to different components, so a click says
"this organ" or "this lesion", as the paper's clicks are "within the mask of target lesion or organ".

* Training (:func:`draw_training_click`): one component chosen uniformly among all of the patch, one voxel chosen
  uniformly inside it; no click for a patch without target.
* Evaluation (:func:`simulated_clicks`): one click in each component of the reference, each drawn uniformly inside
  its component, with a generator seeded by ``(seed, case id)`` so that every run and every model get the same
  clicks.
"""

import zlib
from typing import List, Optional, Tuple

import numpy as np
from scipy import ndimage


def target_components(target: np.ndarray, ignore_label: Optional[int] = None, regions: bool = False
                      ) -> List[np.ndarray]:
    """The voxel indices ``[n, ndim]`` of every target component of ``target``: labels ``[*S]``, or with
    ``regions`` region channels ``[R, *S]`` (each channel's voxels > 0); in a fixed order (by label or region, then
    by SciPy's component numbering)."""
    if regions:
        masks = [channel > 0 for channel in target]
    else:
        masks = [target == value for value in np.unique(target) if value > 0 and value != ignore_label]
    components = []
    for mask in masks:
        labelled, count = ndimage.label(mask, structure=np.ones((3,) * mask.ndim, dtype=bool))
        components += [np.argwhere(labelled == index) for index in range(1, count + 1)]
    return components


def draw_training_click(target: np.ndarray, rng: np.random.Generator, ignore_label: Optional[int] = None,
                        regions: bool = False) -> Optional[Tuple[int, ...]]:
    """One click in a patch's target (see :func:`target_components`): a uniformly chosen voxel of a uniformly chosen
    component; None without target."""
    components = target_components(target, ignore_label, regions)
    if not components:
        return None
    component = components[int(rng.integers(len(components)))]
    return tuple(int(v) for v in component[int(rng.integers(len(component)))])


def case_generator(seed: int, case: str) -> np.random.Generator:
    """The generator of a case's simulated clicks: the same for every run, model and process."""
    return np.random.default_rng([seed, zlib.crc32(case.encode())])


def simulated_clicks(reference: np.ndarray, case: str, seed: int = 0, ignore_label: Optional[int] = None,
                     regions: bool = False) -> List[Tuple[int, ...]]:
    """One click per target component of ``reference`` (labels, or region channels), drawn with
    :func:`case_generator`."""
    rng = case_generator(seed, case)
    return [tuple(int(v) for v in component[int(rng.integers(len(component)))])
            for component in target_components(reference, ignore_label, regions)]
