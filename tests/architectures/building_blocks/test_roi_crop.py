"""Base-ROI's region: the box around the predicted foreground, with margin, resized to the input size."""

import pytest
import torch

from nnunet_ext.architectures.building_blocks.roi_crop import (bounding_box, crop_around_segmentation,
                                                         foreground_probability)


def test_box_holds_the_foreground_with_its_margin():
    mask = torch.zeros(20, 30, dtype=torch.bool)
    mask[5:9, 10:20] = True
    assert bounding_box(mask, margin_fraction=0.5) == [(3, 11), (5, 25)]
    assert bounding_box(mask, margin_fraction=0.0, min_margin=0) == [(5, 9), (10, 20)]


def test_empty_mask_keeps_the_whole_image():
    assert bounding_box(torch.zeros(4, 6, 8, dtype=torch.bool), 0.1) == [(0, 4), (0, 6), (0, 8)]


@pytest.mark.parametrize("spatial", [(32, 32), (16, 32, 32)])
def test_crop_is_resized_to_the_input_and_shows_the_region(spatial):
    image = torch.zeros(2, 2, *spatial)
    probabilities = torch.zeros(2, 3, *spatial)
    probabilities[:, 0] = 1  # all background
    region = tuple(slice(s // 4, s // 2) for s in spatial)
    image[(0, slice(None), *region)] = 5.0
    probabilities[(0, 0, *region)] = 0.0
    probabilities[(0, 2, *region)] = 1.0  # sample 0: lesion where the image is bright
    cropped, boxes = crop_around_segmentation(image, probabilities, softmax=True, margin_fraction=0.0)
    assert cropped.shape == image.shape
    assert boxes[1] == [(0, s) for s in spatial]  # no foreground: whole image
    assert cropped[0].mean() > 5 * image[0].mean()  # the crop zooms into the bright region
    assert torch.equal(cropped[1], image[1])


def test_foreground_of_regions_is_the_maximum():
    probabilities = torch.tensor([0.2, 0.7, 0.4]).view(1, 3, 1, 1)
    assert foreground_probability(probabilities, softmax=False).item() == pytest.approx(0.7)
    assert foreground_probability(probabilities, softmax=True).item() == pytest.approx(0.8)
