"""Stage 2's geometry: target components (too small ones left out, as the paper discards them), the longest axis by
PCA, the cube around a target resampled to a fixed size, and a crop pasted back on exactly the case's grid, with the
nearest cube centre winning where cubes overlap."""

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_ext.geometry.crop_cubes import (CropCube, crop_image, cube_around, longest_axis_mm, paste_crops,
                                            segmentation_components, with_nominal_geometry)

SPACING = (0.8, 0.8, 2.5)  # x, y, z
ORIGIN = (10.0, -20.0, 5.0)
DIRECTION = (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)


def image_of(array: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    image.SetDirection(DIRECTION)
    return image


def segmentation() -> np.ndarray:
    labels = np.zeros((16, 60, 60), dtype=np.uint8)  # z, y, x
    labels[5:11, 10:30, 10:20] = 1  # a target
    labels[7:9, 14:18, 13:16] = 2  # a lesion inside it (one component with it)
    labels[4:12, 40:45, 40:55] = 1  # a second target
    labels[2, 50:58, 5] = 1  # a line one voxel wide: too small
    labels[13, 2:4, 2:4] = 1  # four voxels: too small
    return labels


def test_components_are_the_foreground_largest_first_and_small_ones_marked():
    components = segmentation_components(image_of(segmentation()))
    assert [c.size for c in components] == [6 * 20 * 10, 8 * 5 * 15, 8, 4]
    assert [c.large_enough for c in components] == [True, True, False, False]


def test_the_longest_axis_is_the_targets_length_along_its_principal_axis():
    # a rod along a diagonal of the x-y plane, 40 voxels of 1 mm x 1 mm: about 40 * sqrt(2) mm long
    voxels = np.array([[i, i, 0] for i in range(40)])
    assert longest_axis_mm(voxels, (1.0, 1.0, 1.0)) == pytest.approx(39 * np.sqrt(2) + 1.0)
    # anisotropic spacing counts: 10 voxels along z at 2.5 mm are 25 mm
    column = np.array([[0, 0, k] for k in range(10)])
    assert longest_axis_mm(column, SPACING) == pytest.approx(9 * 2.5 + 2.5)


def test_the_cube_is_centred_on_the_target_and_the_crop_holds_it_in_its_middle():
    image = image_of(segmentation())
    target = segmentation_components(image)[0]  # the 6 x 20 x 10 target with its lesion
    cube, length = cube_around(target, image, size=32, margin=0.25)
    assert cube.side_mm == pytest.approx(1.5 * length)
    assert cube.spacing_mm == pytest.approx(cube.side_mm / 32)
    crop = crop_image(image, cube, labels=True)
    assert crop.GetSize() == (32, 32, 32)
    array = sitk.GetArrayFromImage(crop)
    inside = np.argwhere(array > 0)
    assert np.allclose(inside.mean(axis=0), 15.5, atol=1.5)  # the target's centroid at the crop's centre
    assert (array == 2).any()  # the lesion came along
    nominal = with_nominal_geometry(crop)
    assert nominal.GetSpacing() == (1.0, 1.0, 1.0) and nominal.GetOrigin() == (0.0, 0.0, 0.0)
    assert CropCube.from_json(cube.to_json()) == cube


def test_pasting_a_crop_back_gives_the_cases_grid_and_replaces_stage_1_inside_the_cube_only():
    stage1_array = segmentation()
    stage1 = image_of(stage1_array)
    target = segmentation_components(stage1)[0]
    cube, _ = cube_around(target, stage1, size=48, margin=0.25)
    refined = sitk.GetArrayFromImage(crop_image(stage1, cube, labels=True))
    refined[refined == 1] = 3  # Stage 2 relabels the target: visible where it was pasted
    crop = sitk.GetImageFromArray(refined)
    pasted = paste_crops(stage1, [(with_nominal_geometry(crop), cube)])
    assert pasted.GetSize() == stage1.GetSize() and pasted.GetSpacing() == stage1.GetSpacing()
    assert pasted.GetOrigin() == stage1.GetOrigin() and pasted.GetDirection() == stage1.GetDirection()
    result = sitk.GetArrayFromImage(pasted)
    target_voxels = stage1_array[5:11, 10:30, 10:20]
    assert np.array_equal(result[5:11, 10:30, 10:20], np.where(target_voxels == 1, 3, target_voxels))
    assert np.array_equal(result[4:12, 40:45, 40:55], stage1_array[4:12, 40:45, 40:55])  # outside the cube
    assert result[2, 55, 5] == 1 and result[13, 3, 3] == 1  # too small for a crop: Stage 1 stays


def test_where_cubes_overlap_the_nearest_cube_centre_wins():
    stage1 = image_of(np.zeros((16, 60, 60), dtype=np.uint8))
    centre_a = stage1.TransformContinuousIndexToPhysicalPoint((20.0, 30.0, 8.0))
    centre_b = stage1.TransformContinuousIndexToPhysicalPoint((34.0, 30.0, 8.0))
    cubes = [CropCube(tuple(c), 30.0, DIRECTION, 8) for c in (centre_a, centre_b)]
    crops = [sitk.GetImageFromArray(np.full((8, 8, 8), value, dtype=np.uint8)) for value in (1, 2)]
    result = sitk.GetArrayFromImage(paste_crops(stage1, list(zip(crops, cubes))))
    assert result[8, 30, 26] == 1 and result[8, 30, 28] == 2  # x = 26 is nearer centre a (20), x = 28 centre b
    assert result[8, 30, 10] == 1 and result[8, 30, 44] == 2  # inside one cube only
    assert result[8, 30, 0] == 0  # inside none
