"""Reading merchandisers' image files into clean 8-bit RGB photos and binary masks.

Everything a product photo can be (CMYK, 16-bit, palette, alpha, EXIF-rotated, huge)
becomes an upright 8-bit RGB array plus the bytes the catalog stores; everything it
must not be (not an image, truncated, a decompression bomb, tiny) is an
:class:`~catalog.errors.ImageError` that says what is wrong.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from catalog.errors import ImageError

# The formats the catalog accepts and the service writes (Pillow names), with their MIME types.
MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MIN_SIDE = 64
MAX_SIDE = 2048  # larger photos are scaled down: try-on never works above this
MAX_PIXELS = 40_000_000  # anything bigger is refused before it is decoded
MASK_MIME = "image/png"
ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class EncodedImage:
    """Encoded image bytes with their MIME type and pixel size: a photo or mask as the
    catalog stores it, or a try-on as the service returns it."""

    data: bytes
    mime_type: str
    width: int
    height: int

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the bytes: equal hashes mean an unchanged image."""
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Photo:
    """A product photo ready for the catalog.

    ``rgb``: ``(H, W, 3)`` uint8, upright, transparency flattened onto white, scaled
    down to at most MAX_SIDE; ``source_size``: (width, height) of the upright file before
    scaling, the size a supplied mask must have;
    ``alpha_mask``: ``(H, W)`` uint8 in {0, 255} from the file's transparency, when it had
    any (a cut-out photo carries its own garment mask); ``encoded``: what is stored.
    """

    rgb: np.ndarray
    source_size: tuple[int, int]
    alpha_mask: np.ndarray | None
    encoded: EncodedImage


def _open(data: bytes, what: str) -> Image.Image:
    """Open and fully decode ``data``, turning every way it can fail into an ImageError."""
    if not data:
        raise ImageError(f"the {what} file is empty", what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in MIME_TYPES:
                raise ImageError(
                    f"the {what} is a {image.format} file; use one of JPEG, PNG, WebP", what
                )
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageError(
                    f"the {what} is {width}x{height} pixels, more than the "
                    f"{MAX_PIXELS // 1_000_000} megapixels allowed (a decompression bomb?)",
                    what,
                )
            image.load()
    except UnidentifiedImageError:
        raise ImageError(
            f"the {what} is not an image; use a JPEG, PNG or WebP file", what
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            f"the {what} is too large to decode (a decompression bomb?)", what
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(
            f"the {what} cannot be decoded ({error}); is it truncated?", what
        ) from None
    return image


def _upright(image: Image.Image) -> tuple[Image.Image, bool]:
    """Apply the EXIF orientation; return the image and whether it was turned."""
    orientation = image.getexif().get(ORIENTATION_TAG, 1)
    if orientation in (None, 1):
        return image, False
    return ImageOps.exif_transpose(image), True


def _to_8bit(array: np.ndarray) -> np.ndarray:
    """Scale 16/32-bit integer or float pixel values to uint8."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        peak = 1.0 if float(array.max(initial=0.0)) <= 1.0 else 255.0
        return np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
    # Pillow hands 16-bit greyscale over as I;16 or 32-bit I holding 0..65535.
    peak = 65535 if int(array.max(initial=0)) > 255 else 255
    return np.clip(array.astype(np.float64) * (255.0 / peak) + 0.5, 0, 255).astype(np.uint8)


def _rgb_and_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Pixels as ``(H, W, 3)`` uint8 RGB and, when present, the alpha channel ``(H, W)``."""
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    mode = image.mode
    if mode in ("RGB", "RGBA", "RGBa"):
        array = np.asarray(image.convert("RGBA") if mode == "RGBa" else image)
        rgb = np.ascontiguousarray(array[..., :3])
        alpha = array[..., 3] if array.shape[-1] == 4 else None
    elif mode in ("L", "LA", "1", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        grey_image = image.getchannel(0) if mode == "LA" else image
        grey = _to_8bit(np.asarray(grey_image))
        rgb = np.repeat(grey[..., None], 3, axis=2)
        alpha = np.asarray(image.getchannel("A")) if mode == "LA" else None
    else:  # CMYK, YCbCr, LAB, HSV: Pillow knows how to get to RGB
        rgb = np.asarray(image.convert("RGB"))
        alpha = None
    if alpha is not None and int(alpha.min()) == 255:
        alpha = None  # an alpha channel that is opaque everywhere says nothing
    return rgb, alpha


def _encode(rgb: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        Image.fromarray(rgb).save(buffer, format="JPEG", quality=95)
    else:
        Image.fromarray(rgb).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _fit(array: np.ndarray, resample: Image.Resampling) -> np.ndarray:
    """Scale ``array`` down so that its longer side is at most MAX_SIDE."""
    height, width = array.shape[:2]
    scale = MAX_SIDE / max(height, width)
    if scale >= 1:
        return array
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(array).resize(size, resample))


def load_photo(data: bytes) -> Photo:
    """Decode and normalize a product photo; raise ImageError if it cannot be used.

    An upright 8-bit RGB JPEG, PNG or WebP no larger than MAX_SIDE is stored byte for byte;
    anything else is converted and re-encoded (JPEG sources as JPEG, others as PNG).
    """
    image = _open(data, "photo")
    source_format = image.format or "PNG"
    image, turned = _upright(image)
    rgb, alpha = _rgb_and_alpha(image)
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ImageError(
            f"the photo is only {width}x{height} pixels; at least {MIN_SIDE} on each side "
            "are needed"
        )
    alpha_mask = None
    if alpha is not None:
        # Flatten onto white: that is the background the mask extractor expects.
        weight = alpha[..., None].astype(np.float32) / 255.0
        rgb = (rgb * weight + 255.0 * (1.0 - weight) + 0.5).astype(np.uint8)
        alpha_mask = _fit(np.where(alpha >= 128, 255, 0).astype(np.uint8), Image.Resampling.NEAREST)
    resized = _fit(rgb, Image.Resampling.LANCZOS)
    keep_bytes = resized is rgb and not turned and alpha is None and image.mode == "RGB"
    if keep_bytes:
        stored = data
        mime = MIME_TYPES[source_format]
    else:
        fmt = "JPEG" if source_format == "JPEG" else "PNG"
        stored = _encode(resized, fmt)
        mime = MIME_TYPES[fmt]
    stored_height, stored_width = resized.shape[:2]
    return Photo(
        resized,
        (width, height),
        alpha_mask,
        EncodedImage(stored, mime, stored_width, stored_height),
    )


def load_mask(data: bytes, size: tuple[int, int]) -> np.ndarray:
    """Decode a merchandiser's mask for a photo of ``size`` (width, height) before fitting.

    Returns ``(H, W)`` uint8 in {0, 255} at the stored photo's size. White (or opaque,
    for a transparent PNG) is garment.
    """
    image = _open(data, "mask")
    image, _ = _upright(image)
    if image.size != size:
        raise ImageError(
            f"the mask is {image.size[0]}x{image.size[1]} pixels but the photo is "
            f"{size[0]}x{size[1]}; they must match",
            "mask",
        )
    rgb, alpha = _rgb_and_alpha(image)
    values = alpha if alpha is not None and int(rgb.min()) == int(rgb.max()) else rgb.max(axis=2)
    mask = _fit(np.where(values >= 128, 255, 0).astype(np.uint8), Image.Resampling.NEAREST)
    coverage = float(np.count_nonzero(mask)) / mask.size
    if coverage == 0.0:
        raise ImageError("the mask is empty (all black); white marks the garment", "mask")
    if coverage == 1.0:
        raise ImageError("the mask is all white; it must mark only the garment", "mask")
    return mask


def encode_mask(mask: np.ndarray) -> EncodedImage:
    """A ``(H, W)`` uint8 {0, 255} mask as the PNG the catalog stores."""
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG", optimize=False)
    height, width = mask.shape
    return EncodedImage(buffer.getvalue(), MASK_MIME, width, height)


def decode_stored(data: bytes) -> np.ndarray:
    """Pixels of stored catalog image bytes: ``(H, W, 3)`` RGB or ``(H, W)`` for a mask."""
    image = _open(data, "stored image")
    return np.asarray(image.convert("L") if image.mode in ("L", "1") else image.convert("RGB"))
