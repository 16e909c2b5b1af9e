"""Photo and mask files merchandisers really have: every odd kind is read or refused clearly."""

from __future__ import annotations

import numpy as np
import pytest
from catalog_pictures import encode, product_photo, tshirt_mask
from PIL import Image

from catalog.errors import ImageError
from catalog.images import MAX_SIDE, load_mask, load_photo


@pytest.fixture
def photo() -> np.ndarray:
    return product_photo(tshirt_mask())


def test_clean_jpeg_is_stored_byte_for_byte(photo: np.ndarray) -> None:
    data = encode(photo, "JPEG", quality=90)
    loaded = load_photo(data)
    assert loaded.encoded.data == data
    assert loaded.encoded.mime_type == "image/jpeg"
    assert (loaded.encoded.width, loaded.encoded.height) == (192, 256)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"name,sku\nfoo,bar\n", "not an image"),
        (encode(Image.new("RGB", (100, 100)), "GIF"), "GIF file"),
        (encode(Image.new("RGB", (40, 300))), "only 40x300 pixels"),
        (encode(Image.new("1", (8000, 6000))), "decompression bomb"),
    ],
    ids=["empty", "csv", "gif", "tiny", "bomb"],
)
def test_unusable_files_are_refused_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        load_photo(data)


def test_truncated_photo_is_refused(photo: np.ndarray) -> None:
    data = encode(photo, "JPEG")
    with pytest.raises(ImageError, match="truncated"):
        load_photo(data[: len(data) // 2])


def test_cmyk_photo_becomes_rgb(photo: np.ndarray) -> None:
    cmyk = Image.fromarray(photo).convert("CMYK")
    loaded = load_photo(encode(cmyk, "JPEG", quality=95))
    assert loaded.rgb.shape == (256, 192, 3)
    # The garment stays blue and the background stays light after the conversion.
    assert loaded.rgb[128, 96, 2] > loaded.rgb[128, 96, 0] + 80
    assert loaded.rgb[5, 5].min() > 200


def test_16_bit_greyscale_is_scaled_not_clipped() -> None:
    grey = np.full((128, 128), 40000, np.uint16)
    loaded = load_photo(encode(Image.fromarray(grey)))
    assert abs(int(loaded.rgb[0, 0, 0]) - round(40000 / 257)) <= 1


def test_transparent_cutout_gives_its_own_mask(photo: np.ndarray) -> None:
    mask = tshirt_mask()
    rgba = np.dstack([photo, mask])
    loaded = load_photo(encode(rgba))
    assert loaded.alpha_mask is not None
    assert np.array_equal(loaded.alpha_mask, mask)
    assert loaded.rgb[0, 0].tolist() == [255, 255, 255]  # flattened onto white


def test_exif_rotated_photo_is_turned_upright(photo: np.ndarray) -> None:
    sideways = Image.fromarray(np.rot90(photo, k=1).copy())  # camera held sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    loaded = load_photo(encode(sideways, "JPEG", exif=exif.tobytes(), quality=95))
    assert loaded.rgb.shape == (256, 192, 3)
    assert np.abs(loaded.rgb.astype(int) - photo.astype(int)).mean() < 6


def test_huge_photo_is_scaled_down(photo: np.ndarray) -> None:
    big = Image.fromarray(photo).resize((2400, 3200))
    loaded = load_photo(encode(big, "JPEG"))
    assert max(loaded.rgb.shape[:2]) == MAX_SIDE
    assert (loaded.encoded.height, loaded.encoded.width) == loaded.rgb.shape[:2]


def test_supplied_mask_must_match_the_photo_size() -> None:
    mask = tshirt_mask()
    assert np.array_equal(load_mask(encode(mask), (192, 256)), mask)
    with pytest.raises(ImageError, match="must match") as caught:
        load_mask(encode(mask), (200, 256))
    assert caught.value.part == "mask"


def test_blank_mask_is_refused() -> None:
    with pytest.raises(ImageError, match="empty"):
        load_mask(encode(np.zeros((256, 192), np.uint8)), (192, 256))
