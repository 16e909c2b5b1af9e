"""Putting a flat garment on a body: landmark correspondences and the backward warps.

The panel follows the torso (neck, shoulders, armpits, waist, hem); each sleeve follows its
arm's polyline (shoulder -> elbow -> wrist), so sleeves bend with the arm. Each part gets
its own smooth thin-plate spline from body landmarks to garment landmarks, and a body-space
region that limits where the part may land.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tryon.data.synth.drawing import fill_polygon
from tryon.data.synth.garment import GarmentDesign, GarmentLayout
from tryon.data.synth.pose import Arm, Body
from tryon.data.synth.tps import backward_map


@dataclass
class WornGarment:
    """The garment on the body, on the person's render canvas.

    albedo: `(H, W, 3)` float32 flat colour pulled from the garment; valid where masks are.
    panel: `(H, W)` float32 in [0, 1], the body panel.
    sleeves: side (-1 image left, +1 image right) -> `(H, W)` float32 sleeve mask.
    """

    albedo: np.ndarray
    panel: np.ndarray
    sleeves: dict[int, np.ndarray]


def _frame_point(body: Body, design: GarmentDesign, u: float, v: float) -> np.ndarray:
    """Where garment point (u, v) of the torso lands, by the torso's width profile."""
    scale_y = (body.hip_y - body.neck_base_y) / 2.35
    chest = body.chest_half_width
    if design.fit == "fitted":
        ratio = np.interp(
            v, [0.9, 1.6, 2.35], [1.0, body.waist_half_width / chest, body.hip_half_width / chest]
        )
    else:
        ratio = np.interp(v, [0.9, 2.35], [1.0, max(1.0, body.hip_half_width / chest)])
    # The far side of a turned torso is foreshortened more than the near side.
    asym = 1 - 0.3 * np.sign(u) * np.sin(body.turn)
    center = body.front_x + (body.center_x - body.front_x) * np.clip(v / 2.5, 0, 1) * 0.5
    return np.array([center + u * chest * ratio * asym, body.neck_base_y + v * scale_y])


def torso_landmarks(
    body: Body, design: GarmentDesign, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Matching landmarks of the panel.

    Returns:
        garment: `(N, 2)` garment units; body: `(N, 2)` render pixels;
        armholes: side -> (shoulder corner, armpit) on the body, where the sleeves attach.
    """
    armholes: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    garment: list[tuple[float, float]] = []
    placed: list[np.ndarray] = []
    neck_w = max(body.neck_half_width * 1.3, design.neck_half_width * body.chest_half_width * 0.85)
    scale_y = (body.hip_y - body.neck_base_y) / 2.35
    for side in (-1, 1):
        arm = body.arms[side]
        neck_point = np.array([body.front_x + side * neck_w, body.neck_base_y])
        garment.append((side * design.neck_half_width, 0.0))
        placed.append(neck_point)
        garment.append((side * design.shoulder_x, design.shoulder_y))
        placed.append(garment_shoulder(body, design, arm, neck_point))
        armholes[side] = (
            placed[-1],
            _frame_point(body, design, side * design.armpit_x, design.armpit_y),
        )
        for u_frac, v in (
            (1.0, design.armpit_y),
            (1.0, 1.6),
            (1.0, design.length),
            (0.5, design.armpit_y),
            (0.5, design.length),
        ):
            u = {
                design.armpit_y: design.armpit_x,
                1.6: design.waist_x,
                design.length: design.hem_x,
            }[v] * u_frac
            garment.append((side * u, v))
            placed.append(_frame_point(body, design, side * u, v))
    garment.append((0.0, design.neck_depth))
    placed.append(np.array([body.front_x, body.neck_base_y + design.neck_depth * scale_y]))
    for v in (design.armpit_y + 0.3, 1.6, design.length):
        garment.append((0.0, v))
        placed.append(_frame_point(body, design, 0.0, v))
    placed_arr = np.array(placed)
    # Drape: small random displacements of the interior landmarks make folds in the print.
    interior = np.array([abs(u) < 0.9 * design.armpit_x and v > 0.5 for u, v in garment])
    placed_arr[interior] += rng.normal(0, body.chest_half_width * 0.025, (interior.sum(), 2))
    return np.array(garment), placed_arr, armholes


def garment_shoulder(
    body: Body, design: GarmentDesign, arm: Arm, neck_point: np.ndarray
) -> np.ndarray:
    """The garment's shoulder corner on the body: at the shoulder for sleeved tops, part
    way along the shoulder line for straps."""
    if design.sleeve == "none":
        reach = (design.shoulder_x - design.neck_half_width) / (1.08 - design.neck_half_width)
        point = neck_point + (arm.shoulder - neck_point) * reach
        return point - np.array([0.0, arm.radius_shoulder * 0.5])
    # Above the shoulder's round top, so the garment covers it.
    outward = np.array([arm.side * 0.6, -1.0]) / np.hypot(1, 0.6)
    return arm.shoulder + outward * arm.radius_shoulder * 1.05


def _arm_polyline(arm: Arm, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points `(N, 2)` and unit directions `(N, 2)` along shoulder -> elbow -> wrist at
    arc lengths `lengths` `(N,)` from the shoulder (clamped at the wrist)."""
    upper = np.linalg.norm(arm.elbow - arm.shoulder)
    fore = np.linalg.norm(arm.wrist - arm.elbow)
    arc = np.minimum(lengths, upper + fore)
    d_up = (arm.elbow - arm.shoulder) / max(upper, 1e-3)
    d_fore = (arm.wrist - arm.elbow) / max(fore, 1e-3)
    on_upper = (arc <= upper)[:, None]
    points = np.where(
        on_upper, arm.shoulder + d_up * arc[:, None], arm.elbow + d_fore * (arc - upper)[:, None]
    )
    dirs = np.where(on_upper, d_up, d_fore)
    return points, dirs


def arm_radius(arm: Arm, length: np.ndarray) -> np.ndarray:
    upper = np.linalg.norm(arm.elbow - arm.shoulder)
    fore = np.linalg.norm(arm.wrist - arm.elbow)
    return np.interp(
        length, [0, upper, upper + fore], [arm.radius_shoulder, arm.radius_elbow, arm.radius_wrist]
    )


@dataclass
class SleevePiece:
    """One rigid-ish piece of a sleeve: the upper sleeve or the forearm sleeve.

    garment: `(N, 2)` landmarks in garment units; body: `(N, 2)` the same on the body.
    region: `(M, 2)` body polygon the piece must stay inside.
    span: (s_start, s_end), the piece's stretch of the flat sleeve (0 armhole .. 1 cuff).
    """

    garment: np.ndarray
    body: np.ndarray
    region: np.ndarray
    span: tuple[float, float]


def sleeve_pieces(
    body: Body,
    design: GarmentDesign,
    side: int,
    top: np.ndarray,
    under: np.ndarray,
    rng: np.random.Generator,
) -> list[SleevePiece]:
    """How a sleeve lies on its arm: one piece for short sleeves, two (split at the
    elbow) for long ones, so a bent elbow bends the sleeve instead of tearing it."""
    arm = body.arms[side]
    upper = np.linalg.norm(arm.elbow - arm.shoulder)
    fore = np.linalg.norm(arm.wrist - arm.elbow)
    # The armhole seam runs from the shoulder's top down the arm's inner edge to the
    # armpit; the sleeve's first full ring sits `root_length` down the arm.
    root_length = upper * rng.uniform(0.35, 0.5)
    if design.sleeve == "short":
        extent = design.sleeve_length * body.chest_half_width * rng.uniform(0.45, 0.65)
        cuff_length = float(np.clip(root_length + extent, root_length + 0.15 * upper, 0.95 * upper))
        s_values = np.array([0.0, 0.2, 0.6, 1.0])
        rows_per_piece = [(0, 1, 2, 3)]
    else:
        cuff_length = (upper + fore) * rng.uniform(0.93, 0.99)
        s_elbow = 0.12 + (upper - root_length) / (cuff_length - root_length) * 0.88
        s_values = np.array([0.0, 0.12, s_elbow, (1 + s_elbow) / 2, 1.0])
        rows_per_piece = [(0, 1, 2), (2, 3, 4)]
    s_first = s_values[1]
    lengths = root_length + (cuff_length - root_length) * (s_values - s_first) / (1 - s_first)
    ease = 1.38 if design.fit == "loose" else 1.2
    centers, dirs = _arm_polyline(arm, lengths)
    half = arm_radius(arm, lengths) * ease
    offset = under - arm.shoulder  # the torso's armpit tells which side of the arm is inner
    sense = np.sign(dirs[0, 0] * offset[1] - dirs[0, 1] * offset[0]) or 1.0
    normals = sense * np.stack([-dirs[:, 1], dirs[:, 0]], 1)
    seam_end = arm.shoulder + dirs[0] * root_length * 0.8 + normals[0] * half[1] * 0.95

    def body_point(row: int, t: float) -> np.ndarray:
        if row == 0:  # the armhole seam, widened along the first ring's normal beyond |t| = 1
            inside = float(np.clip(t, -1, 1))
            return top + (seam_end - top) * (inside + 1) / 2 + normals[0] * (t - inside) * half[1]
        return centers[row] + normals[row] * t * half[row]

    pieces = []
    for rows in rows_per_piece:
        garment = [
            design.sleeve_point(side, s_values[r], t) for r in rows for t in (-1.0, 0.0, 1.0)
        ]
        placed = [body_point(r, t) for r in rows for t in (-1.0, 0.0, 1.0)]
        region = [body_point(r, -1.35) for r in rows]
        if rows[-1] == len(s_values) - 1:
            region.append(centers[-1] + dirs[-1] * half[-1] * 0.6)
        region += [body_point(r, 1.35) for r in reversed(rows)]
        pieces.append(
            SleevePiece(
                garment=np.array(garment),
                body=np.array(placed),
                region=np.array(region),
                span=(float(s_values[rows[0]]), float(s_values[rows[-1]])),
            )
        )
    return pieces


def _sleeve_band(design: GarmentDesign, side: int, span: tuple[float, float]) -> np.ndarray:
    """Flat-sleeve polygon (garment units) covering `span` of s, generous across t."""
    start = span[0] - 0.02 if span[0] > 0 else -0.3
    stop = span[1] + 0.02 if span[1] < 1 else 1.2
    s = np.linspace(start, stop, 6)
    return np.array(
        [design.sleeve_point(side, v, -1.6) for v in s]
        + [design.sleeve_point(side, v, 1.6) for v in s[::-1]]
    )


def dress(
    body: Body,
    layout: GarmentLayout,
    albedo: np.ndarray,
    masks: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> WornGarment:
    """Pull the flat garment onto `body`: one backward TPS warp per garment part."""
    design = layout.design
    canvas = body.canvas
    garment_pts, body_pts, armholes = torso_landmarks(body, design, rng)
    center = body_pts.mean(0)
    panel_region = center + (_hull(body_pts) - center) * 1.25
    worn_albedo = np.zeros((*canvas, 3), np.float32)
    panel = _warp_part(
        layout, albedo, masks["panel"], garment_pts, body_pts, panel_region, worn_albedo
    )
    sleeves: dict[int, np.ndarray] = {}
    for side in (-1, 1):
        sleeves[side] = np.zeros(canvas, np.float32)
        if design.sleeve == "none":
            continue
        top, under = armholes[side]
        flat_sleeve = masks[f"sleeve{side}"]
        for piece in sleeve_pieces(body, design, side, top, under, rng):
            band = fill_polygon(
                flat_sleeve.shape, layout.to_pixels(_sleeve_band(design, side, piece.span))
            )
            mask = _warp_part(
                layout,
                albedo,
                flat_sleeve & band,
                piece.garment,
                piece.body,
                piece.region,
                worn_albedo,
            )
            sleeves[side] = np.maximum(sleeves[side], mask)
    return WornGarment(albedo=worn_albedo, panel=panel, sleeves=sleeves)


def _warp_part(
    layout: GarmentLayout,
    albedo: np.ndarray,
    part_mask: np.ndarray,
    garment_pts: np.ndarray,
    body_pts: np.ndarray,
    region: np.ndarray,
    worn_albedo: np.ndarray,
) -> np.ndarray:
    """Warp one garment part onto the body inside `region` (a body polygon); write its
    colours into `worn_albedo` where it lands and return its `(H, W)` float32 mask."""
    height, width = worn_albedo.shape[:2]
    x0, y0 = np.maximum(np.floor(region.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(region.max(0)).astype(int) + 1, (width, height))
    mask = np.zeros((height, width), np.float32)
    if x0 >= x1 or y0 >= y1:
        return mask
    map_x, map_y = backward_map(
        body_pts,
        layout.to_pixels(garment_pts),
        (y1 - y0, x1 - x0),
        origin=(int(x0), int(y0)),
        unit=float(max(height, width)),
    )
    window = (slice(y0, y1), slice(x0, x1))
    local = cv2.remap(part_mask.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR)
    local *= fill_polygon((height, width), region)[window]
    colours = cv2.remap(albedo, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    covered = local > 0
    worn_albedo[window][covered] = colours[covered]
    mask[window] = local
    return mask


def _hull(points: np.ndarray) -> np.ndarray:
    return cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)
