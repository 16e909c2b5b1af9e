"""Backgrounds and camera effects for synthetic shopper photos."""

from __future__ import annotations

import cv2
import numpy as np

from tryon.data.synth.drawing import hsv_colour, smooth_noise

BACKGROUNDS = ("plain", "gradient", "texture", "indoor")


def render_background(rng: np.random.Generator, canvas: tuple[int, int]) -> np.ndarray:
    """A background `(H, W, 3)` float32 in [0, 1]: plain, gradient, texture or a room."""
    kind = BACKGROUNDS[rng.choice(4, p=(0.25, 0.25, 0.2, 0.3))]
    height, width = canvas
    base = hsv_colour(rng.uniform(0, 1), rng.uniform(0, 0.35), rng.uniform(0.35, 0.97))
    if kind == "plain":
        return np.broadcast_to(base, (height, width, 3)).copy()
    if kind == "gradient":
        other = hsv_colour(rng.uniform(0, 1), rng.uniform(0, 0.4), rng.uniform(0.3, 1.0))
        angle = rng.uniform(0, 2 * np.pi)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        t = (xs / width - 0.5) * np.cos(angle) + (ys / height - 0.5) * np.sin(angle) + 0.5
        t = np.clip(t, 0, 1)[..., None]
        return base * (1 - t) + other * t
    if kind == "texture":
        grain = smooth_noise(rng, canvas, cell=int(rng.integers(3, 12)))
        if rng.random() < 0.5:  # streaks, like wood or brushed plaster
            grain = cv2.GaussianBlur(grain, (0, 0), sigmaX=float(rng.uniform(8, 30)), sigmaY=1.0)
            grain /= max(float(np.abs(grain).max()), 1e-3)
        coarse = smooth_noise(rng, canvas, cell=int(height / 4))
        shade = 1 + 0.12 * grain + 0.08 * coarse
        return np.clip(base * shade[..., None], 0, 1)
    return _room(rng, canvas, base)


def _room(rng: np.random.Generator, canvas: tuple[int, int], wall: np.ndarray) -> np.ndarray:
    """A wall with a floor, a window or door, framed pictures and a plant."""
    height, width = canvas
    image = np.broadcast_to(wall, (height, width, 3)).copy()
    floor_y = int(height * rng.uniform(0.62, 0.9))
    floor = hsv_colour(rng.uniform(0.05, 0.12), rng.uniform(0.2, 0.6), rng.uniform(0.25, 0.7))
    image[floor_y:] = floor
    image[floor_y : floor_y + max(2, height // 80)] *= 0.7  # skirting board shadow
    for _ in range(rng.integers(1, 4)):
        w, h = int(width * rng.uniform(0.12, 0.4)), int(height * rng.uniform(0.12, 0.45))
        x, y = int(rng.uniform(-0.1, 0.95) * width), int(rng.uniform(0.02, 0.5) * height)
        kind = rng.integers(3)
        if kind == 0:  # window: bright pane with bars
            cv2.rectangle(image, (x, y), (x + w, y + h), (0.95, 0.97, 1.0), -1)
            cv2.rectangle(image, (x, y), (x + w, y + h), tuple(float(c) for c in wall * 0.6), 6)
            cv2.line(
                image, (x + w // 2, y), (x + w // 2, y + h), tuple(float(c) for c in wall * 0.6), 4
            )
        elif kind == 1:  # picture frame
            art = hsv_colour(rng.uniform(0, 1), rng.uniform(0.3, 0.8), rng.uniform(0.3, 0.9))
            cv2.rectangle(image, (x, y), (x + w // 2, y + h // 2), tuple(float(c) for c in art), -1)
            cv2.rectangle(image, (x, y), (x + w // 2, y + h // 2), (0.15, 0.1, 0.05), 5)
        else:  # door or shelf
            door = wall * rng.uniform(0.6, 0.85)
            cv2.rectangle(
                image,
                (x, floor_y - int(h * 1.6)),
                (x + w // 2, floor_y),
                tuple(float(c) for c in door),
                -1,
            )
    if rng.random() < 0.5:  # plant: pot and leaves
        px = int(rng.uniform(0.05, 0.95) * width)
        pot = hsv_colour(rng.uniform(0, 0.1), 0.6, rng.uniform(0.3, 0.7))
        cv2.rectangle(
            image,
            (px - 25, floor_y - 60),
            (px + 25, floor_y + 10),
            tuple(float(c) for c in pot),
            -1,
        )
        for _ in range(8):
            leaf = hsv_colour(rng.uniform(0.25, 0.4), rng.uniform(0.4, 0.8), rng.uniform(0.25, 0.6))
            centre = (px + int(rng.normal(0, 30)), floor_y - 60 - int(abs(rng.normal(50, 30))))
            cv2.ellipse(
                image,
                centre,
                (int(rng.uniform(10, 28)), int(rng.uniform(5, 12))),
                float(rng.uniform(0, 180)),
                0,
                360,
                tuple(float(c) for c in leaf),
                -1,
            )
    light = 1 + 0.15 * np.linspace(-1, 1, width, dtype=np.float32) * rng.uniform(-1, 1)
    return np.clip(image * light[None, :, None], 0, 1)


def apply_camera(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Exposure, white balance, gamma and sensor noise; float `(H, W, 3)` -> uint8 RGB."""
    gains = rng.uniform(0.92, 1.08, 3) * rng.uniform(0.85, 1.12)
    gamma = rng.uniform(0.85, 1.15)
    out = np.clip(image * gains, 0, 1) ** gamma
    out = out * 255 + rng.normal(0, rng.uniform(0.5, 3.5), out.shape)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
