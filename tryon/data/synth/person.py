"""Rendering a dressed synthetic person, back to front, with its exact parse map.

Every shape is painted into the image, the LIP label map and a *part* map at once, so the
labels are exact by construction. The part map tells which body part is in front at each
pixel; keypoint visibility is read from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import cv2
import numpy as np

from tryon import labels as L
from tryon.data.synth.drawing import (
    capsule,
    ellipse,
    hsv_colour,
    polygon_window,
    smooth_noise,
    soft_shading,
)
from tryon.data.synth.dressing import WornGarment
from tryon.data.synth.pose import Body

SKIN_TONES = (
    np.array(
        [
            (255, 226, 200),
            (241, 194, 150),
            (224, 172, 125),
            (198, 140, 95),
            (160, 105, 70),
            (120, 75, 50),
            (85, 55, 38),
        ],
        np.float32,
    )
    / 255
)
HAIR_STYLES = ("short", "long", "bob", "bun", "buzz", "ponytail")
HAIR_COLOURS = (
    np.array(
        [(20, 16, 14), (55, 35, 22), (100, 65, 38), (190, 150, 90), (150, 60, 30), (160, 160, 160)],
        np.float32,
    )
    / 255
)


class Part(IntEnum):
    """What is in front at a pixel: finer than the parse labels (sides, neck, panel)."""

    BACKGROUND = 0
    HAIR = 1
    FACE = 2
    EAR_RIGHT = 3
    EAR_LEFT = 4
    NECK = 5
    PANEL = 6
    ARM_RIGHT = 7
    ARM_LEFT = 8
    SLEEVE_RIGHT = 9
    SLEEVE_LEFT = 10
    LOWER = 11  # trousers or skirt
    LEG_RIGHT = 12
    LEG_LEFT = 13
    SHOE_RIGHT = 14
    SHOE_LEFT = 15


def side_part(right: Part, side: int) -> Part:
    """The left-side twin of a right-side part for side +1 (Part values are paired)."""
    return right if side < 0 else Part(right + 1)


@dataclass
class Look:
    """The person's appearance: colours and styles that do not change the skeleton."""

    skin: np.ndarray
    hair_style: str
    hair_colour: np.ndarray
    long_hair_front: bool
    lower: str  # "pants" or "skirt"
    lower_colour: np.ndarray
    shoe_colour: np.ndarray
    light: float  # horizontal light gradient strength, signed


def sample_look(rng: np.random.Generator) -> Look:
    """A random appearance."""
    t = rng.uniform(0, len(SKIN_TONES) - 1)
    i = int(t)
    skin = SKIN_TONES[i] * (1 - (t - i)) + SKIN_TONES[min(i + 1, len(SKIN_TONES) - 1)] * (t - i)
    style = HAIR_STYLES[rng.integers(len(HAIR_STYLES))]
    lower = "pants" if rng.random() < 0.65 else "skirt"
    palette = [
        hsv_colour(0.6, rng.uniform(0.4, 0.7), rng.uniform(0.25, 0.6)),  # denim
        np.full(3, rng.uniform(0.05, 0.3), np.float32),  # black / grey
        hsv_colour(0.1, rng.uniform(0.2, 0.45), rng.uniform(0.5, 0.8)),  # khaki
        hsv_colour(rng.uniform(0, 1), rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.9)),
    ]
    return Look(
        skin=skin * rng.uniform(0.94, 1.04),
        hair_style=style,
        hair_colour=HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] * rng.uniform(0.85, 1.15),
        long_hair_front=style == "long" and rng.random() < 0.6,
        lower=lower,
        lower_colour=palette[rng.integers(len(palette))],
        shoe_colour=np.full(3, 0.95 if rng.random() < 0.3 else rng.uniform(0.05, 0.4), np.float32),
        light=float(rng.uniform(-0.25, 0.25)),
    )


class Canvas:
    """The three layers painted together: image, LIP labels, parts, plus a material map
    used for shading (skin, top, bottom, hair, shoes)."""

    def __init__(self, background: np.ndarray) -> None:
        self.image = background.astype(np.float32)
        shape = background.shape[:2]
        self.labels = np.zeros(shape, np.uint8)
        self.parts = np.zeros(shape, np.uint8)
        self.material = np.zeros(shape, np.uint8)

    def paint(
        self,
        mask: np.ndarray,
        colour: np.ndarray | None,
        label: int,
        part: Part,
        material: int,
        window: tuple[slice, slice] = (slice(None), slice(None)),
    ) -> None:
        """Paint boolean `mask` over `window` of the canvas (colour None keeps the image,
        for layers whose pixels are copied in separately)."""
        if colour is not None:
            self.image[window][mask] = colour
        self.labels[window][mask] = label
        self.parts[window][mask] = part
        self.material[window][mask] = material

    def polygon(
        self, points: np.ndarray, colour: np.ndarray, label: int, part: Part, material: int
    ) -> None:
        found = polygon_window(self.labels.shape, np.asarray(points, np.float64))
        if found is not None:
            window, mask = found
            self.paint(mask, colour, label, part, material, window)


SKIN, TOP, BOTTOM, HAIR_MAT, SHOES = 1, 2, 3, 4, 5


def render_person(
    rng: np.random.Generator, body: Body, look: Look, worn: WornGarment, background: np.ndarray
) -> Canvas:
    """Paint the dressed person over `background` `(H, W, 3)` float32 in [0, 1]."""
    canvas = Canvas(background)
    head = body.head
    _hair_behind(canvas, body, look, rng)
    _lower_body(canvas, body, look, rng)
    _neck_and_torso(canvas, body, look)
    # Upper arms go under the garment's body (its shoulders and sides cover them); forearms
    # and hands come in front of it, and each sleeve covers its own arm.
    for side in (-1, 1):
        arm = body.arms[side]
        canvas.polygon(
            capsule(arm.shoulder, arm.elbow, arm.radius_shoulder, arm.radius_elbow),
            look.skin,
            _arm_label(side),
            side_part(Part.ARM_RIGHT, side),
            SKIN,
        )
    top_mask = worn.panel > 0.5
    canvas.paint(top_mask, None, L.UPPER_CLOTHES, Part.PANEL, TOP)
    canvas.image[top_mask] = worn.albedo[top_mask]
    for side in sorted((-1, 1), key=lambda s: body.arms[s].in_front_of_torso):
        arm = body.arms[side]
        part = side_part(Part.ARM_RIGHT, side)
        for p0, p1, r0, r1 in (
            (arm.elbow, arm.wrist, arm.radius_elbow, arm.radius_wrist),
            (arm.wrist, arm.hand_tip, arm.radius_wrist * 1.15, arm.radius_wrist * 0.9),
        ):
            canvas.polygon(capsule(p0, p1, r0, r1), look.skin, _arm_label(side), part, SKIN)
        sleeve = worn.sleeves[side] > 0.5
        canvas.paint(sleeve, None, L.UPPER_CLOTHES, side_part(Part.SLEEVE_RIGHT, side), TOP)
        canvas.image[sleeve] = worn.albedo[sleeve]
    _head(canvas, body, look)
    if look.long_hair_front:
        for side in (-1, 1):
            if rng.random() < 0.75:
                hx, hy = body.head_center
                start = np.array([hx + side * body.head_size[0] * 0.85, hy])
                end = np.array(
                    [
                        hx + side * body.head_size[0] * rng.uniform(1.0, 1.3),
                        body.shoulder_y + head * rng.uniform(0.4, 1.3),
                    ]
                )
                canvas.polygon(
                    capsule(start, end, head * 0.2, head * 0.14),
                    look.hair_colour,
                    L.HAIR,
                    Part.HAIR,
                    HAIR_MAT,
                )
    _shade(canvas, body, look, rng)
    return canvas


def _arm_label(side: int) -> int:
    return L.RIGHT_ARM if side < 0 else L.LEFT_ARM


def _hair_behind(canvas: Canvas, body: Body, look: Look, rng: np.random.Generator) -> None:
    hx, hy = body.head_center
    hw, hh = body.head_size
    if look.hair_style == "long":
        bottom = body.shoulder_y + body.head * rng.uniform(0.2, 1.1)
        pts = np.vstack(
            [
                ellipse((hx, hy - hh * 0.1), hw * 1.2, hh * 1.05, start=np.pi, stop=2 * np.pi),
                [[hx + hw * 1.35, bottom], [hx - hw * 1.35, bottom]],
            ]
        )
        canvas.polygon(pts, look.hair_colour, L.HAIR, Part.HAIR, HAIR_MAT)
    elif look.hair_style == "bob":
        canvas.polygon(
            ellipse((hx, hy + hh * 0.1), hw * 1.22, hh * 1.12),
            look.hair_colour,
            L.HAIR,
            Part.HAIR,
            HAIR_MAT,
        )
    elif look.hair_style == "ponytail":
        side = 1 if body.turn < 0 else -1
        tail = np.array([hx + side * hw * 1.1, hy + hh * 1.6])
        canvas.polygon(
            capsule(np.array([hx + side * hw * 0.6, hy - hh * 0.3]), tail, hw * 0.35, hw * 0.18),
            look.hair_colour,
            L.HAIR,
            Part.HAIR,
            HAIR_MAT,
        )


def _lower_body(canvas: Canvas, body: Body, look: Look, rng: np.random.Generator) -> None:
    head = body.head
    legs = body.legs
    for side in (-1, 1):
        leg = legs[side]
        shoe = ellipse(
            leg.ankle + np.array([side * head * 0.05, head * 0.1]), head * 0.22, head * 0.12
        )
        canvas.polygon(
            shoe,
            look.shoe_colour,
            L.RIGHT_SHOE if side < 0 else L.LEFT_SHOE,
            side_part(Part.SHOE_RIGHT, side),
            SHOES,
        )
    waist_top = body.waist_y
    hips = body.hip_half_width
    if look.lower == "pants":
        for side in (-1, 1):
            leg = legs[side]
            outline = np.vstack(
                [
                    capsule(leg.hip, leg.knee, leg.radius_hip * 1.05, head * 0.26),
                    capsule(
                        leg.knee, leg.ankle - np.array([0, head * 0.05]), head * 0.26, head * 0.22
                    ),
                ]
            )
            canvas.polygon(
                cv2.convexHull(outline[:22].astype(np.float32)).reshape(-1, 2),
                look.lower_colour,
                L.PANTS,
                Part.LOWER,
                BOTTOM,
            )
            canvas.polygon(outline[22:], look.lower_colour, L.PANTS, Part.LOWER, BOTTOM)
        band = np.array(
            [
                [body.center_x - body.waist_half_width * 1.02, waist_top],
                [body.center_x + body.waist_half_width * 1.02, waist_top],
                [body.center_x + hips * 1.02, body.hip_y + head * 0.35],
                [body.center_x - hips * 1.02, body.hip_y + head * 0.35],
            ]
        )
        canvas.polygon(band, look.lower_colour, L.PANTS, Part.LOWER, BOTTOM)
        return
    for side in (-1, 1):
        leg = legs[side]
        canvas.polygon(
            capsule(leg.hip, leg.ankle, leg.radius_hip * 0.75, leg.radius_ankle),
            look.skin,
            L.RIGHT_LEG if side < 0 else L.LEFT_LEG,
            side_part(Part.LEG_RIGHT, side),
            SKIN,
        )
    hem_y = body.hip_y + head * rng.uniform(0.9, 2.4)
    flare = hips * 1.45
    skirt = np.array(
        [
            [body.center_x - body.waist_half_width, waist_top],
            [body.center_x + body.waist_half_width, waist_top],
            [body.center_x + hips * 1.05, body.hip_y],
            [body.center_x + flare, hem_y],
            [body.center_x - flare, hem_y],
            [body.center_x - hips * 1.05, body.hip_y],
        ]
    )
    canvas.polygon(skirt, look.lower_colour, L.SKIRT, Part.LOWER, BOTTOM)


def _neck_and_torso(canvas: Canvas, body: Body, look: Look) -> None:
    """Neck and torso skin; LIP has no neck label, so like VITON they stay background."""
    hx, hy = body.head_center
    neck_w = body.neck_half_width
    arms = body.arms
    neck = np.array(
        [
            [hx - neck_w, hy],
            [hx + neck_w, hy],
            [body.front_x + neck_w * 1.15, body.neck_base_y + body.head * 0.1],
            [body.front_x - neck_w * 1.15, body.neck_base_y + body.head * 0.1],
        ]
    )
    canvas.polygon(neck, look.skin * 0.93, L.BACKGROUND, Part.NECK, SKIN)
    chest_y = body.shoulder_y + body.head * 0.85
    torso = np.array(
        [
            [body.front_x - neck_w * 1.1, body.neck_base_y],
            [body.front_x + neck_w * 1.1, body.neck_base_y],
            arms[1].shoulder,
            [body.center_x + body.chest_half_width * 0.95, chest_y],
            [body.center_x + body.waist_half_width, body.waist_y],
            [body.center_x - body.waist_half_width, body.waist_y],
            [body.center_x - body.chest_half_width * 0.95, chest_y],
            arms[-1].shoulder,
        ]
    )
    canvas.polygon(torso, look.skin, L.BACKGROUND, Part.NECK, SKIN)


def _head(canvas: Canvas, body: Body, look: Look) -> None:
    hx, hy = body.head_center
    hw, hh = body.head_size
    for side in (-1, 1):
        ear = body.ear(side)
        canvas.polygon(
            ellipse(ear, hw * 0.17, hh * 0.2),
            look.skin * 0.95,
            L.FACE,
            side_part(Part.EAR_RIGHT, side),
            SKIN,
        )
    canvas.polygon(ellipse((hx, hy), hw, hh), look.skin, L.FACE, Part.FACE, SKIN)
    kp = body.keypoints()
    dark = np.array([0.12, 0.08, 0.06], np.float32)
    for eye in (kp[L.R_EYE], kp[L.L_EYE]):
        cv2.fillPoly(
            canvas.image, [np.int32(ellipse(eye, hw * 0.2, hh * 0.08))], (0.95, 0.95, 0.93)
        )
        cv2.circle(
            canvas.image,
            tuple(np.int32(eye)),
            max(2, int(hh * 0.07)),
            tuple(float(c) for c in dark),
            -1,
        )
        brow = ellipse(eye - np.array([0, hh * 0.17]), hw * 0.22, hh * 0.035)
        cv2.fillPoly(
            canvas.image, [np.int32(brow)], tuple(float(c) for c in look.hair_colour * 0.8)
        )
    nose = kp[L.NOSE]
    cv2.fillPoly(
        canvas.image,
        [np.int32(ellipse(nose, hw * 0.12, hh * 0.07))],
        tuple(float(c) for c in look.skin * 0.82),
    )
    mouth = nose + np.array([0, hh * 0.32])
    lips = look.skin * np.array([0.8, 0.55, 0.55], np.float32)
    cv2.fillPoly(
        canvas.image,
        [np.int32(ellipse(mouth, hw * 0.26, hh * 0.06))],
        tuple(float(c) for c in lips),
    )
    style = look.hair_style
    if style == "buzz":
        cap = ellipse(
            (hx, hy - hh * 0.08), hw * 1.03, hh * 0.97, start=np.pi * 1.05, stop=np.pi * 1.95
        )
    else:
        cap = np.vstack(
            [
                ellipse(
                    (hx, hy - hh * 0.12), hw * 1.1, hh * 1.0, start=np.pi * 0.95, stop=np.pi * 2.05
                ),
                [[hx + hw * 0.7, hy - hh * 0.45], [hx - hw * 0.5, hy - hh * 0.5]],
            ]
        )
    canvas.polygon(cap, look.hair_colour, L.HAIR, Part.HAIR, HAIR_MAT)
    if style == "bun":
        canvas.polygon(
            ellipse((hx, hy - hh * 1.05), hw * 0.45, hh * 0.35),
            look.hair_colour,
            L.HAIR,
            Part.HAIR,
            HAIR_MAT,
        )


def _shade(canvas: Canvas, body: Body, look: Look, rng: np.random.Generator) -> None:
    """Round shapes, cloth folds, hair strands and the light's direction."""
    head = body.head
    shape = canvas.labels.shape
    shading = np.ones(shape, np.float32)
    for material, radius, depth in (
        (SKIN, 0.12, 0.3),
        (TOP, 0.25, 0.28),
        (BOTTOM, 0.2, 0.3),
        (HAIR_MAT, 0.15, 0.35),
        (SHOES, 0.08, 0.3),
    ):
        mask = (canvas.material == material).astype(np.float32)
        if mask.any():
            shading = np.where(
                mask > 0, shading * soft_shading(mask, head * radius, depth), shading
            )
    # Folds: noise stretched along the body's vertical axis, strongest on the garment.
    folds = cv2.resize(smooth_noise(rng, (shape[0] // 6, shape[1] // 2), cell=8), shape[::-1])
    fold_strength = np.where(
        canvas.material == TOP, 0.16, np.where(canvas.material == BOTTOM, 0.1, 0.0)
    )
    shading *= 1 + fold_strength * folds
    strands = cv2.resize(smooth_noise(rng, (shape[0] // 4, shape[1] * 2), cell=2), shape[::-1])
    shading *= np.where(canvas.material == HAIR_MAT, 1 + 0.25 * strands, 1.0)
    light = 1 + look.light * np.linspace(-1, 1, shape[1], dtype=np.float32)[None, :]
    person = canvas.material > 0
    shading = np.where(person, shading * light, 1 + 0.4 * (light - 1))
    canvas.image = np.clip(canvas.image * shading[..., None], 0, 1)
