"""The geometric matching module (CP-VTON's GMM): a thin-plate spline fitting garment to body.

Two convolutional feature extractors (person representation, garment) bring their inputs
to 1/16 resolution; the L2-normalised features are correlated (every person position with
every garment position), and a small regression head turns the correlation into offsets
of a regular control grid. The garment and its mask are warped with that grid
(`tryon.models.tps`, normalised (x, y) coordinates, `align_corners=False`).

Optional refinement stages then look at the person representation beside the garment as
warped so far (the two are aligned now, so plain convolutions see where they disagree)
and add a correction to the offsets; each stage re-warps the original garment, so the
photo is resampled once whatever the number of stages.

An optional flow stage last adds a dense, smooth correction to the spline's sampling grid
(`FlowRefiner`): a spline with 5x5 control points bends the garment as one sheet, and a
sleeve that follows its arm away from the body needs a warp of its own. Optional flow
corrections after it are more flow stages, each reading the garment as warped by the
flows before it and adding to their flow, so that what one stage left misaligned by a
few pixels (stripes, prints) the next sees beside the body and can move.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from tryon.models.checkpoint import PretrainedMixin, grown_copy
from tryon.models.precision import convolution_input
from tryon.models.tps import regular_grid, sample_at, tps_sampling_grid
from tryon.models.unet import UNet

DOWNSAMPLING = 16


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution, batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class FeatureExtractor(nn.Module):
    """Four stride-2 convolutions then one at 1/16 resolution.

    Input: parts `(B, C_i, H, W)`, concatenated along channels (C_i summing to
    in_channels); output `(B, channels[-1], H/16, W/16)`.
    """

    def __init__(self, in_channels: int, channels: Sequence[int]) -> None:
        super().__init__()
        if len(channels) != 4:
            raise ValueError(
                f"feature_channels needs 4 widths (one per stride-2 stage), got {channels}"
            )
        widths = [in_channels, *channels]
        layers = [
            conv_bn_relu(a, b, stride=2) for a, b in zip(widths[:-1], widths[1:], strict=True)
        ]
        layers.append(conv_bn_relu(widths[-1], widths[-1]))
        self.layers = nn.Sequential(*layers)

    @property
    def first_convolution(self) -> nn.Conv2d:
        """The convolution that reads the input (its dtype and layout: `convolution_input`)."""
        return self.layers[0][0]

    def forward(self, *parts: torch.Tensor) -> torch.Tensor:
        return self.layers(convolution_input(self.first_convolution, *parts))


def feature_correlation(
    person_features: torch.Tensor, garment_features: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """Cosine similarity of every person position with every garment position.

    Both feature maps are average-pooled to `size` = (h, w) first, so the correlation has
    the same number of channels at any input resolution.

    Args:
        person_features, garment_features: `(B, C, H', W')`.

    Returns:
        `(B, h * w, h, w)`: channel `i * w + j` at person position (y, x) is the similarity
        to garment position (i, j); rectified and L2-normalised over channels (as CP-VTON).
    """
    person = F.normalize(F.adaptive_avg_pool2d(person_features, size), dim=1)
    garment = F.normalize(F.adaptive_avg_pool2d(garment_features, size), dim=1)
    correlation = torch.einsum("bcij,bcyx->bijyx", garment, person).flatten(1, 2)
    return F.normalize(F.relu(correlation), dim=1)


MAX_OFFSET = 1.5  # largest control point move, in normalised coordinates (image = 2)
# Weight of CP-VTON+'s grid regulariser in the GMM loss. Fitting 5x5 control points
# directly to 40 held-out synthetic samples (docs/scripts/gmm_oracle.py) caps warp IoU at
# 0.815 with weight 1.0, 0.843 at 0.3, 0.858 at 0.1 and 0.866 at 0: at 1.0 the
# regulariser, not the data, decides how far a sleeve may bend.
GRID_WEIGHT = 0.1


class GridRegressor(nn.Module):
    """Feature map `(B, in_channels, h, w)` at 1/16 resolution (the correlation, or a
    refinement stage's features) -> control point offsets `(B, rows, cols, 2)`.

    The last layer starts at zero, so an untrained module warps nothing (identity).
    """

    def __init__(self, in_channels: int, width: int, grid_size: tuple[int, int]) -> None:
        super().__init__()
        self.grid_size = grid_size
        pooled = (4, 3)
        self.features = nn.Sequential(
            conv_bn_relu(in_channels, 2 * width, stride=2),
            conv_bn_relu(2 * width, width, stride=2),
            conv_bn_relu(width, width),
            nn.AdaptiveAvgPool2d(pooled),
            nn.Flatten(),
        )
        self.linear = nn.Linear(width * pooled[0] * pooled[1], 2 * grid_size[0] * grid_size[1])
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, correlation: torch.Tensor) -> torch.Tensor:
        offsets = self.linear(self.features(correlation))
        return offsets.view(-1, self.grid_size[0], self.grid_size[1], 2)


class WarpRefiner(nn.Module):
    """Person representation and the garment as warped so far -> offset correction.

    Inputs: the person representation `(B, person_channels, H, W)` and the warped
    garment's RGB and mask `(B, 4, H, W)`; output `(B, rows, cols, 2)`, zero for an
    untrained stage. `in_channels` is person_channels + 4.
    """

    def __init__(
        self,
        in_channels: int,
        feature_channels: Sequence[int],
        width: int,
        grid_size: tuple[int, int],
    ) -> None:
        super().__init__()
        self.features = FeatureExtractor(in_channels, feature_channels)
        self.regressor = GridRegressor(feature_channels[-1], width, grid_size)

    def forward(self, person: torch.Tensor, warped: torch.Tensor) -> torch.Tensor:
        return self.regressor(self.features(person, warped))


def half_resolution(x: torch.Tensor) -> torch.Tensor:
    """`(B, C, H, W)` -> `(B, C, H/2, W/2)`, the mean of each 2x2 block; H and W even.

    Bilinear resampling to exactly half the size (align_corners=False) samples midway
    between the four pixels of each block, so it equals 2x2 average pooling to float
    rounding; on a CPU it is 5x faster than `avg_pool2d` on the person representation's
    22 channels at full resolution (docs/speed.md).
    """
    size = (x.shape[-2] // 2, x.shape[-1] // 2)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


MAX_FLOW = 0.5  # largest move of the flow stage, normalised (a quarter of the image)
# Weight of `flow_smoothness` in the GMM loss: a smooth shift of a sleeve by a tenth of the
# image costs ~0.001-0.003, far less than the L1 it saves; pixel-to-pixel noise of 0.02
# costs ~0.2, so the flow cannot chase texture.
FLOW_WEIGHT = 0.05


class FlowRefiner(nn.Module):
    """Person representation and the spline-warped garment -> a dense correction of the
    sampling grid, `(B, 2, H, W)` normalised (x, y) within +-MAX_FLOW, zero until trained.

    A small U-Net at half resolution: it reads the person representation averaged over
    2x2 blocks (`half_resolution`, `(B, person_channels, H/2, W/2)`) beside the warped
    garment `(B, 4, H, W)` (RGB and mask), which it averages the same way; its flow is
    upsampled bilinearly to H x W; H and W even. `in_channels` is person_channels + 4.
    """

    def __init__(self, in_channels: int, base_channels: int = 16, depth: int = 3) -> None:
        super().__init__()
        self.unet = UNet(in_channels, 2, base_channels, depth, max_channels=64)
        nn.init.zeros_(self.unet.head.weight)
        nn.init.zeros_(self.unet.head.bias)

    def forward(self, half_person: torch.Tensor, warped: torch.Tensor) -> torch.Tensor:
        flow = self.unet(half_person, half_resolution(warped))
        flow = MAX_FLOW * torch.tanh(flow / MAX_FLOW)
        return F.interpolate(flow, size=warped.shape[-2:], mode="bilinear", align_corners=False)


class GmmOutput(NamedTuple):
    """What `GeometricMatcher` returns.

    Attributes:
        warped_garment: `(B, 3, H, W)` in [-1, 1], the garment times its mask, warped;
            0 (grey) off the garment and where the warp samples outside the photo.
        warped_mask: `(B, 1, H, W)` in [0, 1].
        source_points: `(B, rows, cols, 2)` normalised (x, y): where each regular control
            point of the output samples the garment (`tryon.models.tps.warp_tps`).
        flow: `(B, 2, H, W)` normalised (x, y), the flow stage's correction to the
            spline's sampling grid; None without a flow stage.
    """

    warped_garment: torch.Tensor
    warped_mask: torch.Tensor
    source_points: torch.Tensor
    flow: torch.Tensor | None = None


class GeometricMatcher(PretrainedMixin, nn.Module):
    """Warps a garment photo onto a person (CP-VTON's GMM with a configurable TPS grid).

    Args:
        person_channels: channels of the person representation (22: 18 keypoint heatmaps,
            body shape, head RGB).
        use_garment_mask: also feed the garment mask to the garment feature extractor.
        feature_channels: widths of the four stride-2 stages of both extractors.
        correlation_size: (h, w) both feature maps are pooled to before correlation; (16, 12)
            is 1/16 of the default 256x192, where pooling does nothing.
        regressor_width: width of the regression head.
        grid_size: (rows, columns) of TPS control points.
        refinement_stages: `WarpRefiner` stages after the correlation regressor (0 is
            CP-VTON's single regression; the shipped GMMs have 1).
        flow_stage: end with a `FlowRefiner` (`add_flow_stage` grows one onto a trained
            GMM).
    """

    def __init__(
        self,
        person_channels: int = 22,
        use_garment_mask: bool = True,
        feature_channels: Sequence[int] = (32, 48, 64, 64),
        correlation_size: Sequence[int] = (16, 12),
        regressor_width: int = 64,
        grid_size: Sequence[int] = (5, 5),
        refinement_stages: int = 1,
        flow_stage: bool = True,
    ) -> None:
        super().__init__()
        if refinement_stages < 0:
            raise ValueError(f"refinement_stages must be 0 or more, got {refinement_stages}")
        self.use_garment_mask = use_garment_mask
        self.correlation_size = (int(correlation_size[0]), int(correlation_size[1]))
        self.grid_size = (int(grid_size[0]), int(grid_size[1]))
        self.person_features = FeatureExtractor(person_channels, feature_channels)
        self.garment_features = FeatureExtractor(3 + int(use_garment_mask), feature_channels)
        self.regressor = GridRegressor(
            self.correlation_size[0] * self.correlation_size[1], regressor_width, self.grid_size
        )
        self.refiners = nn.ModuleList(
            WarpRefiner(person_channels + 4, feature_channels, regressor_width, self.grid_size)
            for _ in range(refinement_stages)
        )
        self.flow = FlowRefiner(person_channels + 4) if flow_stage else None
        self.register_buffer("base_grid", regular_grid(self.grid_size), persistent=False)

    def forward(
        self, person: torch.Tensor, garment: torch.Tensor, garment_mask: torch.Tensor
    ) -> GmmOutput:
        """Regress the warp and apply it to the garment and its mask.

        Args:
            person: `(B, person_channels, H, W)`, the GMM person representation.
            garment: `(B, 3, H, W)` in [-1, 1], the product photo at model resolution;
                multiplied by `garment_mask` before anything sees it.
            garment_mask: `(B, 1, H, W)` in [0, 1].
            H and W must be divisible by 16.
        """
        height, width = person.shape[-2:]
        if height % DOWNSAMPLING or width % DOWNSAMPLING:
            raise ValueError(f"GMM input size must be divisible by 16, got {height}x{width}")
        # Only the garment's own pixels are warped: the product photo's background becomes
        # 0 (grey), the value the warp pads with and the training target has off the body.
        garment = garment * garment_mask
        garment_input = (garment, garment_mask) if self.use_garment_mask else (garment,)
        # Cast and laid out once for the person's extractor and every refinement stage.
        person_input = convolution_input(self.person_features.first_convolution, person)
        correlation = feature_correlation(
            self.person_features(person_input),
            self.garment_features(*garment_input),
            self.correlation_size,
        )
        offsets = self.regressor(correlation)
        source = torch.cat((garment, garment_mask), 1)
        source_points = self._control_points(offsets)
        grid = tps_sampling_grid(source_points, height, width)
        warped = sample_at(source, grid)
        for refiner in self.refiners:
            # The stage reads the warp as data: its gradient reaches the earlier stages
            # through the offsets it adds to, not back through the resampled photo (that
            # second path made joint training diverge).
            offsets = offsets + refiner(person_input, warped.detach())
            source_points = self._control_points(offsets)
            grid = tps_sampling_grid(source_points, height, width)
            warped = sample_at(source, grid)
        flow = None
        if self.flow is not None:  # reads the spline's warp as data, like the stages;
            # its correction moves the spline's own sampling grid
            flow = self.flow(half_resolution(person), warped.detach())
            warped = sample_at(source, grid + flow.permute(0, 2, 3, 1))
        return GmmOutput(warped[:, :3], warped[:, 3:], source_points, flow)

    def _control_points(self, offsets: torch.Tensor) -> torch.Tensor:
        """`(B, rows, cols, 2)` offsets -> source points, saturating smoothly at MAX_OFFSET:
        enough to shrink a product photo to the body's size (corner points then sample far
        outside it), never enough to fling the whole grid off the garment, where no
        gradient comes back."""
        return self.base_grid + MAX_OFFSET * torch.tanh(offsets / MAX_OFFSET)


def add_refinement_stages(gmm: GeometricMatcher, stages: int) -> GeometricMatcher:
    """A copy of a trained GMM with `stages` refinement stages in all; the stages it lacks
    start untrained (zero correction), so the copy warps exactly as `gmm` does until they
    learn. The copy is in training mode, on `gmm`'s device and dtype. Refuses to remove
    trained stages, and a GMM whose batch norms are folded (grow it before folding)."""
    have = len(gmm.refiners)
    if stages < have:
        raise ValueError(f"this GMM has {have} trained refinement stages; cannot drop to {stages}")
    added = tuple(f"refiners.{stage}." for stage in range(have, stages))
    return grown_copy(gmm, added, refinement_stages=stages)


def add_flow_stage(gmm: GeometricMatcher) -> GeometricMatcher:
    """A copy of a trained GMM ending in an untrained flow stage (zero flow), which warps
    exactly as `gmm` does until the stage learns. In training mode, on `gmm`'s device and
    dtype; a GMM that has one already is copied as it is."""
    return grown_copy(gmm, ("flow.",), flow_stage=True)


def flow_smoothness(flow: torch.Tensor) -> torch.Tensor:
    """Mean absolute derivative of a `(B, 2, H, W)` flow along x and y, per unit of
    normalised image coordinate (so the same at any resolution); 0 for a constant shift."""
    height, width = flow.shape[-2:]
    along_x = (flow[..., :, 1:] - flow[..., :, :-1]).abs().mean() * width / 2
    along_y = (flow[..., 1:, :] - flow[..., :-1, :]).abs().mean() * height / 2
    return along_x + along_y


def grid_regularisation(source_points: torch.Tensor) -> torch.Tensor:
    """CP-VTON+'s grid constraint: mean absolute second difference of the control grid.

    Zero for any affine warp; penalises neighbouring grid cells that stretch or bend
    differently, which keeps the warp from folding.

    Args:
        source_points: `(B, rows, cols, 2)` normalised (x, y).

    Returns:
        Scalar.
    """
    along_rows = source_points[:, 2:] - 2.0 * source_points[:, 1:-1] + source_points[:, :-2]
    along_cols = (
        source_points[:, :, 2:] - 2.0 * source_points[:, :, 1:-1] + source_points[:, :, :-2]
    )
    return along_rows.abs().mean() + along_cols.abs().mean()


def gmm_loss(
    output: GmmOutput,
    target_garment: torch.Tensor,
    target_mask: torch.Tensor,
    grid_weight: float = GRID_WEIGHT,
) -> torch.Tensor:
    """L1 to the garment as worn, L1 of the masks, plus the grid regularisation (and the
    flow stage's `flow_smoothness`, weighted by FLOW_WEIGHT).

    Args:
        output: the GMM's output.
        target_garment: `(B, 3, H, W)` in [-1, 1], the person photo inside the worn
            garment's region and 0 outside (0 is what the warp pads with).
        target_mask: `(B, 1, H, W)` in [0, 1], the worn garment's region.
        grid_weight: weight of `grid_regularisation`.

    Returns:
        Scalar loss.
    """
    loss = (
        F.l1_loss(output.warped_garment, target_garment)
        + F.l1_loss(output.warped_mask, target_mask)
        + grid_weight * grid_regularisation(output.source_points)
    )
    if output.flow is not None:
        loss = loss + FLOW_WEIGHT * flow_smoothness(output.flow)
    return loss
