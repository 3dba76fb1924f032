"""Maps on nnU-Net's preprocessed grid back in the case's original geometry, and written as images a viewer overlays.

nnU-Net preprocesses a case by transposing its axes (``transpose_forward``), cropping it to the non-zero region
(``bbox_used_for_cropping``) and resampling it to the configuration's spacing; its export of a prediction undoes the
three in reverse (``convert_predicted_logits_to_segmentation_with_correct_shape``). :func:`to_original_geometry`
does the same to a map with nnU-Net's own functions: the configuration's ``resampling_fn_probabilities`` (what
nnU-Net uses for the logits), acvl_utils' ``insert_crop_into_image`` (outside the crop the map is 0), and the
transpose back. The result lies on the grid of ``nnUNetv2_predict``'s segmentation of the same case.

:func:`write_map` writes it with SimpleITK, with the spacing, origin and direction nnU-Net's ``SimpleITKIO`` read from
the case's image (``properties["sitk_stuff"]``), as nnU-Net's writer does for a segmentation but in float32: one
channel as a scalar image, several as a vector image (one component per channel; NIfTI's vector intent).
"""

from pathlib import Path
from typing import Union

import numpy as np
import SimpleITK as sitk
import torch
from acvl_utils.cropping_and_padding.bounding_boxes import insert_crop_into_image

from nnunet_ext.core.errors import InputFilesError


def current_spacing(properties: dict, plans_manager, configuration_manager) -> list:
    """The spacing of the preprocessed grid, as nnU-Net's export computes it (a 2D configuration of a 3D case keeps
    the first axis' spacing)."""
    spacing_transposed = [properties["spacing"][i] for i in plans_manager.transpose_forward]
    if len(configuration_manager.spacing) == len(properties["shape_after_cropping_and_before_resampling"]):
        return list(configuration_manager.spacing)
    return [spacing_transposed[0], *configuration_manager.spacing]


def to_original_geometry(maps: Union[torch.Tensor, np.ndarray], properties: dict, plans_manager,
                         configuration_manager) -> np.ndarray:
    """``[C, *preprocessed shape]`` -> ``[C, *original shape]`` float32 (the array order of nnU-Net's reader)."""
    maps = maps.float().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps, dtype=np.float32)
    target_spacing = [properties["spacing"][i] for i in plans_manager.transpose_forward]
    resampled = configuration_manager.resampling_fn_probabilities(
        maps, properties["shape_after_cropping_and_before_resampling"],
        current_spacing(properties, plans_manager, configuration_manager), target_spacing)
    resampled = resampled.cpu().numpy() if isinstance(resampled, torch.Tensor) else np.asarray(resampled)
    full = np.zeros((maps.shape[0], *properties["shape_before_cropping"]), dtype=np.float32)
    full = insert_crop_into_image(full, resampled.astype(np.float32, copy=False),
                                  properties["bbox_used_for_cropping"])
    return full.transpose([0, *[i + 1 for i in plans_manager.transpose_backward]])


def check_writable_geometry(properties: dict, reader_name: str, case: str) -> None:
    """Maps are written with the geometry SimpleITK read; a dataset read otherwise stops with the fix."""
    if "sitk_stuff" not in properties:
        raise InputFilesError(
            f"Attention maps are written with the geometry that nnU-Net's SimpleITKIO reads; this model's dataset "
            f"is read by {reader_name}, whose geometry we do not write.", case=case,
            fix="convert the images to NIfTI (.nii.gz) read by SimpleITKIO (the plans' image_reader_writer), or "
                "write the maps yourself from the arrays of nnunet_ext.attention_maps.")


def map_image(values: np.ndarray, properties: dict) -> sitk.Image:
    """``[C, *original shape]`` -> a SimpleITK image with the case's geometry (scalar for ``C = 1``)."""
    geometry = properties["sitk_stuff"]
    values = np.asarray(values, dtype=np.float32)
    if len(geometry["spacing"]) == 2:  # nnU-Net reads a 2D image as [1, y, x]
        values = values[:, 0]
    image = (sitk.GetImageFromArray(values[0]) if values.shape[0] == 1 else
             sitk.GetImageFromArray(np.moveaxis(values, 0, -1), isVector=True))
    image.SetSpacing(geometry["spacing"])
    image.SetOrigin(geometry["origin"])
    image.SetDirection(geometry["direction"])
    return image


def write_map(values: np.ndarray, properties: dict, path: Union[str, Path]) -> Path:
    """Write ``[C, *original shape]`` (float32, compressed) to ``path``."""
    sitk.WriteImage(map_image(values, properties), str(path), True)
    return Path(path)
