"""Maps on nnU-Net's preprocessed grid back in the case's own geometry (nnU-Net's resampling, cropping and transposition
undone by nnU-Net's functions), written with the image's spacing, origin and direction; query points in world mm
found on the preprocessed grid; a point outside the image refused with the image's extent."""

import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_ext.attention_maps.map_predictor import Stitcher, position_in_tile, tile_holds
from nnunet_ext.attention_maps.original_geometry import map_image, to_original_geometry, write_map
from nnunet_ext.geometry.world_points import (image_extent_mm, index_to_world, locate_query,
                                                   world_to_index)
from nnunet_ext.core.errors import UserInputError

SHAPE_ZYX = (18, 30, 34)
SPACING_XYZ = (0.8, 0.7, 3.0)
ORIGIN = (-12.0, 40.0, 7.5)
DIRECTION = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)  # x and y axes rotated in the world


@pytest.fixture
def case(tmp_path, planned_synthetic):
    """A CT-like image with a zero border (nnU-Net crops it away), anisotropic spacing unlike the plans', a rotated
    direction, and a smooth intensity ramp; preprocessed by nnU-Net's own preprocessor (3d_fullres)."""
    z, y, x = np.meshgrid(*[np.arange(s, dtype=np.float32) for s in SHAPE_ZYX], indexing="ij")
    image = 10.37 + 4.0 * z + 1.5 * y - 1.0 * x  # inside the plans' CT clipping range (-27 .. 164 HU)
    image[:, :3] = 0.0  # a zero border on y: nnU-Net crops to the non-zero region
    written = sitk.GetImageFromArray(image)
    written.SetSpacing(SPACING_XYZ)
    written.SetOrigin(ORIGIN)
    written.SetDirection(DIRECTION)
    path = tmp_path / "case_0000.nii.gz"
    sitk.WriteImage(written, str(path))
    plans_file, dataset_json = planned_synthetic["nnUNetPlans"]
    plans_manager = PlansManager(json.loads(plans_file.read_text()))
    configuration_manager = plans_manager.get_configuration("3d_fullres")
    preprocessor = configuration_manager.preprocessor_class(verbose=False)
    data, _, properties = preprocessor.run_case([str(path)], None, plans_manager, configuration_manager,
                                                dataset_json)
    return {"image": image, "path": path, "data": data, "properties": properties, "plans": plans_manager,
            "configuration": configuration_manager}


def test_a_map_comes_back_on_the_original_grid_and_zero_outside_the_crop(case):
    properties, data = case["properties"], case["data"]
    assert tuple(properties["bbox_used_for_cropping"][1]) == (3, SHAPE_ZYX[1])  # the border was cropped
    assert data.shape[1:] != SHAPE_ZYX  # and the case resampled
    ones = torch.ones(2, *data.shape[1:])
    back = to_original_geometry(ones, properties, case["plans"], case["configuration"])
    assert back.shape == (2, *SHAPE_ZYX) and back.dtype == np.float32
    assert np.allclose(back[:, :, 3:], 1.0, atol=1e-4) and np.all(back[:, :, :3] == 0)
    # the preprocessed image itself, sent back, lies where the original image lies
    returned = to_original_geometry(torch.from_numpy(data[:1]), properties, case["plans"], case["configuration"])[0]
    original = case["image"][:, 3:]
    correlation = np.corrcoef(returned[:, 3:].ravel(), original.ravel())[0, 1]
    assert correlation > 0.99


def test_written_maps_have_the_images_spacing_origin_and_direction(case, tmp_path):
    reference = sitk.ReadImage(str(case["path"]))
    values = np.random.default_rng(0).random((3, *SHAPE_ZYX), dtype=np.float32)
    for channels in (1, 3):
        path = write_map(values[:channels], case["properties"], tmp_path / f"map{channels}.nii.gz")
        written = sitk.ReadImage(str(path))
        assert written.GetSize() == reference.GetSize()
        assert np.allclose(written.GetSpacing(), reference.GetSpacing())
        assert np.allclose(written.GetOrigin(), reference.GetOrigin())
        assert np.allclose(written.GetDirection(), reference.GetDirection())
        assert written.GetNumberOfComponentsPerPixel() == channels
        array = sitk.GetArrayFromImage(written)
        expected = values[0] if channels == 1 else np.moveaxis(values[:channels], 0, -1)
        assert np.array_equal(array, expected)


def test_a_2d_image_is_written_2d():
    properties = {"sitk_stuff": {"spacing": (0.5, 0.7), "origin": (1.0, 2.0), "direction": (1.0, 0.0, 0.0, 1.0)}}
    image = map_image(np.ones((1, 1, 6, 5), dtype=np.float32), properties)
    assert image.GetDimension() == 2 and image.GetSize() == (5, 6)


def test_world_and_index_round_trip_with_a_rotated_direction():
    geometry = {"spacing": SPACING_XYZ, "origin": ORIGIN, "direction": DIRECTION}
    reference = sitk.Image(SHAPE_ZYX[::-1], sitk.sitkFloat32)
    reference.SetSpacing(SPACING_XYZ)
    reference.SetOrigin(ORIGIN)
    reference.SetDirection(DIRECTION)
    index = (5.0, 11.0, 7.0)
    world = index_to_world(index, geometry)
    assert np.allclose(world, reference.TransformContinuousIndexToPhysicalPoint(index))
    assert np.allclose(world_to_index(world, geometry), index)


def test_a_query_lands_on_the_preprocessed_voxel_of_its_image_voxel(case):
    properties, data = case["properties"], case["data"]
    geometry = properties["sitk_stuff"]
    for index_zyx in [(9, 15, 20), (2, 25, 4), (16, 5, 30)]:
        world = index_to_world(index_zyx[::-1], geometry)
        query = locate_query(world, properties, data.shape[1:], case["plans"], "case")
        assert np.allclose(query.image_index, index_zyx, atol=1e-6)
        # the ramp's value there, normalised as nnU-Net normalised the case, is the preprocessed value there
        value = data[(0, *query.preprocessed_voxel)]
        neighbourhood = data[0][tuple(slice(max(v - 1, 0), v + 2) for v in query.preprocessed_voxel)]
        assert neighbourhood.min() - 1e-3 <= value <= neighbourhood.max() + 1e-3
        expected = case["image"][index_zyx]
        scale = (data[0].max() - data[0].min()) / (case["image"][:, 3:].max() - case["image"][:, 3:].min())
        assert abs((value - data[0].min()) - (expected - case["image"][:, 3:].min()) * scale) < 0.15 * (
            data[0].max() - data[0].min())


def test_a_query_outside_the_image_names_the_case_and_the_extent(case):
    properties = case["properties"]
    geometry = properties["sitk_stuff"]
    extent = image_extent_mm(geometry, SHAPE_ZYX[::-1])
    outside = [extent[0][1] + 10.0, extent[1][0], extent[2][0]]
    with pytest.raises(UserInputError, match=r"outside the image") as error:
        locate_query(outside, properties, case["data"].shape[1:], case["plans"], "case_7")
    message = str(error.value)
    assert "case_7" in message and f"[{extent[0][0]:.1f}, {extent[0][1]:.1f}]" in message
    with pytest.raises(UserInputError, match="3D"):
        locate_query([1.0, 2.0], properties, case["data"].shape[1:], case["plans"], "case_7")
    in_border = index_to_world((10.0, 1.0, 5.0), geometry)  # y index 1: in the zero border nnU-Net cropped
    with pytest.raises(UserInputError, match="crops away"):
        locate_query(in_border, properties, case["data"].shape[1:], case["plans"], "case_7")


def test_stitching_weighs_tiles_by_the_gaussian_and_leaves_uncovered_voxels_zero():
    gaussian = torch.tensor([[1.0, 3.0], [3.0, 1.0]])
    stitcher = Stitcher(1, (2, 4), gaussian)
    stitcher.add((slice(None), slice(0, 2), slice(0, 2)), torch.full((1, 2, 2), 2.0))
    stitcher.add((slice(None), slice(0, 2), slice(1, 3)), torch.full((1, 2, 2), 6.0))
    result = stitcher.result()[0]
    assert torch.allclose(result[:, 0], torch.tensor([2.0, 2.0]))
    # column 1: tile one with weights (3, 1), tile two with (1, 3)
    assert torch.allclose(result[:, 1], torch.tensor([(2 * 3 + 6 * 1) / 4, (2 * 1 + 6 * 3) / 4]))
    assert torch.all(result[:, 3] == 0)


def test_tile_membership_and_position_for_3d_and_for_slices_of_a_2d_configuration():
    tile = (slice(None), slice(4, 12), slice(0, 8), slice(8, 16))
    assert tile_holds(tile, (4, 7, 15)) and not tile_holds(tile, (12, 7, 15))
    assert position_in_tile(tile, (4, 7, 15)) == (0, 7, 7)
    slice_tile = (slice(None), 5, slice(0, 8), slice(8, 16))
    assert tile_holds(slice_tile, (5, 1, 9)) and not tile_holds(slice_tile, (6, 1, 9))
    assert position_in_tile(slice_tile, (5, 1, 9)) == (1, 1)
