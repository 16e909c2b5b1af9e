from __future__ import annotations

import pytest
import torch
from kornia.geometry.transform import get_tps_transform, warp_image_tps

from tryon.models.tps import regular_grid, warp_tps


def _pixel_coordinates(batch: int, height: int, width: int) -> torch.Tensor:
    """`(batch, 2, H, W)` image holding each pixel's x and y: sampling it reads positions."""
    ys, xs = torch.meshgrid(
        torch.arange(height).float(), torch.arange(width).float(), indexing="ij"
    )
    return torch.stack((xs, ys))[None].repeat(batch, 1, 1, 1)


def test_regular_grid_spans_the_image_row_major() -> None:
    grid = regular_grid((3, 4))
    assert grid.shape == (3, 4, 2)
    assert torch.equal(grid[0, 0], torch.tensor([-1.0, -1.0]))
    assert torch.equal(grid[-1, -1], torch.tensor([1.0, 1.0]))
    assert torch.allclose(grid[0, :, 0], torch.linspace(-1, 1, 4))


def test_regular_grid_rejects_a_single_row() -> None:
    with pytest.raises(ValueError, match="2x2"):
        regular_grid((1, 5))


@pytest.mark.parametrize("grid_size", [(5, 5), (3, 4)])
@pytest.mark.parametrize("size", [(256, 192), (64, 48)])
def test_zero_offsets_reproduce_the_garment(
    grid_size: tuple[int, int], size: tuple[int, int]
) -> None:
    garment = torch.rand(2, 4, *size) * 2 - 1
    points = regular_grid(grid_size).expand(2, -1, -1, -1)
    assert (warp_tps(garment, points) - garment).abs().max() < 1e-4


def test_shifting_every_point_shifts_the_image() -> None:
    # Sampling from x + 0.25 (normalised) moves the content 0.25 * W / 2 = 6 pixels left.
    garment = torch.rand(1, 3, 64, 48)
    points = regular_grid((5, 5))[None] + torch.tensor([0.25, 0.0])
    warped = warp_tps(garment, points)
    assert (warped[..., :, :-6] - garment[..., :, 6:]).abs().max() < 1e-4
    assert warped[..., :, -6:].abs().max() == 0.0  # sampled outside: zero padding


def test_spline_matches_kornia_warp_image_tps() -> None:
    torch.manual_seed(1)
    coordinates = _pixel_coordinates(2, 128, 96)
    grid = regular_grid((5, 5)).expand(2, -1, -1, -1)
    points = grid + 0.03 * torch.randn(2, 5, 5, 2)
    kernel_weights, affine_weights = get_tps_transform(
        grid.reshape(2, 25, 2), points.reshape(2, 25, 2)
    )
    reference = warp_image_tps(
        coordinates, points.reshape(2, 25, 2), kernel_weights, affine_weights, padding_mode="border"
    )
    exact = warp_tps(coordinates, points, spline_stride=1, padding_mode="border")
    coarse = warp_tps(coordinates, points, padding_mode="border")
    assert (exact - reference).abs().max() < 1e-3
    # Interpolating the spline between every 4th pixel moves samples by well under a pixel.
    assert (coarse - reference).abs().max() < 0.25


def test_control_points_land_where_regressed() -> None:
    coordinates = _pixel_coordinates(1, 65, 49)
    grid = regular_grid((3, 3))[None]
    points = grid.clone()
    points[0, 1, 1] = torch.tensor([0.2, -0.1])  # centre control point samples off-centre
    warped = warp_tps(coordinates, points, spline_stride=1)
    x, y = warped[0, :, 32, 24]
    assert torch.allclose(x, torch.tensor((0.2 + 1) * 49 / 2 - 0.5), atol=1e-3)
    assert torch.allclose(y, torch.tensor((-0.1 + 1) * 65 / 2 - 0.5), atol=1e-3)
