"""Random body shapes and poses for synthetic shoppers: the skeleton everything hangs on.

All coordinates are (x, y) pixels of the render canvas (twice the output resolution).
"Right" and "left" are the person's: the right arm (COCO keypoints 2-4) is drawn on the
image's left half. Lengths scale with `head`, the head height in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tryon import labels as L

ARM_POSES: tuple[str, ...] = ("hanging", "bent", "raised", "hip", "across")
ARM_POSE_WEIGHTS: tuple[float, ...] = (0.34, 0.14, 0.1, 0.16, 0.26)


@dataclass
class Arm:
    """One arm: side is -1 for the right arm (image left) and +1 for the left arm."""

    side: int
    pose: str
    shoulder: np.ndarray
    elbow: np.ndarray
    wrist: np.ndarray
    hand_tip: np.ndarray
    radius_shoulder: float
    radius_elbow: float
    radius_wrist: float
    in_front_of_torso: bool


@dataclass
class Leg:
    """One leg from hip joint to ankle; side as for `Arm`."""

    side: int
    hip: np.ndarray
    knee: np.ndarray
    ankle: np.ndarray
    radius_hip: float
    radius_ankle: float


@dataclass
class Body:
    """Geometry of one synthetic person on the render canvas."""

    canvas: tuple[int, int]
    head: float
    center_x: float
    turn: float  # torso rotation about the vertical axis, radians; > 0 turns to image right
    head_center: np.ndarray
    head_size: tuple[float, float]  # half width, half height of the face ellipse
    neck_base_y: float
    neck_half_width: float
    shoulder_y: float
    chest_half_width: float
    waist_half_width: float
    hip_half_width: float
    waist_y: float
    hip_y: float
    front_x: float  # x of the torso's front centre line (moves with the turn)
    arms: dict[int, Arm] = field(default_factory=dict)
    legs: dict[int, Leg] = field(default_factory=dict)

    def keypoints(self) -> np.ndarray:
        """The 18 COCO keypoints `(18, 2)` (x, y) on the render canvas."""
        kp = np.zeros((L.NUM_KEYPOINTS, 2))
        hx, hy = self.head_center
        hw, hh = self.head_size
        face_shift = self.turn * hw * 0.9
        kp[L.NOSE] = (hx + face_shift, hy + hh * 0.18)
        kp[L.R_EYE] = (hx + face_shift - hw * 0.38, hy - hh * 0.08)
        kp[L.L_EYE] = (hx + face_shift + hw * 0.38, hy - hh * 0.08)
        kp[L.R_EAR] = self.ear(-1)
        kp[L.L_EAR] = self.ear(+1)
        kp[L.NECK] = (self.front_x, self.shoulder_y)
        for side, (s, e, w) in {
            -1: (L.R_SHOULDER, L.R_ELBOW, L.R_WRIST),
            1: (L.L_SHOULDER, L.L_ELBOW, L.L_WRIST),
        }.items():
            arm = self.arms[side]
            kp[s], kp[e], kp[w] = arm.shoulder, arm.elbow, arm.wrist
        for side, (h, k, a) in {
            -1: (L.R_HIP, L.R_KNEE, L.R_ANKLE),
            1: (L.L_HIP, L.L_KNEE, L.L_ANKLE),
        }.items():
            leg = self.legs[side]
            kp[h], kp[k], kp[a] = leg.hip, leg.knee, leg.ankle
        return kp

    def ear(self, side: int) -> np.ndarray:
        """Centre of the ear on `side`; it slides behind the head as the head turns away."""
        hx, hy = self.head_center
        hw, _ = self.head_size
        return np.array(
            [
                hx
                + side * hw * (1.0 - 0.5 * max(0.0, -side * self.turn * 2.5))
                + self.turn * hw * 0.3,
                hy + 0.05 * hw,
            ]
        )


def _direction(angle_from_down: float, side: int) -> np.ndarray:
    """Unit vector at `angle_from_down` radians from straight down, rotated outward on `side`."""
    return np.array([side * np.sin(angle_from_down), np.cos(angle_from_down)])


def _solve_elbow(
    shoulder: np.ndarray, wrist: np.ndarray, upper: float, fore: float, side: int
) -> np.ndarray:
    """Elbow position of a two-link arm reaching `wrist`, bending outward (away from body)."""
    d = wrist - shoulder
    dist = float(np.clip(np.linalg.norm(d), 1e-3, upper + fore - 1e-3))
    d_unit = d / max(np.linalg.norm(d), 1e-3)
    along = (upper**2 - fore**2 + dist**2) / (2 * dist)
    across = np.sqrt(max(upper**2 - along**2, 0.0))
    normal = np.array([-d_unit[1], d_unit[0]])
    if normal[0] * side < 0:
        normal = -normal
    return shoulder + d_unit * along + normal * across


def _sample_arm(
    rng: np.random.Generator,
    pose: str,
    side: int,
    shoulder: np.ndarray,
    body: Body,
    upper: float,
    fore: float,
) -> Arm:
    head = body.head
    deg = np.deg2rad
    if pose == "hanging":
        a_up = deg(rng.uniform(4, 20))
        elbow = shoulder + _direction(a_up, side) * upper
        wrist = elbow + _direction(a_up + deg(rng.uniform(-6, 12)), side) * fore
    elif pose == "bent":
        a_up = deg(rng.uniform(5, 28))
        elbow = shoulder + _direction(a_up, side) * upper
        wrist = elbow + _direction(deg(rng.uniform(55, 125)), side) * fore
    elif pose == "raised":
        a_up = deg(rng.uniform(95, 150))
        elbow = shoulder + _direction(a_up, side) * upper
        wrist = elbow + _direction(a_up + deg(rng.uniform(-35, 15)), side) * fore
    elif pose == "hip":
        target = np.array(
            [
                body.center_x + side * body.waist_half_width * rng.uniform(0.95, 1.1),
                body.waist_y + head * rng.uniform(-0.1, 0.25),
            ]
        )
        elbow = _solve_elbow(shoulder, target, upper, fore, side)
        wrist = elbow + (target - elbow) / max(np.linalg.norm(target - elbow), 1e-3) * fore
    elif pose == "across":
        a_up = deg(rng.uniform(0, 14))
        elbow = shoulder + _direction(a_up, side) * upper
        # The forearm swings inward across the belly, slightly rising.
        wrist = elbow + _direction(-deg(rng.uniform(62, 100)), side) * fore
    else:
        raise ValueError(f"unknown arm pose {pose!r}, supported: {list(ARM_POSES)}")
    forearm_dir = (wrist - elbow) / max(np.linalg.norm(wrist - elbow), 1e-3)
    hand_tip = wrist + forearm_dir * head * rng.uniform(0.55, 0.68)
    r_sh = head * rng.uniform(0.19, 0.23) * (body.chest_half_width / (head * 0.95)) ** 0.5
    return Arm(
        side=side,
        pose=pose,
        shoulder=shoulder,
        elbow=elbow,
        wrist=wrist,
        hand_tip=hand_tip,
        radius_shoulder=r_sh,
        radius_elbow=r_sh * 0.78,
        radius_wrist=r_sh * 0.58,
        in_front_of_torso=pose in ("across",),
    )


def sample_body(rng: np.random.Generator, canvas: tuple[int, int]) -> Body:
    """A random person: proportions, placement, turn and arm/leg pose.

    Args:
        rng: the sample's generator (all randomness of the body comes from it).
        canvas: (height, width) of the render canvas in pixels.
    """
    height, width = canvas
    # Person height (head top to ankles) relative to the frame: > 1 crops the legs, as
    # VITON's half-body photos do; < 1 shows the whole person.
    stature = height * rng.uniform(0.85, 1.55)
    head = stature / rng.uniform(7.0, 8.0)
    top = height * rng.uniform(0.02, 0.1)
    center_x = width * rng.uniform(0.4, 0.6)
    turn = float(np.deg2rad(rng.uniform(-22, 22)))
    cos_t = np.cos(turn)
    build = rng.uniform(0.82, 1.22)  # slim .. broad
    hips = rng.uniform(0.85, 1.15)  # narrow .. wide hips relative to the chest

    head_half_w = head * rng.uniform(0.36, 0.42)
    head_center = np.array([center_x + turn * head * 0.25, top + head * 0.5])
    shoulder_y = top + head * rng.uniform(1.38, 1.5)
    chest = head * 0.95 * build
    shoulder_half = head * rng.uniform(1.0, 1.12) * build * cos_t
    torso_len = head * rng.uniform(2.0, 2.35)
    hip_y = shoulder_y + torso_len
    body = Body(
        canvas=canvas,
        head=head,
        center_x=center_x,
        turn=turn,
        head_center=head_center,
        head_size=(head_half_w, head * 0.5),
        neck_base_y=shoulder_y - head * 0.12,
        neck_half_width=head * rng.uniform(0.17, 0.21) * build**0.5,
        shoulder_y=shoulder_y,
        chest_half_width=chest * cos_t,
        waist_half_width=chest * rng.uniform(0.8, 0.92) * cos_t,
        hip_half_width=chest * 0.95 * hips * cos_t,
        waist_y=shoulder_y + torso_len * 0.62,
        hip_y=hip_y,
        front_x=center_x + np.sin(turn) * head * 0.35,
    )
    upper = head * rng.uniform(1.3, 1.45)
    fore = head * rng.uniform(1.1, 1.25)
    poses = rng.choice(len(ARM_POSES), size=2, p=ARM_POSE_WEIGHTS)
    for side, pose_index in zip((-1, 1), poses, strict=True):
        shoulder = np.array(
            [
                center_x + side * shoulder_half * (1 - 0.25 * side * np.sin(turn)),
                shoulder_y + head * rng.uniform(0.0, 0.08),
            ]
        )
        body.arms[side] = _sample_arm(rng, ARM_POSES[pose_index], side, shoulder, body, upper, fore)

    stance = head * rng.uniform(0.0, 0.45)
    thigh = head * rng.uniform(1.75, 2.0)
    shin = head * rng.uniform(1.75, 2.0)
    for side in (-1, 1):
        hip = np.array([center_x + side * body.hip_half_width * 0.55, hip_y])
        ankle = hip + np.array([side * stance * rng.uniform(0.6, 1.0), 0.0])
        ankle[1] = hip_y + np.sqrt(max((thigh + shin) ** 2 - (ankle[0] - hip[0]) ** 2, 1.0)) * 0.99
        knee = hip + (ankle - hip) * thigh / (thigh + shin) + np.array([side * head * 0.03, 0])
        body.legs[side] = Leg(
            side=side,
            hip=hip,
            knee=knee,
            ankle=ankle,
            radius_hip=body.hip_half_width * 0.5,
            radius_ankle=head * 0.16,
        )
    return body
