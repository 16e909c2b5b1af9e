"""Synthetic tops: random designs, their flat layout, textures and product photos.

A garment lives in *garment units*: the chest half-width is 1, x grows to the image right,
y grows down from the shoulder line at the neck. The product photo places the garment on
the render canvas at `scale` pixels per unit with the unit origin at `origin`; the worn
garment is the same albedo image pulled onto the body (see `dressing.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tryon.data.synth.drawing import fill_polygon, hsv_colour, smooth_blur, smooth_noise

SLEEVES = ("none", "short", "long")
NECKS = ("crew", "v")
FITS = ("fitted", "loose")
PATTERNS = ("solid", "stripes", "checks", "dots", "gradient", "graphic", "text")
PATTERN_WEIGHTS = (0.16, 0.2, 0.12, 0.12, 0.1, 0.12, 0.18)
LOGO_WORDS = (
    "TRYON",
    "SALE",
    "NYC",
    "LOVE",
    "2026",
    "ACME",
    "SURF",
    "MODA",
    "BERLIN",
    "OK!",
    "HELLO",
    "TOKYO",
    "WAVE",
    "99",
    "BASIC",
    "CLUB",
)


@dataclass
class GarmentDesign:
    """Everything random about one top, in garment units."""

    sleeve: str
    neck: str
    fit: str
    pattern: str
    length: float  # shoulder line to hem
    neck_half_width: float
    neck_depth: float
    shoulder_x: float
    armpit_x: float
    waist_x: float
    hem_x: float
    sleeve_angle: float  # radians from straight down, in the flat layout
    sleeve_length: float
    cuff_half_width: float
    base_colour: np.ndarray  # RGB in [0, 1]
    accent_colour: np.ndarray
    pattern_seed: int
    logo: str

    @property
    def shoulder_y(self) -> float:
        return 0.18

    @property
    def armpit_y(self) -> float:
        return 0.9

    def sleeve_root(self, side: int) -> tuple[np.ndarray, np.ndarray]:
        """The armhole's top (shoulder) and bottom (armpit) points on `side` (-1 image left)."""
        return (
            np.array([side * self.shoulder_x, self.shoulder_y]),
            np.array([side * self.armpit_x, self.armpit_y]),
        )

    def sleeve_point(self, side: int, s: float, t: float) -> np.ndarray:
        """A point of the flat sleeve: `s` 0 at the armhole .. 1 at the cuff, `t` -1 at the
        top (outer) edge .. +1 at the underarm edge."""
        top, under = self.sleeve_root(side)
        direction = np.array([side * np.sin(self.sleeve_angle), np.cos(self.sleeve_angle)])
        normal = np.array([direction[1], -direction[0]]) * -side  # outer -> under edge
        cuff_center = (top + under) / 2 + direction * self.sleeve_length
        root = top + (under - top) * (t + 1) / 2
        cuff = cuff_center + normal * t * self.cuff_half_width
        return root + (cuff - root) * s

    def panel_outline(self) -> np.ndarray:
        """The body panel `(N, 2)` clockwise from the neck's image-left point, neckline last."""
        pts: list[tuple[float, float]] = []
        for side in (-1, 1):
            half: list[tuple[float, float]] = [
                (self.neck_half_width, 0.0),
                (self.shoulder_x, self.shoulder_y),
            ]
            if self.sleeve == "none":
                # Armhole curving inward between shoulder strap and armpit.
                for a in np.linspace(0.15, 0.85, 4):
                    depth = np.sin(a * np.pi) * 0.12
                    half.append(
                        (
                            self.shoulder_x + (self.armpit_x - self.shoulder_x) * a - depth,
                            self.shoulder_y + (self.armpit_y - self.shoulder_y) * a,
                        )
                    )
            half += [(self.armpit_x, self.armpit_y), (self.waist_x, 1.6), (self.hem_x, self.length)]
            ordered = half if side == -1 else half[::-1]
            pts.extend((side * x, y) for x, y in ordered)
            if side == -1:
                # Slightly curved hem between the two sides.
                pts.extend(
                    (x * self.hem_x, self.length + 0.04 * (1 - x * x)) for x in (-0.5, 0, 0.5)
                )
        pts.extend(self.front_neckline()[::-1])
        return np.array(pts)

    def front_neckline(self) -> list[tuple[float, float]]:
        """The neck opening's front edge from the image-left neck point to the right one."""
        if self.neck == "v":
            return [
                (-self.neck_half_width, 0.0),
                (0.0, self.neck_depth),
                (self.neck_half_width, 0.0),
            ]
        angles = np.linspace(np.pi, 0, 9)
        return [(self.neck_half_width * np.cos(a), self.neck_depth * np.sin(a)) for a in angles]

    def collar_inner(self) -> np.ndarray:
        """The inside of the garment's back, seen through the neck opening on a flat lay."""
        back = [
            (self.neck_half_width * np.cos(a), -0.06 * np.sin(a)) for a in np.linspace(np.pi, 0, 7)
        ]
        return np.array(back + self.front_neckline()[::-1])

    def sleeve_outline(self, side: int) -> np.ndarray:
        """The flat sleeve polygon `(8, 2)` on `side`."""
        edge = [self.sleeve_point(side, s, -1) for s in (0, 0.5, 1)]
        under = [self.sleeve_point(side, s, 1) for s in (1, 0.5, 0)]
        cuff_mid = self.sleeve_point(side, 1.02, 0)
        return np.array(edge + [cuff_mid] + under)


def sample_design(rng: np.random.Generator) -> GarmentDesign:
    """A random top."""
    sleeve = SLEEVES[rng.choice(3, p=(0.25, 0.45, 0.3))]
    neck = NECKS[rng.choice(2, p=(0.62, 0.38))]
    fit = FITS[rng.integers(2)]
    loose = fit == "loose"
    armpit_x = rng.uniform(1.06, 1.16) if loose else rng.uniform(0.96, 1.02)
    if sleeve == "short":
        angle, length = rng.uniform(0.85, 1.15), rng.uniform(0.55, 0.9)
        cuff = rng.uniform(0.34, 0.42) * (1.12 if loose else 1.0)
    elif sleeve == "long":
        angle, length = rng.uniform(0.3, 0.55), rng.uniform(2.1, 2.45)
        cuff = rng.uniform(0.2, 0.27) * (1.1 if loose else 1.0)
    else:
        angle, length, cuff = 0.0, 0.0, 0.0
    base = _garment_colour(rng)
    accent = _garment_colour(rng)
    if np.abs(base - accent).sum() < 0.5:
        accent = 1.0 - base * 0.8
    return GarmentDesign(
        sleeve=sleeve,
        neck=neck,
        fit=fit,
        pattern=PATTERNS[rng.choice(len(PATTERNS), p=PATTERN_WEIGHTS)],
        length=rng.uniform(2.3, 2.85),
        neck_half_width=rng.uniform(0.3, 0.4),
        neck_depth=rng.uniform(0.6, 0.9) if neck == "v" else rng.uniform(0.16, 0.28),
        shoulder_x=rng.uniform(0.72, 0.84) if sleeve == "none" else rng.uniform(1.05, 1.14),
        armpit_x=armpit_x,
        waist_x=armpit_x if loose else rng.uniform(0.86, 0.94),
        hem_x=rng.uniform(1.08, 1.18) if loose else rng.uniform(0.94, 1.02),
        sleeve_angle=angle,
        sleeve_length=length,
        cuff_half_width=cuff,
        base_colour=base,
        accent_colour=accent,
        pattern_seed=int(rng.integers(2**31)),
        logo=LOGO_WORDS[rng.integers(len(LOGO_WORDS))],
    )


def _garment_colour(rng: np.random.Generator) -> np.ndarray:
    kind = rng.random()
    if kind < 0.1:
        return np.full(3, rng.uniform(0.9, 0.98))  # white and off-white
    if kind < 0.2:
        return np.full(3, rng.uniform(0.08, 0.25))  # black and charcoal
    return hsv_colour(rng.uniform(0, 1), rng.uniform(0.25, 0.9), rng.uniform(0.3, 0.95))


@dataclass
class GarmentLayout:
    """A design placed on a canvas: `scale` pixels per garment unit, unit origin at `origin`."""

    design: GarmentDesign
    scale: float
    origin: np.ndarray

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        """Garment units `(N, 2)` -> canvas pixels `(N, 2)`."""
        return np.asarray(points) * self.scale + self.origin


def place_on_canvas(
    design: GarmentDesign, canvas: tuple[int, int], rng: np.random.Generator
) -> GarmentLayout:
    """Centre the flat garment on a product-photo canvas with a margin."""
    height, width = canvas
    outline = np.vstack(
        [design.panel_outline()]
        + [design.sleeve_outline(s) for s in (-1, 1) if design.sleeve != "none"]
    )
    lo, hi = outline.min(0), outline.max(0)
    span = hi - lo
    scale = min(width * 0.86 / span[0], height * 0.86 / span[1]) * rng.uniform(0.86, 1.0)
    center = np.array([width / 2, height / 2]) + rng.uniform(-0.03, 0.03, 2) * [width, height]
    origin = center - (lo + hi) / 2 * scale
    return GarmentLayout(design=design, scale=scale, origin=origin)


def part_masks(layout: GarmentLayout, canvas: tuple[int, int]) -> dict[str, np.ndarray]:
    """Binary uint8 masks `(H, W)` of the panel, each sleeve and the inner collar."""
    design = layout.design
    masks = {
        "panel": fill_polygon(canvas, layout.to_pixels(design.panel_outline())),
        "collar": fill_polygon(canvas, layout.to_pixels(design.collar_inner())),
    }
    for side in (-1, 1):
        if design.sleeve == "none":
            masks[f"sleeve{side}"] = np.zeros(canvas, np.uint8)
        else:
            masks[f"sleeve{side}"] = fill_polygon(
                canvas, layout.to_pixels(design.sleeve_outline(side))
            )
    return masks


def render_albedo(layout: GarmentLayout, canvas: tuple[int, int]) -> np.ndarray:
    """The garment's flat colour `(H, W, 3)` float32 in [0, 1], defined on the whole canvas
    (the masks cut it out), so warping never pulls in background at the edges."""
    design = layout.design
    rng = np.random.default_rng(design.pattern_seed)
    height, width = canvas
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    u = (xs - layout.origin[0]) / layout.scale
    v = (ys - layout.origin[1]) / layout.scale
    base, accent = design.base_colour.astype(np.float32), design.accent_colour.astype(np.float32)
    pattern = design.pattern
    if pattern == "stripes":
        weight = _stripes(u, v, rng)
    elif pattern == "checks":
        weight = 0.5 * _stripes(u, v, rng, angle=0.0) + 0.5 * _stripes(u, v, rng, angle=np.pi / 2)
    elif pattern == "dots":
        weight = _dots(u, v, rng)
    elif pattern == "gradient":
        angle = rng.uniform(0, np.pi)
        weight = np.clip((u * np.cos(angle) + v * np.sin(angle)) / 3.0 + 0.5, 0, 1)
    else:
        weight = np.zeros_like(u)
    albedo = base * (1 - weight[..., None]) + accent * weight[..., None]
    # Woven texture: faint fine-grained variation so flat colours are not perfectly flat.
    albedo *= 1 + 0.03 * smooth_noise(rng, canvas, cell=3)[..., None]
    if pattern == "graphic":
        _draw_graphic(albedo, layout, rng)
    if pattern == "text" or (pattern in ("stripes", "gradient") and rng.random() < 0.25):
        _draw_logo(albedo, layout, rng)
    return np.clip(albedo, 0, 1)


def _stripes(
    u: np.ndarray, v: np.ndarray, rng: np.random.Generator, angle: float | None = None
) -> np.ndarray:
    if angle is None:
        angle = float(rng.choice([0.0, np.pi / 2, np.pi / 4, -np.pi / 4, rng.uniform(0, np.pi)]))
    period = rng.uniform(0.14, 0.45)
    duty = rng.uniform(0.3, 0.6)
    phase = (u * np.sin(angle) + v * np.cos(angle)) / period % 1.0
    return (phase < duty).astype(np.float32)


def _dots(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    spacing = rng.uniform(0.18, 0.4)
    radius = spacing * rng.uniform(0.15, 0.32)
    row = np.floor(v / spacing)
    du = (u / spacing + 0.5 * (row % 2)) % 1.0 - 0.5
    dv = (v / spacing) % 1.0 - 0.5
    return ((du**2 + dv**2) < (radius / spacing) ** 2).astype(np.float32)


def _draw_graphic(albedo: np.ndarray, layout: GarmentLayout, rng: np.random.Generator) -> None:
    """Print two to four coloured shapes on the chest."""
    k = layout.scale
    for _ in range(rng.integers(2, 5)):
        colour = tuple(
            float(c)
            for c in hsv_colour(rng.uniform(0, 1), rng.uniform(0.5, 1), rng.uniform(0.4, 1))
        )
        center = layout.to_pixels(np.array([rng.uniform(-0.45, 0.45), rng.uniform(0.75, 1.45)]))
        size = k * rng.uniform(0.15, 0.35)
        kind = rng.integers(3)
        if kind == 0:
            cv2.circle(albedo, tuple(int(c) for c in center), int(size), colour, -1, cv2.LINE_AA)
        else:
            n = 3 if kind == 1 else 10
            angles = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, np.pi)
            radii = (
                np.full(n, size)
                if kind == 1
                else np.where(np.arange(n) % 2 == 0, size, size * 0.45)
            )
            pts = center + np.stack([np.cos(angles) * radii, np.sin(angles) * radii], 1)
            cv2.fillPoly(albedo, [np.round(pts).astype(np.int32)], colour, cv2.LINE_AA)


def _draw_logo(albedo: np.ndarray, layout: GarmentLayout, rng: np.random.Generator) -> None:
    """Print the design's word across the chest, large enough to read after the warp."""
    design = layout.design
    font = (cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_TRIPLEX)[
        rng.integers(3)
    ]
    target_width = layout.scale * rng.uniform(0.9, 1.35)
    (w, h), _ = cv2.getTextSize(design.logo, font, 1.0, 2)
    font_scale = target_width / w
    thickness = max(2, int(round(font_scale * 2.2)))
    (w, h), _ = cv2.getTextSize(design.logo, font, font_scale, thickness)
    luminance = float(design.base_colour @ np.array([0.3, 0.59, 0.11]))
    ink = (0.05, 0.05, 0.08) if luminance > 0.55 else (0.97, 0.97, 0.95)
    if rng.random() < 0.4:
        ink = tuple(float(c) for c in design.accent_colour)
    center = layout.to_pixels(np.array([0.0, rng.uniform(0.95, 1.25)]))
    origin = (int(center[0] - w / 2), int(center[1] + h / 2))
    glyphs = np.zeros(albedo.shape[:2], np.uint8)  # putText draws on 8-bit images only
    cv2.putText(glyphs, design.logo, origin, font, font_scale, 255, thickness, cv2.LINE_AA)
    alpha = glyphs.astype(np.float32)[..., None] / 255
    albedo[:] = albedo * (1 - alpha) + np.asarray(ink, np.float32) * alpha


@dataclass
class FlatGarment:
    """A garment as the catalog has it, on the render canvas.

    photo: `(H, W, 3)` float32 in [0, 1], the product photo.
    mask: `(H, W)` float32 in {0, 1}, the whole garment (the collar's inside included).
    albedo: `(H, W, 3)` float32, the flat colour everywhere (what dressing warps).
    parts: part name -> uint8 `(H, W)` mask (see `part_masks`).
    """

    layout: GarmentLayout
    photo: np.ndarray
    mask: np.ndarray
    albedo: np.ndarray
    parts: dict[str, np.ndarray]


def make_garment(rng: np.random.Generator, canvas: tuple[int, int]) -> FlatGarment:
    """A random top and its catalog photo: white or light grey with a soft shadow."""
    layout = place_on_canvas(sample_design(rng), canvas, rng)
    masks = part_masks(layout, canvas)
    mask = np.maximum.reduce(list(masks.values())).astype(np.float32)
    albedo = render_albedo(layout, canvas)
    flat = albedo.copy()
    collar = masks["collar"].astype(bool) & ~masks["panel"].astype(bool)
    flat[collar] *= 0.72  # the inside of the back is in shade
    height, width = canvas
    background = rng.uniform(0.9, 1.0) if rng.random() < 0.6 else rng.uniform(0.86, 0.93)
    bg = np.full((height, width, 3), background, np.float32)
    bg *= 1 - 0.03 * np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    blur = layout.scale * rng.uniform(0.08, 0.16)
    offset = np.float32(
        [
            [1, 0, layout.scale * rng.uniform(-0.04, 0.06)],
            [0, 1, layout.scale * rng.uniform(0.02, 0.08)],
        ]
    )
    shadow = cv2.warpAffine(mask, offset, (width, height))
    shadow = smooth_blur(shadow, blur) * rng.uniform(0.12, 0.28)
    bg *= 1 - shadow[..., None]
    relief = smooth_blur(mask, layout.scale * 0.05)
    shade = 0.93 + 0.07 * relief + 0.025 * smooth_noise(rng, canvas, cell=int(layout.scale * 0.3))
    photo = bg * (1 - mask[..., None]) + flat * shade[..., None] * mask[..., None]
    return FlatGarment(layout=layout, photo=photo, mask=mask, albedo=albedo, parts=masks)
