"""Thin-plate-spline warps in CP-VTON's convention, on top of kornia.

CP-VTON regresses, for each point of a regular control grid laid over the *output* (the
person), the point of the *input* (the garment photo) that should land there. The warp
samples backwards, as kornia's `warp_image_tps` does: each output pixel is mapped into the
input and sampled there, so the spline we solve for (kornia's `get_tps_transform`) maps
the regular grid onto the regressed points. This module is the one place that knows the
convention.

Coordinates are (x, y) in the normalised `grid_sample` frame with `align_corners=False`:
-1 and 1 are the outer edges of the border pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.geometry.transform import get_tps_transform, warp_points_tps


def regular_grid(
    grid_size: tuple[int, int],
    *,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The regular control grid spanning the image.

    Args:
        grid_size: (rows, columns) of control points, each at least 2.

    Returns:
        `(rows, columns, 2)` points as (x, y) in [-1, 1], row-major, x varying along columns.
    """
    rows, cols = grid_size
    if rows < 2 or cols < 2:
        raise ValueError(f"a control grid needs at least 2x2 points, got {rows}x{cols}")
    ys = torch.linspace(-1.0, 1.0, rows, device=device, dtype=dtype)
    xs = torch.linspace(-1.0, 1.0, cols, device=device, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((grid_x, grid_y), dim=-1)


def warp_tps(
    image: torch.Tensor,
    source_points: torch.Tensor,
    *,
    padding_mode: str = "zeros",
    spline_stride: int = 4,
) -> torch.Tensor:
    """Warp `image` so that each regular control point samples from its source point.

    Args:
        image: `(B, C, H, W)`, any value range.
        source_points: `(B, rows, cols, 2)` as (x, y), normalised (see the module
            docstring): where in `image` the output's regular control point (row, col) of
            `regular_grid((rows, cols))` samples. `source_points == regular_grid(...)`
            reproduces `image`.
        padding_mode: `grid_sample` padding outside the image ("zeros", "border",
            "reflection").
        spline_stride: see `tps_sampling_grid`.

    Returns:
        `(B, C, H, W)` warped image, same dtype as `image`.
    """
    height, width = image.shape[-2:]
    grid = tps_sampling_grid(source_points, height, width, spline_stride=spline_stride)
    return sample_at(image, grid, padding_mode=padding_mode)


def tps_sampling_grid(
    source_points: torch.Tensor, height: int, width: int, *, spline_stride: int = 4
) -> torch.Tensor:
    """Where each output pixel of a `height` x `width` spline warp samples its input.

    Args:
        source_points: `(B, rows, cols, 2)` normalised (x, y), as in `warp_tps`.
        spline_stride: the spline is evaluated every `spline_stride` pixels and the
            sampling grid interpolated bilinearly in between (exact for affine warps);
            evaluating it at every pixel (1) costs more than the GMM's convolutions.

    Returns:
        `(B, height, width, 2)` normalised (x, y) in `source_points`' dtype, the layout
        `grid_sample` takes (`sample_at`).
    """
    batch, rows, cols, _ = source_points.shape
    device = source_points.device
    # The spline is solved and evaluated in float64: it is tiny (rows * cols points), and
    # float32 round-off alone moves the samples of a zero-offset warp by ~1e-4 at 256 px.
    spline_dtype = torch.float64
    control = regular_grid((rows, cols), device=device, dtype=spline_dtype)
    output_points = control.reshape(1, rows * cols, 2).expand(batch, -1, -1)
    input_points = source_points.reshape(batch, rows * cols, 2).to(spline_dtype)
    # get_tps_transform(a, b) solves the spline taking a to b with kernel centres at b;
    # we evaluate it at output pixels, so a is the output's regular grid.
    kernel_weights, affine_weights = get_tps_transform(output_points, input_points)
    coarse = _pixel_centres(height, width, spline_stride, device, spline_dtype)
    coarse_height, coarse_width = coarse.shape[:2]
    sampled = warp_points_tps(
        coarse.reshape(1, -1, 2).expand(batch, -1, -1),
        input_points,
        kernel_weights,
        affine_weights,
    )
    sampled = sampled.reshape(batch, coarse_height, coarse_width, 2).permute(0, 3, 1, 2)
    # The coarse points sit at fractional pixel centres spaced so that corner-aligned
    # upsampling puts them back at exactly those positions.
    grid = F.interpolate(sampled, size=(height, width), mode="bilinear", align_corners=True)
    return grid.permute(0, 2, 3, 1).to(source_points.dtype)


def sample_at(image: torch.Tensor, grid: torch.Tensor, *, padding_mode: str = "zeros"):
    """Bilinear samples of `image` `(B, C, H, W)` at `grid` `(B, h, w, 2)` (normalised
    (x, y), pixel centres as in the module docstring) -> `(B, C, h, w)` in `image`'s dtype."""
    return F.grid_sample(
        image, grid.to(image.dtype), mode="bilinear", padding_mode=padding_mode, align_corners=False
    )


def _pixel_centres(
    height: int, width: int, stride: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """`(h, w, 2)` normalised (x, y) of every `stride`-th pixel centre, first and last included.

    The points span pixel 0 to pixel size - 1 evenly, so a corner-aligned bilinear resize
    from (h, w) to (height, width) lands each one on its fractional pixel position.
    """
    coarse_height = max(2, -(-(height - 1) // stride) + 1)
    coarse_width = max(2, -(-(width - 1) // stride) + 1)
    ys = (
        2.0 * torch.linspace(0, height - 1, coarse_height, device=device, dtype=dtype) + 1
    ) / height - 1
    xs = (
        2.0 * torch.linspace(0, width - 1, coarse_width, device=device, dtype=dtype) + 1
    ) / width - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((grid_x, grid_y), dim=-1)
