"""Image decoding, encoding and tensor conversion for every image the product handles.

Shopper photos, product photos and dataset files all enter through `decode_image` (or
`open_image` where the colour mode matters, as for parse maps), which applies the EXIF
orientation, converts any colour mode to RGB and refuses images that are too large,
truncated or not images at all with an `InvalidInputError` that says what to do.

Array conventions: images are numpy `uint8` `(H, W, 3)` RGB; masks are numpy `uint8`
`(H, W)` with 0 outside and 255 inside. Tensor conventions (DESIGN.md): images are float32
`(B, 3, H, W)` in [-1, 1], masks float32 `(B, 1, H, W)` in [0, 1].
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from tryon.errors import InvalidInputError

ImageSource = bytes | str | Path

# 50 megapixels: above the full-resolution output of common phone cameras, far below what
# would exhaust a server's memory (50 MP of RGB is 150 MB decoded).
MAX_PIXELS = 50_000_000

ENCODE_FORMATS: dict[str, str] = {"jpeg": "JPEG", "jpg": "JPEG", "png": "PNG", "webp": "WEBP"}
# What shoppers may send: Pillow's other decoders (TIFF, PSD, EPS through Ghostscript, ...)
# are attack surface the service does not need.
PHOTO_FORMATS = ("JPEG", "PNG", "WEBP")

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
# Transparent pixels are shown on white, the background of product photos.
_TRANSPARENT_BACKGROUND = (255, 255, 255)


def open_image(
    source: ImageSource,
    *,
    max_pixels: int = MAX_PIXELS,
    formats: tuple[str, ...] | None = None,
) -> Image.Image:
    """Open, size-check and fully decode an image, keeping its colour mode.

    `source` is the encoded file's bytes or a path; `formats` (Pillow names, e.g.
    PHOTO_FORMATS) are the only ones tried, None: any Pillow reads. The result is upright
    (EXIF orientation applied) and loaded, so later use cannot fail on a truncated file.
    Raises `InvalidInputError` for unreadable, truncated or oversized images.
    """
    what = _describe(source)
    with warnings.catch_warnings():
        # Pillow's own bomb warning fires at 89 MP; `max_pixels` is the limit enforced here.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = _open_checked(source, what, max_pixels, formats)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise _corrupt(what, error) from error
    return ImageOps.exif_transpose(image)


def decode_image(
    source: ImageSource,
    *,
    max_pixels: int = MAX_PIXELS,
    formats: tuple[str, ...] | None = None,
) -> np.ndarray:
    """Decode an image file into an upright RGB array `(H, W, 3)` `uint8`.

    Greyscale, palette, CMYK and 16-bit images are converted to 8-bit RGB; transparent
    pixels (RGBA, LA, palette transparency) are composited onto white. `max_pixels` and
    `formats` as for `open_image`.
    """
    return np.array(to_rgb(open_image(source, max_pixels=max_pixels, formats=formats)))


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert a Pillow image of any mode to 8-bit RGB (transparency onto white)."""
    if image.mode in _SIXTEEN_BIT_MODES:
        return _sixteen_bit_to_rgb(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_TRANSPARENT_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def encode_image(image: np.ndarray, fmt: str = "jpeg", *, quality: int = 90) -> bytes:
    """Encode an RGB array `(H, W, 3)` `uint8` as JPEG, PNG or WebP bytes.

    `quality` (1-100) applies to JPEG and WebP; PNG is lossless.
    """
    pil_format = ENCODE_FORMATS.get(fmt.lower())
    if pil_format is None:
        raise InvalidInputError(
            f"unknown image format `{fmt}`, supported: {sorted(ENCODE_FORMATS)}"
        )
    _check_rgb_array(image)
    buffer = io.BytesIO()
    options = {} if pil_format == "PNG" else {"quality": quality}
    Image.fromarray(image).save(buffer, format=pil_format, **options)
    return buffer.getvalue()


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """Convert RGB `uint8` `(H, W, 3)` or `(B, H, W, 3)` to float32 `(B, 3, H, W)` in [-1, 1]."""
    batch = torch.from_numpy(np.require(image, requirements=["C", "W"]))
    if batch.ndim == 3:
        batch = batch.unsqueeze(0)
    if batch.ndim != 4 or batch.shape[-1] != 3 or batch.dtype != torch.uint8:
        raise ValueError(
            f"expected uint8 (H, W, 3) or (B, H, W, 3), got {image.dtype} {image.shape}"
        )
    return batch.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def resize_pixels(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 pixels `(H, W)` or `(H, W, C)` resized to `size` (h, w) with OpenCV: area
    averaging when shrinking (anti-aliased), bilinear when enlarging, `image` itself when
    the size is already right. No torch kernels run, so any thread may call it."""
    if image.shape[:2] == tuple(size):
        return image
    shrinking = image.shape[0] > size[0]
    return cv2.resize(
        np.ascontiguousarray(image),
        (size[1], size[0]),
        interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
    )


def tensor_to_image(tensor: torch.Tensor) -> np.ndarray:
    """Convert `(3, H, W)` or `(B, 3, H, W)` in [-1, 1] to `uint8` `(H, W, 3)` or `(B, H, W, 3)`.

    Values outside [-1, 1] are clipped.
    """
    if tensor.ndim not in (3, 4) or tensor.shape[-3] != 3:
        raise ValueError(f"expected (3, H, W) or (B, 3, H, W), got {tuple(tensor.shape)}")
    scaled = tensor.detach().float().add(1.0).mul(127.5).round().clamp(0, 255)
    return scaled.to(torch.uint8).movedim(-3, -1).cpu().numpy()


def mask_to_tensor(mask: np.ndarray) -> torch.Tensor:
    """Convert a `uint8` mask `(H, W)` or `(B, H, W)` (0-255) to `(B, 1, H, W)` in [0, 1]."""
    batch = torch.from_numpy(np.require(mask, requirements=["C", "W"]))
    if batch.ndim == 2:
        batch = batch.unsqueeze(0)
    if batch.ndim != 3 or batch.dtype != torch.uint8:
        raise ValueError(f"expected uint8 (H, W) or (B, H, W), got {mask.dtype} {mask.shape}")
    return batch.unsqueeze(1).float().div(255.0)


def tensor_to_mask(tensor: torch.Tensor) -> np.ndarray:
    """Convert `(1, H, W)` or `(B, 1, H, W)` in [0, 1] to `uint8` `(H, W)` / `(B, H, W)`, 0-255."""
    if tensor.ndim not in (3, 4) or tensor.shape[-3] != 1:
        raise ValueError(f"expected (1, H, W) or (B, 1, H, W), got {tuple(tensor.shape)}")
    scaled = tensor.detach().float().mul(255.0).round().clamp(0, 255)
    return scaled.to(torch.uint8).squeeze(-3).cpu().numpy()


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize images or soft masks `(B, C, H, W)` to `size` (height, width), antialiased.

    Bilinear with an antialiasing filter when shrinking, so values stay within the input's
    range ([-1, 1] images, [0, 1] masks). Returns the input itself when already that size.
    """
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)


def resize_labels(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize integer label maps `(B, H, W)` to `size` (height, width) by nearest neighbour."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    resized = F.interpolate(labels.unsqueeze(1).float(), size=size, mode="nearest-exact")
    return resized.squeeze(1).to(labels.dtype)


def _describe(source: ImageSource) -> str:
    return "image" if isinstance(source, bytes) else f"image file {source}"


def _open_checked(
    source: ImageSource, what: str, max_pixels: int, formats: tuple[str, ...] | None
) -> Image.Image:
    if isinstance(source, bytes) and not source:
        raise InvalidInputError(f"{what} is empty (0 bytes); send a JPEG, PNG or WebP file")
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        image = Image.open(stream, formats=formats)
    except FileNotFoundError as error:
        raise InvalidInputError(f"{what} does not exist; check the path") from error
    except UnidentifiedImageError as error:
        raise InvalidInputError(
            f"{what} is not a readable image; send a JPEG, PNG or WebP file"
        ) from error
    except Image.DecompressionBombError as error:
        raise _too_large(what, error_detail=str(error), max_pixels=max_pixels) from error
    except (OSError, ValueError, EOFError) as error:
        # ValueError: e.g. a PNG text chunk that inflates past Pillow's limit (a bomb).
        raise _corrupt(what, error) from error
    width, height = image.size
    if width * height > max_pixels:
        raise _too_large(what, error_detail=f"{width}x{height}", max_pixels=max_pixels)
    if width == 0 or height == 0:
        raise InvalidInputError(f"{what} has no pixels ({width}x{height})")
    return image


def _corrupt(what: str, error: Exception) -> InvalidInputError:
    return InvalidInputError(
        f"{what} is truncated or corrupt ({error}); send the complete, unmodified file"
    )


def _too_large(what: str, *, error_detail: str, max_pixels: int) -> InvalidInputError:
    return InvalidInputError(
        f"{what} is too large ({error_detail}; the limit is {max_pixels:,} pixels); "
        "resize it to at most a few thousand pixels per side"
    )


def _sixteen_bit_to_rgb(image: Image.Image) -> Image.Image:
    # Pillow's own conversion clips 16-bit values at 255 instead of rescaling them.
    values = np.asarray(image).astype(np.float64)
    grey = np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


def _check_rgb_array(image: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 array (H, W, 3), got {image.dtype} {image.shape}")
