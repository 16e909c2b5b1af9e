"""Framing the shopper: the crop box around the person, cropping to model input, pasting back.

A box is (x0, y0, x1, y1) in pixels of the original photo, integers, x1/y1 exclusive; it
may reach past the photo's edges (the photo is extended by repeating its border there).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from tryon.imaging import image_to_tensor, resize_pixels

Box = tuple[int, int, int, int]
# A framing pass's foreground clusters with fewer pixels than this share of the largest
# are stray bits of the scene, not the person (`person_outline`).
STRAY_SHARE = 0.1


def fit_aspect(box: tuple[float, float, float, float], aspect: float) -> Box:
    """Grow `box` about its centre to height/width = `aspect` (never shrinks it)."""
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    if height / max(width, 1e-6) < aspect:
        height = width * aspect
    else:
        width = height / aspect
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = int(round(cx - width / 2)), int(round(cy - height / 2))
    return left, top, left + max(int(round(width)), 1), top + max(int(round(height)), 1)


def whole_photo_box(photo_size: tuple[int, int], aspect: float) -> Box:
    """The smallest box of the model's aspect that holds the whole photo (height, width)."""
    height, width = photo_size
    return fit_aspect((0, 0, width, height), aspect)


def framing_window(
    photo_size: tuple[int, int], size: tuple[int, int], stride: int = 32, border: int = 16
) -> tuple[Box, tuple[int, int]]:
    """Where the framing pass looks and at what input size: the whole photo at the scale
    that fits it into the model's `size` (h, w), as `whole_photo_box` would, but with only
    `border` pixels (at that scale) of repeated edge past the photo, rounded up so that
    each side is a multiple of `stride`.

    A 640x480 landscape photo is seen at 192x192 instead of 256x192: the same scale, a
    quarter fewer pixels, 48 of the 192 rows repeated edge instead of 112 of 256. The border
    is kept because the parser misses a head that touches its input's edge (without it,
    one of 100 generated shoppers lost its head and was refused); a side that already
    fills the model's size gets none (a landscape photo's left and right, a portrait's
    top and bottom), as before. A photo of the model's aspect is seen at `size` exactly.

    Returns:
        the box in photo coordinates (centred on the photo, past its edges by the border)
        and the network's input size (h, w) for it.
    """
    height, width = photo_size
    scale = min(size[0] / height, size[1] / width)
    rows = min(size[0], math.ceil((height * scale + 2 * border) / stride - 1e-6) * stride)
    columns = min(size[1], math.ceil((width * scale + 2 * border) / stride - 1e-6) * stride)
    box_height, box_width = round(rows / scale), round(columns / scale)
    top, left = (height - box_height) // 2, (width - box_width) // 2
    return (left, top, left + box_width, top + box_height), (rows, columns)


# Shapes (height, width) of the photos shoppers send most: portrait and landscape phone
# photos (3:4, 4:3, 2:3, 3:2, 9:16, 16:9) and squares.
COMMON_PHOTO_SHAPES = ((4, 3), (3, 4), (3, 2), (2, 3), (16, 9), (9, 16), (1, 1))


def common_framing_sizes(size: tuple[int, int]) -> list[tuple[int, int]]:
    """The input sizes (h, w) `framing_window` gives the common photo shapes for a model of
    `size`, smallest first ({160, 192, 224, 256} x 192 at 256x192): the ones worth
    compiling ahead for a graph runtime (`tryon.models.openvino_parser`)."""
    scale = 1000
    return sorted({framing_window((h * scale, w * scale), size)[1] for h, w in COMMON_PHOTO_SHAPES})


def person_outline(
    foreground: np.ndarray, frame: Box, photo_size: tuple[int, int], model_height: int | None = None
) -> np.ndarray:
    """The person's pixels among a framing pass's foreground: those inside the photo, less
    small clusters beside the person.

    Args:
        foreground: `(h, w)` bool, what a parser took for a person in a crop of the photo
            that covered `frame` (a box that may reach past the photo's edges).
        photo_size: the photo's (height, width).
        model_height: the model's input height, which sets how near pieces must be to
            count as one (default: the foreground's height).

    Returns:
        `(h, w)` bool, a subset of `foreground`. A landscape photo's frame repeats its top
        and bottom rows, so a person cut off by the photo's edge continues there as
        stripes that a parser takes for legs or arms; and at the scale of the whole photo
        a parser marks stray bits of the scene (a plant, a picture) as person. Either
        stretched the box until the person was too small in it to be analysed, and the
        photo was refused. So foreground past the photo's edges is dropped, and so are
        clusters beside the largest one (no column in common) with under `STRAY_SHARE` of
        its pixels; pieces within 4% of the model's height of each other count as one. The
        parser at this scale often cuts a person in pieces (torso and legs, or the head
        at the neck): keeping the largest cluster only lost the upper body in 5 of 100
        generated photos, and a head.
    """
    h, w = foreground.shape
    height, width = photo_size
    x0, y0, x1, y1 = frame
    # Photo coordinates of each crop pixel's centre; outside the photo is the border.
    xs = x0 + (np.arange(w) + 0.5) * (x1 - x0) / w
    ys = y0 + (np.arange(h) + 0.5) * (y1 - y0) / h
    inside = foreground & ((ys >= 0) & (ys < height))[:, None] & ((xs >= 0) & (xs < width))[None]
    if not inside.any():
        return inside
    reach = max(int(round(0.04 * (model_height or h))) | 1, 3)
    joined = cv2.dilate(inside.astype(np.uint8), np.ones((reach, reach), np.uint8))
    count, clusters = cv2.connectedComponents(joined, connectivity=8)
    sizes = np.bincount(clusters[inside], minlength=count)
    largest = clusters == sizes.argmax()
    columns = np.nonzero(largest.any(0))[0]
    # A head or feet the parser cut off sit above or below the body, in its columns.
    beside = ~np.isin(clusters, np.unique(clusters[:, columns.min() : columns.max() + 1]))
    stray = np.isin(clusters, np.nonzero(sizes < STRAY_SHARE * sizes.max())[0]) & beside
    return inside & ~stray


def person_box(foreground: np.ndarray, frame: Box, aspect: float, margin: float = 0.06) -> Box:
    """A box of the model's aspect around the person.

    Args:
        foreground: `(h, w)` bool, the person's pixels in a crop of the photo that covered
            `frame`.
        frame: the box that crop was taken from.
        margin: extra room on every side, as a fraction of the person's height.
    """
    ys, xs = np.nonzero(foreground)
    h, w = foreground.shape
    scale_x = (frame[2] - frame[0]) / w
    scale_y = (frame[3] - frame[1]) / h
    x0, x1 = frame[0] + xs.min() * scale_x, frame[0] + (xs.max() + 1) * scale_x
    y0, y1 = frame[1] + ys.min() * scale_y, frame[1] + (ys.max() + 1) * scale_y
    pad = (y1 - y0) * margin
    return fit_aspect((x0 - pad, y0 - pad, x1 + pad, y1 + pad), aspect)


def box_iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / max(area(a) + area(b) - inter, 1)


def crop_to_model(photo: np.ndarray, box: Box, size: tuple[int, int]) -> torch.Tensor:
    """The photo `(H, W, 3)` uint8 inside `box`, resized to `size` (h, w): `(1, 3, h, w)` in
    [-1, 1]. Parts of the box outside the photo repeat the photo's border.

    Resizing happens on uint8 pixels with OpenCV (area averaging when shrinking, so it is
    anti-aliased), before the small result becomes a float tensor.
    """
    height, width = photo.shape[:2]
    x0, y0, x1, y1 = box
    window = photo[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
    top, bottom = max(0, -y0), max(0, y1 - height)
    left, right = max(0, -x0), max(0, x1 - width)
    if top or bottom or left or right:
        window = cv2.copyMakeBorder(window, top, bottom, left, right, cv2.BORDER_REPLICATE)
    return image_to_tensor(resize_pixels(window, size))


def feather(mask: torch.Tensor, radius: float) -> torch.Tensor:
    """Soften a `(B, 1, H, W)` mask's edge over about `radius` pixels: a box blur of odd
    width near `radius`, twice, each the mean over the box's pixels inside the mask (as
    `F.avg_pool2d(..., count_include_pad=False)`). Float32 result on `mask`'s device.

    OpenCV's box filter on the CPU: 0.1 ms against 0.9 ms for two `avg_pool2d` at
    256x192.
    """
    k = max(int(round(radius)) | 1, 1)
    if k == 1:
        return mask
    planes = mask.detach().float().cpu().reshape(-1, *mask.shape[-2:]).numpy()
    count = cv2.boxFilter(
        np.ones(planes.shape[1:], np.float32),
        -1,
        (k, k),
        normalize=False,
        borderType=cv2.BORDER_CONSTANT,
    )
    soft = np.empty_like(planes)
    for index, plane in enumerate(planes):
        for _ in range(2):
            plane = (
                cv2.boxFilter(plane, -1, (k, k), normalize=False, borderType=cv2.BORDER_CONSTANT)
                / count
            )
        soft[index] = plane
    return torch.from_numpy(soft).reshape(mask.shape).to(mask.device)


def paste_back(
    photo: np.ndarray, result: torch.Tensor, alpha: torch.Tensor, box: Box
) -> np.ndarray:
    """Blend a model-resolution result into the full-resolution photo.

    Args:
        photo: `(H, W, 3)` uint8, the original photo.
        result: `(1, 3, h, w)` in [-1, 1], what the model made of the crop `box`.
        alpha: `(1, 1, h, w)` in [0, 1], where the result replaces the photo.
        box: the crop the model saw.

    Returns:
        `(H, W, 3)` uint8: the photo with the result blended in; pixels where alpha is 0
        are the original's, untouched.

    Only the rows and columns where alpha is non-zero are enlarged and blended (bilinear,
    pixel centres aligned as `F.interpolate(align_corners=False)`), so the cost follows
    the try-on region, not the photo.
    """
    out = photo.copy()
    weight_small = alpha[0, 0].float().clamp(0, 1).numpy()
    rows, cols = np.nonzero(weight_small)
    if rows.size == 0:
        return out
    h, w = weight_small.shape
    x0, y0, x1, y1 = box
    scale_y, scale_x = (y1 - y0) / h, (x1 - x0) / w
    # Photo pixels whose bilinear sample can see a non-zero model pixel (one pixel of slack).
    py0 = max(int(np.floor(y0 + (rows.min() - 1) * scale_y)), 0)
    py1 = min(int(np.ceil(y0 + (rows.max() + 2) * scale_y)), photo.shape[0])
    px0 = max(int(np.floor(x0 + (cols.min() - 1) * scale_x)), 0)
    px1 = min(int(np.ceil(x0 + (cols.max() + 2) * scale_x)), photo.shape[1])
    if py0 >= py1 or px0 >= px1:
        return out
    # Where each photo pixel centre falls in the model's pixel grid.
    grid_x = ((np.arange(px0, px1) + 0.5 - x0) / scale_x - 0.5).astype(np.float32)
    grid_y = ((np.arange(py0, py1) + 0.5 - y0) / scale_y - 0.5).astype(np.float32)
    map_x = np.broadcast_to(grid_x[None, :], (py1 - py0, px1 - px0))
    map_y = np.broadcast_to(grid_y[:, None], (py1 - py0, px1 - px0))
    rgba = torch.cat((result.float().clamp(-1, 1), alpha.float().clamp(0, 1)), 1)[0]
    rgba = rgba.permute(1, 2, 0).contiguous().numpy()
    big = cv2.remap(rgba, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    weight = big[..., 3:]
    region = out[py0:py1, px0:px1]
    blended = (big[..., :3] + 1) * 127.5  # the result's colours, then the blend, in place
    blended -= region
    blended *= weight
    blended += region
    blended += 0.5  # round to nearest; the blend stays within [0, 255]
    np.copyto(region, blended.astype(np.uint8), where=weight > 0)
    return out


def blend_weight(shape: tuple[int, int], alpha: torch.Tensor, box: Box) -> np.ndarray:
    """Where `paste_back` replaces the photo, `(H, W)` float32 in [0, 1] at the photo's
    resolution `shape` (H, W): `alpha` `(1, 1, h, w)` enlarged into the crop `box` exactly
    as the blend enlarges it (to 1/255)."""
    black = np.zeros((*shape, 3), dtype=np.uint8)
    white = torch.ones((1, 3, *alpha.shape[-2:]))
    return paste_back(black, white, alpha, box)[..., 0].astype(np.float32) / 255.0
