from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from tryon.errors import InvalidInputError
from tryon.imaging import (
    PHOTO_FORMATS,
    decode_image,
    encode_image,
    image_to_tensor,
    mask_to_tensor,
    resize_image,
    resize_labels,
    tensor_to_image,
    tensor_to_mask,
)

RED, BLUE = (255, 0, 0), (0, 0, 255)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def red_left_blue_right(width: int = 40, height: int = 20) -> Image.Image:
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2] = RED
    pixels[:, width // 2 :] = BLUE
    return Image.fromarray(pixels)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares `width x height` pixels but holds (almost) no image data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to display
    data = encoded(red_left_blue_right(), "JPEG", exif=exif.tobytes(), quality=95)

    image = decode_image(data)

    assert image.shape == (40, 20, 3)  # upright: taller than wide
    assert np.abs(image[5, 10].astype(int) - RED).max() < 30  # the stored left is now on top
    assert np.abs(image[35, 10].astype(int) - BLUE).max() < 30


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparent_pixels_become_white(mode):
    image = Image.new(mode, (8, 8), (0, 0, 0, 0) if mode == "RGBA" else (0, 0))
    image.putpixel((0, 0), (10, 20, 30, 255) if mode == "RGBA" else (40, 255))

    decoded = decode_image(encoded(image, "PNG"))

    assert decoded.shape == (8, 8, 3)
    assert tuple(decoded[4, 4]) == (255, 255, 255)
    assert tuple(decoded[0, 0]) == ((10, 20, 30) if mode == "RGBA" else (40, 40, 40))


def test_palette_image_with_transparent_index():
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    image.putpixel((1, 1), 1)
    image.info["transparency"] = 0

    decoded = decode_image(encoded(image, "PNG", transparency=0))

    assert tuple(decoded[1, 1]) == (0, 200, 0)
    assert tuple(decoded[0, 0]) == (255, 255, 255)


def test_greyscale_and_cmyk_become_rgb():
    grey = decode_image(encoded(Image.new("L", (4, 4), 77), "PNG"))
    cyan = decode_image(encoded(Image.new("CMYK", (4, 4), (255, 0, 0, 0)), "JPEG", quality=95))

    assert grey.shape == (4, 4, 3) and (grey == 77).all()
    assert cyan.shape == (4, 4, 3)
    assert cyan[..., 0].max() < 20 and cyan[..., 1:].min() > 235


def test_sixteen_bit_greyscale_is_rescaled_not_clipped():
    values = np.array([[0, 32896, 65535]], dtype=np.uint16)  # 0, half, full

    decoded = decode_image(encoded(Image.fromarray(values), "PNG"))

    assert decoded[0, :, 0].tolist() == [0, 128, 255]


def test_decodes_from_a_path(tmp_path):
    path = tmp_path / "photo.png"
    red_left_blue_right().save(path)

    assert decode_image(path).shape == (20, 40, 3)
    assert decode_image(str(path)).shape == (20, 40, 3)


def test_truncated_file_is_refused_with_a_fix():
    data = encoded(red_left_blue_right(200, 200), "JPEG")

    with pytest.raises(InvalidInputError, match="truncated.*complete"):
        decode_image(data[: len(data) // 2])


@pytest.mark.parametrize("data", [b"", b"this is not an image"])
def test_non_images_are_refused_naming_accepted_formats(data):
    with pytest.raises(InvalidInputError, match="JPEG, PNG or WebP"):
        decode_image(data)


def test_missing_path_is_named(tmp_path):
    with pytest.raises(InvalidInputError, match="nowhere.jpg"):
        decode_image(tmp_path / "nowhere.jpg")


def test_images_over_the_pixel_limit_are_refused():
    data = encoded(red_left_blue_right(40, 20), "PNG")

    with pytest.raises(InvalidInputError, match="too large.*40x20"):
        decode_image(data, max_pixels=799)
    assert decode_image(data, max_pixels=800).shape == (20, 40, 3)


@pytest.mark.parametrize("side", [8_000, 100_000])  # over our limit; over Pillow's too
def test_decompression_bomb_is_refused_before_decoding(side):
    with pytest.raises(InvalidInputError, match="too large"):
        decode_image(png_header_only(side, side))


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp", "JPG"])
def test_encode_round_trip(fmt):
    pixels = np.asarray(red_left_blue_right())

    decoded = decode_image(encode_image(pixels, fmt, quality=95))

    tolerance = 0 if fmt == "png" else 40
    assert decoded.shape == pixels.shape
    assert np.abs(decoded[:, 2:18].astype(int) - pixels[:, 2:18]).max() <= tolerance


def test_encode_rejects_unknown_format_listing_choices():
    with pytest.raises(InvalidInputError, match=r"`gif`.*\['jpeg', 'jpg', 'png', 'webp'\]"):
        encode_image(np.zeros((2, 2, 3), np.uint8), "gif")


def test_image_tensor_round_trip_and_range():
    pixels = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)

    batch = image_to_tensor(pixels)
    single = image_to_tensor(pixels[0])

    assert batch.shape == (2, 3, 5, 7) and batch.dtype == torch.float32
    assert single.shape == (1, 3, 5, 7)
    assert image_to_tensor(np.array([[[0, 255, 0]]], np.uint8)).flatten().tolist() == [-1, 1, -1]
    assert np.array_equal(tensor_to_image(batch), pixels)
    assert np.array_equal(tensor_to_image(single[0]), pixels[0])


def test_tensor_to_image_clips_out_of_range_values():
    assert tensor_to_image(torch.tensor([[[2.0]], [[-3.0]], [[0.0]]])).tolist() == [[[255, 0, 128]]]


def test_mask_tensor_round_trip():
    mask = np.array([[0, 255], [128, 255]], dtype=np.uint8)

    tensor = mask_to_tensor(mask)

    assert tensor.shape == (1, 1, 2, 2)
    assert tensor.min() == 0 and tensor.max() == 1
    assert np.array_equal(tensor_to_mask(tensor)[0], mask)
    assert np.array_equal(tensor_to_mask(tensor[0]), mask)


def test_conversions_reject_wrong_layouts():
    with pytest.raises(ValueError, match="H, W, 3"):
        image_to_tensor(np.zeros((3, 5, 7), np.uint8))  # channels first
    with pytest.raises(ValueError, match="uint8"):
        mask_to_tensor(np.zeros((4, 4), np.float32))


def test_resize_keeps_ranges_and_labels():
    image = torch.rand(2, 3, 64, 48) * 2 - 1
    labels = torch.randint(0, 20, (2, 64, 48))
    labels[:, :, 0] = 19

    small = resize_image(image, (16, 12))
    relabelled = resize_labels(labels, (100, 75))

    assert small.shape == (2, 3, 16, 12)
    assert small.min() >= -1 and small.max() <= 1
    assert relabelled.shape == (2, 100, 75) and relabelled.dtype == labels.dtype
    assert set(relabelled.unique().tolist()) <= set(labels.unique().tolist())
    assert (relabelled[:, :, 0] == 19).all()


def test_a_png_text_chunk_that_inflates_past_pillows_limit_is_refused_as_corrupt():
    """Found by `python -m tryon.server.fuzz`: Pillow raises ValueError for it, which the
    server answered as INTERNAL."""
    small = encoded(red_left_blue_right(), "PNG")
    text = b"comment\x00\x00" + zlib.compress(b"\x00" * (64 << 20), 9)
    chunk = struct.pack(">I", len(text)) + b"zTXt" + text
    chunk += struct.pack(">I", zlib.crc32(b"zTXt" + text))
    with pytest.raises(InvalidInputError, match="truncated or corrupt"):
        decode_image(small[:33] + chunk + small[33:])


def test_shopper_photos_may_be_limited_to_jpeg_png_and_webp():
    tiff = encoded(red_left_blue_right(), "TIFF")
    assert decode_image(tiff).shape == (20, 40, 3)  # dataset files: any format Pillow reads
    with pytest.raises(InvalidInputError, match="send a JPEG, PNG or WebP"):
        decode_image(tiff, formats=PHOTO_FORMATS)
    for fmt in ("JPEG", "PNG", "WEBP"):
        photo = encoded(red_left_blue_right(), fmt)
        assert decode_image(photo, formats=PHOTO_FORMATS).shape == (20, 40, 3)
