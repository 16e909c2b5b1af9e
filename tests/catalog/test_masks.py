"""Mask extraction on the product photos merchandisers take, and the warnings it gives."""

from __future__ import annotations

import numpy as np
import pytest
from catalog_pictures import product_photo, tshirt_mask

from catalog.bench import benchmark_masks, iou
from catalog.masks import extract_mask, inspect_mask


@pytest.mark.parametrize(
    ("colour", "background", "shadow"),
    [
        ((40, 90, 200), 245, 0.25),  # blue on white with a shadow
        ((200, 60, 50), 225, 0.3),  # red on light grey
        ((30, 30, 30), 240, 0.3),  # black on white
        ((150, 150, 150), 235, 0.25),  # grey: as dark as the shadow, no colour
        ((246, 246, 246), 246, 0.25),  # white on white: found by outline and texture
    ],
    ids=["blue", "red-on-grey", "black", "grey", "white-on-white"],
)
def test_extracted_mask_matches_the_garment(
    colour: tuple[int, int, int], background: int, shadow: float
) -> None:
    truth = tshirt_mask()
    photo = product_photo(truth, colour, background, shadow)
    assert iou(extract_mask(photo), truth) > 0.95


def test_neck_opening_hole_is_filled() -> None:
    truth = tshirt_mask()
    photo = product_photo(truth)
    # A background-coloured hole inside the garment, like a neck opening seen from above.
    photo[80:100, 80:110] = photo[2, 2]
    mask = extract_mask(photo)
    assert mask[80:100, 80:110].all()


def test_large_photos_are_extracted_at_full_size() -> None:
    truth = tshirt_mask((1200, 900))
    mask = extract_mask(product_photo(truth))
    assert mask.shape == truth.shape
    assert iou(mask, truth) > 0.95


def test_blank_photo_gives_an_empty_mask() -> None:
    assert not extract_mask(np.full((200, 150, 3), 240, np.uint8)).any()


def test_plausible_mask_has_no_warnings() -> None:
    assert inspect_mask(tshirt_mask()).warnings == ()


@pytest.mark.parametrize(
    ("region", "warning"),
    [
        ((slice(100, 110), slice(90, 100)), "covers only"),
        ((slice(0, 256), slice(0, 192)), "covers 100.0%"),
        ((slice(0, 200), slice(40, 150)), "touches the photo's border"),
    ],
    ids=["tiny", "huge", "cut-off"],
)
def test_suspicious_masks_are_flagged(region: tuple[slice, slice], warning: str) -> None:
    mask = np.zeros((256, 192), np.uint8)
    mask[region] = 255
    assert any(warning in w for w in inspect_mask(mask).warnings)


def test_mask_in_many_pieces_is_flagged() -> None:
    mask = np.zeros((256, 192), np.uint8)
    for top in (20, 80, 140, 200):
        mask[top : top + 30, 60:130] = 255
    assert any("4 separate pieces" in w for w in inspect_mask(mask).warnings)


def test_generator_garments_reach_the_quality_target() -> None:
    pytest.importorskip("tryon.data.synth")
    result = benchmark_masks(count=40, seed=3)
    assert result.mean_iou >= 0.97
