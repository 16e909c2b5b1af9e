"""What the networks see of the person, built from the photo, its parse map and keypoints.

Two views, both free of the garment the person wears, so that a network trained to
reproduce that garment learns to draw *any* garment:

- CP-VTON's cloth-agnostic channels: one heatmap per keypoint (the pose), a blurred
  silhouette (the body shape, too coarse to show the old garment's outline) and the head
  in RGB (identity). The geometric matching module sees these.
- VITON-HD's clothing-agnostic photo: the photo with the try-on region (upper clothes,
  arms, neck, slightly dilated) filled grey. The try-on module sees it and so keeps the
  shopper's own background, face, hair and lower body, repainting only that region.
  The shopper's own arms are kept too where the new garment leaves them bare
  (`PersonRepresentation.repainted_region`, as ACGPN preserves the body parts the new
  garment does not cover): the try-on paints the garment and the skin it uncovers.
  Beside it, which of the photo's pixels are background, from which
  `PersonRepresentation.background_fill` continues the background under that region for a
  try-on module that shows it where the new garment leaves the background visible.

All functions are pure torch, batched, work on any device and at any resolution (sizes
are fractions of the image height). Conventions: person `(B, 3, H, W)` in [-1, 1]; parse
`(B, H, W)` integer LIP labels; keypoints `(B, 18, 3)` COCO-18 (x, y, confidence) with x,
y in pixels of the image (pixel centres at integer coordinates), confidence 0 = missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tryon.channels import concatenate_channels
from tryon.compositing import paste_into_region
from tryon.labels import (
    ARM_LABELS,
    BACKGROUND,
    HEAD_LABELS,
    L_SHOULDER,
    LOWER_BODY_LABELS,
    NECK,
    NUM_KEYPOINTS,
    NUM_PARSE_LABELS,
    R_SHOULDER,
    UPPER_CLOTHES_LABELS,
)

# Sizes as fractions of the image height (values at 256 px high in brackets).
HEATMAP_SIGMA = 0.015  # Gaussian sigma of a keypoint heatmap [3.8 px]
REGION_DILATION = 0.015  # growth of the try-on region past the garment's edge [4 px]
SHAPE_DOWNSAMPLE = 16  # CP-VTON: the silhouette is shrunk 16 times and blown up again
# The neck, which LIP leaves unlabelled, is found around the neck keypoint: a band this
# many shoulder widths to each side, from NECK_HEIGHT above the keypoint (the head labels
# cut it off at the chin) down to NECK_DEPTH below it.
NECK_HALF_WIDTH = 0.2
NECK_HEIGHT = 0.5
NECK_DEPTH = 0.25
SHOULDER_WIDTH_IF_UNKNOWN = 0.3  # fraction of the height, when a shoulder is missing

GMM_PERSON_CHANNELS = 1 + 3 + NUM_KEYPOINTS  # shape, head RGB, heatmaps = 22
TOM_PERSON_CHANNELS = 3 + 1 + NUM_KEYPOINTS  # agnostic RGB, shape, heatmaps = 22


@dataclass(frozen=True)
class PersonRepresentation:
    """The garment-free description of a batch of people (all float32, `(B, C, H, W)`).

    heatmaps: `(B, 18, H, W)` in [0, 1], a Gaussian at each keypoint, 0 for missing ones.
    shape: `(B, 1, H, W)` in [0, 1], the blurred body silhouette.
    head: `(B, 3, H, W)` in [-1, 1], the photo inside hat/hair/sunglasses/face, 0 elsewhere.
    agnostic: `(B, 3, H, W)` in [-1, 1], the photo with `tryon_region` set to 0 (grey).
    tryon_region: `(B, 1, H, W)` in {0, 1}, the pixels the try-on may repaint (it keeps the
    arms the new garment leaves bare: `repainted_region`).
    garment_region: `(B, 1, H, W)` in {0, 1}, the worn upper garment (the training target
    of the warped garment's placement).
    background_pixels: `(B, 1, H, W)` in {0, 1}, the pixels outside `tryon_region` that the
    parse labels background (what `background_fill` spreads).
    arm_pixels: `(B, 1, H, W)` in {0, 1}, where the parse shows the shopper's arms (bare
    skin or gloves; sleeves are upper clothes), all inside `tryon_region`.
    arms: `(B, 3, H, W)` in [-1, 1], the photo on `arm_pixels`, 0 elsewhere.
    """

    heatmaps: torch.Tensor
    shape: torch.Tensor
    head: torch.Tensor
    agnostic: torch.Tensor
    tryon_region: torch.Tensor
    garment_region: torch.Tensor
    background_pixels: torch.Tensor
    arm_pixels: torch.Tensor
    arms: torch.Tensor

    def gmm_input(
        self, memory_format: torch.memory_format = torch.contiguous_format
    ) -> torch.Tensor:
        """`(B, GMM_PERSON_CHANNELS, H, W)`: shape (1), head (3), heatmaps (18), in that
        order, laid out in `memory_format` (the pipeline's networks read channels-last on
        the CPU)."""
        return concatenate_channels([self.shape, self.head, self.heatmaps], memory_format)

    def tom_input(
        self, memory_format: torch.memory_format = torch.contiguous_format
    ) -> torch.Tensor:
        """`(B, TOM_PERSON_CHANNELS, H, W)`: agnostic (3), shape (1), heatmaps (18), in
        that order, laid out in `memory_format`."""
        return concatenate_channels([self.agnostic, self.shape, self.heatmaps], memory_format)

    def background_fill(self) -> torch.Tensor:
        """The photo's background continued under the try-on region: `(B, 3, H, W)` in
        [-1, 1]. The background pixels keep their colour; every other pixel gets a blend of
        the nearest of them (`push_pull_fill`), so a thin ring of the region next to a plain
        or graded wall gets the wall's colour. A photo without background pixels gets 0
        (grey). A few milliseconds at 256x192, so computed only when asked for."""
        return push_pull_fill(self.agnostic, self.background_pixels)

    def repainted_region(self, warped_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The pixels the try-on paints, `(B, 1, H, W)` in {0, 1}: `tryon_region`, less the
        shopper's own arms where the warped garment's mask `(B, 1, H, W)` in [0, 1] does not
        cover them (half or less). A long sleeve is painted over the arm; a bare arm or hand
        beside a short one stays the shopper's own. None: all of `tryon_region`."""
        if warped_mask is None:
            return self.tryon_region
        left_bare = self.arm_pixels * (warped_mask <= 0.5).to(self.arm_pixels.dtype)
        return self.tryon_region * (1 - left_bare)

    def dressed(self, composite: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
        """The try-on `(B, 3, H, W)` in [-1, 1]: `composite` (the try-on module's image,
        same shape) inside `region` (from `repainted_region`), the photo everywhere else."""
        return paste_into_region(composite, self.agnostic + self.arms, region)


def build_representation(
    person: torch.Tensor, parse: torch.Tensor, keypoints: torch.Tensor
) -> PersonRepresentation:
    """Build every view of the person from the photo, its parse map and its keypoints.

    person: `(B, 3, H, W)` in [-1, 1]. parse: `(B, H, W)` integer LIP labels. keypoints:
    `(B, 18, 3)` (x, y, confidence) in pixels of the `H x W` image.
    """
    _check_inputs(person, parse, keypoints)
    region = tryon_region(parse, keypoints)
    arm_pixels = label_mask(parse, ARM_LABELS).to(person.dtype) * region
    return PersonRepresentation(
        heatmaps=keypoint_heatmaps(keypoints, parse.shape[-2:]),
        shape=body_shape(parse),
        head=head_image(person, parse),
        agnostic=agnostic_image(person, region),
        tryon_region=region,
        garment_region=upper_garment_region(parse),
        background_pixels=((parse == BACKGROUND).unsqueeze(1) & (region < 0.5)).float(),
        arm_pixels=arm_pixels,
        arms=person * arm_pixels,
    )


def keypoint_heatmaps(
    keypoints: torch.Tensor, size: tuple[int, int], sigma: float | None = None
) -> torch.Tensor:
    """One Gaussian heatmap per keypoint: `(B, 18, H, W)` in [0, 1], peak 1 at the point.

    keypoints: `(B, 18, 3)` in pixels of an image of `size` (height, width); keypoints of
    confidence 0 give an all-zero map. sigma: in pixels, default `HEATMAP_SIGMA * H`.
    The maps are laid out channels-last in memory, as the pipeline's networks read them
    on the CPU: building them so costs nothing, changing the layout afterwards ~1 ms.
    """
    height, width = int(size[0]), int(size[1])
    sigma = HEATMAP_SIGMA * height if sigma is None else sigma
    points = keypoints.float()
    xs = torch.arange(width, dtype=torch.float32, device=keypoints.device)
    ys = torch.arange(height, dtype=torch.float32, device=keypoints.device)
    # Separable: a 2-D Gaussian is the product of two 1-D ones.
    across = torch.exp(-((xs - points[..., 0:1]) ** 2) / (2 * sigma**2))  # (B, 18, W)
    down = torch.exp(-((ys - points[..., 1:2]) ** 2) / (2 * sigma**2))  # (B, 18, H)
    down = down * (points[..., 2:3] > 0).float()
    # The outer product of the two, keypoints last: (B, H, W, 18), viewed as (B, 18, H, W).
    outer = down.transpose(1, 2)[:, :, None, :] * across.transpose(1, 2)[:, None, :, :]
    return outer.permute(0, 3, 1, 2)


def body_shape(parse: torch.Tensor) -> torch.Tensor:
    """The blurred silhouette `(B, 1, H, W)` in [0, 1] (CP-VTON's downsample-upsample).

    parse: `(B, H, W)` labels; every non-background label is body.
    """
    silhouette = (parse > 0).float().unsqueeze(1)
    height, width = parse.shape[-2:]
    coarse = (max(1, round(height / SHAPE_DOWNSAMPLE)), max(1, round(width / SHAPE_DOWNSAMPLE)))
    small = F.interpolate(silhouette, size=coarse, mode="area")
    return F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)


def head_image(person: torch.Tensor, parse: torch.Tensor) -> torch.Tensor:
    """The head in RGB `(B, 3, H, W)` in [-1, 1]: the photo on head labels, 0 elsewhere."""
    return person * label_mask(parse, HEAD_LABELS).to(person.dtype)


def agnostic_image(person: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """The photo `(B, 3, H, W)` in [-1, 1] with `region` `(B, 1, H, W)` in {0, 1} grey (0)."""
    return person * (1 - region.to(person.dtype))


def tryon_region(parse: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
    """The pixels the try-on may repaint: `(B, 1, H, W)` float in {0, 1}.

    Upper clothes, arms and the neck, dilated by `REGION_DILATION` so that no fringe of
    the old garment survives, minus the head and lower-body labels, which stay untouched.
    parse: `(B, H, W)` labels; keypoints: `(B, 18, 3)` in pixels.
    """
    covered = label_mask(parse, UPPER_CLOTHES_LABELS + ARM_LABELS) | neck_region(parse, keypoints)
    radius = max(1, round(REGION_DILATION * parse.shape[-2]))
    kept = label_mask(parse, HEAD_LABELS + LOWER_BODY_LABELS)
    return ((dilate(covered.float(), radius) > 0) & ~kept).float()


def push_pull_fill(image: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """`image` `(B, C, H, W)` with its unknown pixels filled from the `known` ones
    (`(B, 1, H, W)` in {0, 1}).

    Push: halve the resolution until one pixel is left, each level the known-weighted mean
    of the one below. Pull: from the coarsest level back up, a pixel keeps its own mean in
    proportion to how much of it was known and takes the upsampled coarser level for the
    rest. Known pixels come out unchanged; a hole is filled from its surroundings, the
    nearer the more.
    """
    levels = [(image * known, known)]
    while max(levels[-1][1].shape[-2:]) > 1:
        values, weights = levels[-1]
        levels.append(
            (F.avg_pool2d(values, 2, ceil_mode=True), F.avg_pool2d(weights, 2, ceil_mode=True))
        )
    values, weights = levels.pop()
    filled = values / weights.clamp_min(1e-6)
    for values, weights in reversed(levels):
        coarse = F.interpolate(filled, size=values.shape[-2:], mode="bilinear", align_corners=False)
        own = values / weights.clamp_min(1e-6)
        filled = own * weights + coarse * (1 - weights)
    return filled


def visible_background(
    parse: torch.Tensor, keypoints: torch.Tensor, region: torch.Tensor
) -> torch.Tensor:
    """Where the background shows inside the try-on region: `(B, 1, H, W)` float in {0, 1}.

    The pixels of `region` that `parse` labels background, less the neck (which LIP parse
    maps leave unlabelled, `neck_region`): where a TOM that shows the background fill
    should show it (its training target).
    """
    background = (parse == BACKGROUND).unsqueeze(1) & ~neck_region(parse, keypoints)
    return region * background.to(region.dtype)


def neck_region(parse: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
    """The neck, which LIP parse maps leave as background: `(B, 1, H, W)` bool.

    A band around the neck keypoint, `NECK_HALF_WIDTH` shoulder widths to each side, from
    `NECK_HEIGHT` shoulder widths above the keypoint down to `NECK_DEPTH` below it, less the
    head labels, so that it stops at the chin. Empty when the neck keypoint is missing.
    """
    height, width = parse.shape[-2:]
    head = label_mask(parse, HEAD_LABELS)
    neck = keypoints[:, NECK].float()
    shoulder_width = _shoulder_width(keypoints, height)
    xs = torch.arange(width, device=parse.device, dtype=torch.float32).view(1, 1, 1, width)
    ys = torch.arange(height, device=parse.device, dtype=torch.float32).view(1, 1, height, 1)
    band = (xs - _per_image(neck[:, 0])).abs() <= _per_image(NECK_HALF_WIDTH * shoulder_width)
    neck_y = _per_image(neck[:, 1])
    rows = (ys >= neck_y - _per_image(NECK_HEIGHT * shoulder_width)) & (
        ys <= neck_y + _per_image(NECK_DEPTH * shoulder_width)
    )
    present = _per_image(neck[:, 2]) > 0
    return band & rows & ~head & present


def upper_garment_region(parse: torch.Tensor) -> torch.Tensor:
    """Where `parse` `(B, H, W)` shows the upper garment: `(B, 1, H, W)` float in {0, 1}."""
    return label_mask(parse, UPPER_CLOTHES_LABELS).float()


def label_mask(parse: torch.Tensor, labels: tuple[int, ...]) -> torch.Tensor:
    """Where `parse` `(B, H, W)` holds one of `labels`: `(B, 1, H, W)` bool."""
    lookup = torch.zeros(NUM_PARSE_LABELS, dtype=torch.bool, device=parse.device)
    lookup[list(labels)] = True
    return lookup[parse.long().clamp(0, NUM_PARSE_LABELS - 1)].unsqueeze(1)


def scale_keypoints(
    keypoints: torch.Tensor, from_size: tuple[int, int], to_size: tuple[int, int]
) -> torch.Tensor:
    """Keypoints `(..., 18, 3)` in pixels of a `from_size` image, moved to a `to_size` one.

    Sizes are (height, width). Pixel centres are at integer coordinates, so the mapping is
    `x' = (x + 0.5) * W' / W - 0.5`; missing keypoints stay (0, 0, 0).
    """
    scale = torch.tensor(
        [to_size[1] / from_size[1], to_size[0] / from_size[0]],
        dtype=torch.float32,
        device=keypoints.device,
    )
    present = (keypoints[..., 2:3] > 0).float()
    xy = ((keypoints[..., :2].float() + 0.5) * scale - 0.5) * present
    return torch.cat([xy, keypoints[..., 2:3].float()], dim=-1)


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Grow a `(B, 1, H, W)` mask in {0, 1} by a `(2r+1)`-pixel square: 1 wherever the
    square around a pixel holds a 1, in `mask`'s dtype.

    Two 1-D box means, then > 0: for a {0, 1} mask the same as two max filters, and on a
    CPU 0.4 ms against 1.1 ms at 256x192 (`max_pool2d` also computes its argmax there).
    """
    size = 2 * radius + 1
    rows = F.avg_pool2d(mask, kernel_size=(1, size), stride=1, padding=(0, radius))
    grown = F.avg_pool2d(rows, kernel_size=(size, 1), stride=1, padding=(radius, 0))
    return (grown > 0).to(mask.dtype)


def _shoulder_width(keypoints: torch.Tensor, height: int) -> torch.Tensor:
    right, left = keypoints[:, R_SHOULDER].float(), keypoints[:, L_SHOULDER].float()
    both = (right[:, 2] > 0) & (left[:, 2] > 0)
    measured = (right[:, :2] - left[:, :2]).norm(dim=-1)
    return torch.where(
        both, measured, torch.full_like(measured, SHOULDER_WIDTH_IF_UNKNOWN * height)
    )


def _per_image(values: torch.Tensor) -> torch.Tensor:
    """`(B,)` -> `(B, 1, 1, 1)`, to broadcast one value per image over `(B, 1, H, W)`."""
    return values.view(-1, 1, 1, 1)


def _check_inputs(person: torch.Tensor, parse: torch.Tensor, keypoints: torch.Tensor) -> None:
    batch, height, width = parse.shape if parse.ndim == 3 else (None, None, None)
    if batch is None or parse.dtype.is_floating_point:
        raise ValueError(
            f"parse must be integer labels (B, H, W), got {parse.dtype} {tuple(parse.shape)}"
        )
    if tuple(person.shape) != (batch, 3, height, width):
        raise ValueError(
            f"person must be (B, 3, H, W) = {(batch, 3, height, width)} to match parse, "
            f"got {tuple(person.shape)}"
        )
    if tuple(keypoints.shape) != (batch, NUM_KEYPOINTS, 3):
        raise ValueError(
            f"keypoints must be (B, 18, 3) = {(batch, NUM_KEYPOINTS, 3)}, "
            f"got {tuple(keypoints.shape)}"
        )
