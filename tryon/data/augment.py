"""Random changes to training samples that real shops' photos call for: flips, zoom, colour.

Shops shoot shoppers and products under other lights, framings and poses than the
training set; `augment_item` changes a sample the way such photos differ, and changes
every aligned part of it alike, so that the ground truth stays the truth:

- **flip** (probability `flip`): the person photo, parse map, keypoints and warp ground
  truth are mirrored. The person's left arm becomes their right arm, so the parse labels
  swap (14/15 arms, 16/17 legs, 18/19 shoes) and so do the COCO-18 keypoint pairs
  (shoulders, elbows, wrists, hips, knees, ankles, eyes, ears): a shopper facing the
  camera still has their right arm on the image's left. The in-shop garment photo and its
  mask are mirrored too: the garment worn in the mirrored photo (the GMM's target and the
  TOM's) is the mirror image of the product, and left unflipped it would ask the GMM to
  mirror a garment, which no plausible warp does, and the TOM to copy print the wrong way
  round. Mirrored lettering is the price, on both sides alike.
- **scale** (a zoom factor drawn from `scale`): the person photo, parse map, keypoints and
  warp ground truth are zoomed about the centre and shifted as little as keeps the person
  (the parse's non-background pixels) in the frame; zoomed out, the photo's edge pixels
  fill the border and the parse reads background there. The garment photo is not zoomed:
  it is not aligned with the person.
- **colour** (strength `colour`): brightness, contrast and saturation each scaled by a
  factor drawn from [1 - colour, 1 + colour], hue turned by up to `colour` / 4 of a turn,
  the same change to the person photo, the garment photo and the warp ground truth: the
  try-on must show the garment in the photo's light, and a garment recoloured alone would
  ask the TOM for colours it cannot know.

Off by default (`Augmentation()`): the shipped recipes train exactly as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kornia.color import hsv_to_rgb, rgb_to_hsv

from tryon.labels import (
    BACKGROUND,
    L_ANKLE,
    L_EAR,
    L_ELBOW,
    L_EYE,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_WRIST,
    LEFT_ARM,
    LEFT_LEG,
    LEFT_SHOE,
    NUM_KEYPOINTS,
    NUM_PARSE_LABELS,
    R_ANKLE,
    R_EAR,
    R_ELBOW,
    R_EYE,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_WRIST,
    RIGHT_ARM,
    RIGHT_LEG,
    RIGHT_SHOE,
)

MIRRORED_LABELS = ((LEFT_ARM, RIGHT_ARM), (LEFT_LEG, RIGHT_LEG), (LEFT_SHOE, RIGHT_SHOE))
MIRRORED_KEYPOINTS = (
    (R_SHOULDER, L_SHOULDER),
    (R_ELBOW, L_ELBOW),
    (R_WRIST, L_WRIST),
    (R_HIP, L_HIP),
    (R_KNEE, L_KNEE),
    (R_ANKLE, L_ANKLE),
    (R_EYE, L_EYE),
    (R_EAR, L_EAR),
)
ALIGNED_IMAGES = ("person", "warp_gt")  # zoomed with the person, edges replicated
ALIGNED_MASKS = ("warp_gt_mask",)  # zoomed with the person, zero outside
COLOURED = ("person", "cloth", "warp_gt")  # one colour change for all
FLIPPED = ("person", "warp_gt", "warp_gt_mask", "cloth", "cloth_mask")


@dataclass(kw_only=True)
class Augmentation:
    """What a recipe's `data.augment:` asks for (see the module's notes).

    flip: probability of mirroring a sample, 0-1. colour: jitter strength, 0-1 (0.2:
    brightness, contrast and saturation x0.8-1.2, hue within 0.05 of a turn). scale:
    (smallest, largest) zoom factor, drawn uniformly; (1, 1) is off.
    """

    flip: float = 0.0
    colour: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)

    @property
    def active(self) -> bool:
        """Whether it changes anything (an inactive one is never applied)."""
        return self.flip > 0 or self.colour > 0 or self.scale != (1.0, 1.0)

    def problems(self) -> list[tuple[str, str]]:
        """(key, what is wrong) for each value out of range."""
        low, high = self.scale
        found = []
        if not 0.0 <= self.flip <= 1.0:
            found.append(("flip", f"{self.flip}: give a probability from 0 to 1"))
        if not 0.0 <= self.colour < 1.0:
            found.append(("colour", f"{self.colour}: give a strength from 0 to below 1"))
        if not 0.0 < low <= high:
            found.append(("scale", f"{[low, high]}: give [smallest, largest] zoom, 0 < smallest"))
        return found


def augment_item(
    item: dict[str, torch.Tensor | str],
    settings: Augmentation,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor | str]:
    """A randomly changed copy of one dataset item (`sample_to_tensors`'s fields: `person`,
    `cloth` `(3, H, W)` in [-1, 1]; `cloth_mask` `(1, H, W)`; `parse` `(H, W)` int64;
    `keypoints` `(18, 3)` (x, y in pixels, pixel centres at integers; confidence 0:
    missing); optional `warp_gt` `(3, H, W)`, `warp_gt_mask` `(1, H, W)`). Random draws
    come from `generator` (the global one by default, which a DataLoader seeds per
    worker)."""
    item = dict(item)
    low, high = settings.scale
    zoom = low if low == high else low + (high - low) * float(torch.rand((), generator=generator))
    if zoom != 1.0:
        item = zoom_item(item, zoom)
    if settings.flip > 0 and float(torch.rand((), generator=generator)) < settings.flip:
        item = flip_item(item)
    if settings.colour > 0:
        factors = (1 + settings.colour * (2 * torch.rand(4, generator=generator) - 1)).tolist()
        brightness, contrast, saturation, hue = factors
        turn = (hue - 1) / 4  # within colour / 4 of a turn
        for key in COLOURED:
            if key in item:
                item[key] = jitter_colour(item[key], brightness, contrast, saturation, turn)
    return item


def flip_item(item: dict[str, torch.Tensor | str]) -> dict[str, torch.Tensor | str]:
    """The item mirrored left to right, labels and keypoints of the person's left and right
    swapped (see `augment_item` for the fields)."""
    item = dict(item)
    for key in FLIPPED:
        if key in item:
            item[key] = item[key].flip(-1)
    swap = torch.arange(NUM_PARSE_LABELS)
    for left, right in MIRRORED_LABELS:
        swap[left], swap[right] = right, left
    item["parse"] = swap[item["parse"].flip(-1)]
    width = item["parse"].shape[-1]
    keypoints = item["keypoints"].clone()
    seen = keypoints[:, 2] > 0
    keypoints[seen, 0] = (width - 1) - keypoints[seen, 0]
    order = list(range(NUM_KEYPOINTS))
    for right, left in MIRRORED_KEYPOINTS:
        order[right], order[left] = left, right
    item["keypoints"] = keypoints[order]
    return item


def zoom_item(item: dict[str, torch.Tensor | str], zoom: float) -> dict[str, torch.Tensor | str]:
    """The person's aligned fields zoomed by `zoom` (> 1 closer) about the centre, shifted
    as little as keeps the person in frame (centred if they cannot fit); keypoints that
    leave the frame become missing (0, 0, 0)."""
    item = dict(item)
    parse = item["parse"]
    height, width = parse.shape
    shift = [
        _shift_to_keep(parse != BACKGROUND, zoom, axis, size)
        for axis, size in ((1, width), (0, height))
    ]
    # Pixel-centre coordinates u = zoom (x - c) + c + shift; in grid_sample's normalised
    # coordinates (align_corners=True) the inverse is n_in = (n_out - 2 shift/(size-1)) / zoom.
    theta = torch.tensor(
        [
            [1 / zoom, 0.0, -2 * shift[0] / max(width - 1, 1) / zoom],
            [0.0, 1 / zoom, -2 * shift[1] / max(height - 1, 1) / zoom],
        ]
    )
    grid = F.affine_grid(theta[None], [1, 1, height, width], align_corners=True)

    def sample(image: torch.Tensor, mode: str, padding: str) -> torch.Tensor:
        out = F.grid_sample(
            image[None].float(), grid, mode=mode, padding_mode=padding, align_corners=True
        )
        return out[0]

    for key in ALIGNED_IMAGES:
        if key in item:
            item[key] = sample(item[key], "bilinear", "border")
    for key in ALIGNED_MASKS:
        if key in item:
            item[key] = sample(item[key], "bilinear", "zeros")
    # Label 0 (background) outside the photo: grid_sample's zeros padding.
    item["parse"] = sample(parse[None], "nearest", "zeros")[0].round().long()
    keypoints = item["keypoints"].clone()
    centre = torch.tensor([(width - 1) / 2, (height - 1) / 2])
    moved = zoom * (keypoints[:, :2] - centre) + centre + torch.tensor(shift)
    inside = (moved >= 0).all(dim=1) & (moved[:, 0] <= width - 1) & (moved[:, 1] <= height - 1)
    seen = keypoints[:, 2] > 0
    keypoints[:, :2] = torch.where((seen & inside)[:, None], moved, 0.0)
    keypoints[:, 2] = torch.where(seen & inside, keypoints[:, 2], 0.0)
    item["keypoints"] = keypoints
    return item


def jitter_colour(
    image: torch.Tensor, brightness: float, contrast: float, saturation: float, turn: float
) -> torch.Tensor:
    """`image` `(3, H, W)` in [-1, 1] with its brightness and contrast (about mid-grey, so
    that every image of a sample changes alike) and saturation multiplied by the factors
    and its hue turned by `turn` of a full turn; in [-1, 1]."""
    rgb = ((image + 1) / 2 * brightness).clamp(0, 1)
    rgb = ((rgb - 0.5) * contrast + 0.5).clamp(0, 1)
    grey = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])[None]
    rgb = (grey + (rgb - grey) * saturation).clamp(0, 1)
    if turn != 0:
        hsv = rgb_to_hsv(rgb[None])
        hue = torch.remainder(hsv[:, :1] + 2 * math.pi * turn, 2 * math.pi)
        rgb = hsv_to_rgb(torch.cat([hue, hsv[:, 1:]], dim=1))[0].clamp(0, 1)
    return rgb * 2 - 1


def _shift_to_keep(person: torch.Tensor, zoom: float, axis: int, size: int) -> float:
    """The shift along `axis` (1: x, 0: y), in pixels, that keeps the `person` mask `(H, W)`
    bool in frame after zooming by `zoom` about the centre: the smallest that does, or the
    one centring it when it cannot fit. 0 without a person."""
    present = torch.nonzero(person.any(dim=1 - axis)).flatten()
    if present.numel() == 0:
        return 0.0
    centre = (size - 1) / 2
    first, last = (zoom * (float(p) - centre) + centre for p in (present[0], present[-1]))
    lowest, highest = -first, (size - 1) - last  # shifts that keep each end in frame
    if lowest <= highest:
        return min(max(0.0, lowest), highest)
    return (lowest + highest) / 2
