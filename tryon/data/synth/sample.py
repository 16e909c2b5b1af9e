"""One synthetic try-on sample: shopper photo, product photo and exact ground truth.

Sample `index` of seed `seed` depends on nothing else: three random streams (body, garment,
scene) are seeded from (seed, index, stream). Everything is drawn on a canvas twice the
output size and downsampled by area averaging, which anti-aliases the edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tryon import labels as L
from tryon.data.synth.dressing import dress
from tryon.data.synth.garment import FlatGarment, make_garment
from tryon.data.synth.person import Part, render_person, sample_look, side_part
from tryon.data.synth.pose import Body, sample_body
from tryon.data.synth.scene import apply_camera, render_background

RENDER_SCALE = 2
BODY_STREAM, GARMENT_STREAM, SCENE_STREAM = 0, 1, 2

VISIBLE, OCCLUDED, OUTSIDE = 1.0, 0.5, 0.0


@dataclass
class SynthSample:
    """Arrays of one sample at output resolution (H, W).

    person: `(H, W, 3)` uint8 RGB, the shopper photo (before JPEG).
    parse: `(H, W)` uint8 LIP labels.
    keypoints: `(18, 3)` float32 (x, y, confidence) in output pixels; confidence 1 visible,
        0.5 hidden behind something, 0 outside the frame.
    cloth: `(H, W, 3)` uint8 RGB product photo; cloth_mask: `(H, W)` uint8 in {0, 255}.
    warp_gt: `(H, W, 3)` uint8, the garment as it lies on the body before anything
        occludes it, on white; warp_gt_mask: `(H, W)` uint8 in {0, 255}.
    """

    person: np.ndarray
    parse: np.ndarray
    keypoints: np.ndarray
    cloth: np.ndarray
    cloth_mask: np.ndarray
    warp_gt: np.ndarray
    warp_gt_mask: np.ndarray


def stream(seed: int, index: int, which: int) -> np.random.Generator:
    """The random stream `which` of sample `index`."""
    return np.random.default_rng([seed, index, which])


def render_canvas(size: tuple[int, int]) -> tuple[int, int]:
    return size[0] * RENDER_SCALE, size[1] * RENDER_SCALE


def _downsample(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)


def _binary(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.where(_downsample(mask.astype(np.float32), size) >= 0.5, 255, 0).astype(np.uint8)


def render_garment(
    seed: int, index: int, size: tuple[int, int] = (256, 192)
) -> tuple[np.ndarray, np.ndarray]:
    """The product photo of sample `index`'s garment and its exact mask.

    Returns:
        photo: `(H, W, 3)` uint8 RGB on a white or light-grey background with a soft shadow.
        mask: `(H, W)` uint8 in {0, 255}.
    """
    flat = make_garment(stream(seed, index, GARMENT_STREAM), render_canvas(size))
    return _to_uint8(_downsample(flat.photo, size)), _binary(flat.mask, size)


# Which parts may be in front of each keypoint when it is visible.
_KEYPOINT_PARTS: dict[int, tuple[Part, ...]] = {
    L.NOSE: (Part.FACE,),
    L.R_EYE: (Part.FACE,),
    L.L_EYE: (Part.FACE,),
    L.R_EAR: (Part.EAR_RIGHT,),
    L.L_EAR: (Part.EAR_LEFT,),
    L.NECK: (Part.NECK, Part.PANEL),
}
for _side, (_sh, _el, _wr), (_hip, _knee, _ankle) in (
    (-1, (L.R_SHOULDER, L.R_ELBOW, L.R_WRIST), (L.R_HIP, L.R_KNEE, L.R_ANKLE)),
    (1, (L.L_SHOULDER, L.L_ELBOW, L.L_WRIST), (L.L_HIP, L.L_KNEE, L.L_ANKLE)),
):
    _arm = (side_part(Part.ARM_RIGHT, _side), side_part(Part.SLEEVE_RIGHT, _side))
    _KEYPOINT_PARTS[_sh] = (*_arm, Part.PANEL)
    _KEYPOINT_PARTS[_el] = _arm
    _KEYPOINT_PARTS[_wr] = _arm
    _leg = (Part.LOWER, side_part(Part.LEG_RIGHT, _side), side_part(Part.SHOE_RIGHT, _side))
    _KEYPOINT_PARTS[_hip] = (*_leg, Part.PANEL)
    _KEYPOINT_PARTS[_knee] = _leg
    _KEYPOINT_PARTS[_ankle] = _leg


def keypoints_with_visibility(body: Body, parts: np.ndarray) -> np.ndarray:
    """Keypoints `(18, 3)` on the render canvas with OpenPose-style confidences, from the
    part map `(H, W)` of what is in front at each pixel."""
    kp = body.keypoints()
    height, width = parts.shape
    out = np.zeros((L.NUM_KEYPOINTS, 3), np.float32)
    for i, (x, y) in enumerate(kp):
        xi, yi = int(round(x)), int(round(y))
        if not (0 <= xi < width and 0 <= yi < height):
            continue
        out[i] = (x, y, VISIBLE if parts[yi, xi] in _KEYPOINT_PARTS[i] else OCCLUDED)
    return out


def generate_sample(seed: int, index: int, size: tuple[int, int] = (256, 192)) -> SynthSample:
    """Render sample `index` of the dataset with `seed` at output size (height, width)."""
    canvas = render_canvas(size)
    body_rng = stream(seed, index, BODY_STREAM)
    scene_rng = stream(seed, index, SCENE_STREAM)
    flat: FlatGarment = make_garment(stream(seed, index, GARMENT_STREAM), canvas)
    body = sample_body(body_rng, canvas)
    look = sample_look(body_rng)
    worn = dress(body, flat.layout, flat.albedo, flat.parts, body_rng)
    drawn = render_person(body_rng, body, look, worn, render_background(scene_rng, canvas))

    keypoints = keypoints_with_visibility(body, drawn.parts)
    inside = keypoints[:, 2] > 0
    keypoints[inside, :2] = (keypoints[inside, :2] + 0.5) / RENDER_SCALE - 0.5

    garment_on_body = np.maximum(worn.panel, np.maximum(worn.sleeves[-1], worn.sleeves[1]))
    warp_gt = np.ones_like(worn.albedo) * (1 - garment_on_body[..., None])
    warp_gt += worn.albedo * garment_on_body[..., None]
    return SynthSample(
        person=apply_camera(scene_rng, _downsample(drawn.image, size)),
        parse=drawn.labels[::RENDER_SCALE, ::RENDER_SCALE].copy(),
        keypoints=keypoints,
        cloth=_to_uint8(_downsample(flat.photo, size)),
        cloth_mask=_binary(flat.mask, size),
        warp_gt=_to_uint8(_downsample(warp_gt, size)),
        warp_gt_mask=_binary(garment_on_body, size),
    )
