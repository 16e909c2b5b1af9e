"""The label vocabulary every part of the product shares.

Parse maps use the 20 LIP labels (so parsers trained on LIP or CIHP can be dropped in);
keypoints use the 18 COCO keypoints in the order OpenPose writes them. "Left" and "right"
are the *person's* left and right: for a shopper facing the camera, the right arm (label
15, keypoints 2-4) appears on the left half of the image.
"""

from __future__ import annotations

PARSE_LABELS: tuple[str, ...] = (
    "background",
    "hat",
    "hair",
    "glove",
    "sunglasses",
    "upper-clothes",
    "dress",
    "coat",
    "socks",
    "pants",
    "jumpsuits",
    "scarf",
    "skirt",
    "face",
    "left-arm",
    "right-arm",
    "left-leg",
    "right-leg",
    "left-shoe",
    "right-shoe",
)
NUM_PARSE_LABELS = len(PARSE_LABELS)

BACKGROUND = 0
HAT = 1
HAIR = 2
GLOVE = 3
SUNGLASSES = 4
UPPER_CLOTHES = 5
DRESS = 6
COAT = 7
SOCKS = 8
PANTS = 9
JUMPSUITS = 10
SCARF = 11
SKIRT = 12
FACE = 13
LEFT_ARM = 14
RIGHT_ARM = 15
LEFT_LEG = 16
RIGHT_LEG = 17
LEFT_SHOE = 18
RIGHT_SHOE = 19

# Label groups the person representation is built from (CP-VTON / VITON-HD conventions).
HEAD_LABELS: tuple[int, ...] = (HAT, HAIR, SUNGLASSES, FACE)
UPPER_CLOTHES_LABELS: tuple[int, ...] = (UPPER_CLOTHES, DRESS, COAT)
ARM_LABELS: tuple[int, ...] = (LEFT_ARM, RIGHT_ARM, GLOVE)
LOWER_BODY_LABELS: tuple[int, ...] = (
    PANTS,
    SKIRT,
    LEFT_LEG,
    RIGHT_LEG,
    LEFT_SHOE,
    RIGHT_SHOE,
    SOCKS,
)

# LIP has no neck label: VITON's parse maps leave the neck as background, and so does our
# generator; the representation finds the neck from the keypoints instead.

# The LIP palette: colour i of the 8-bit palette PNG is label i. Public LIP/VITON files use
# the same colours (VITON's copy writes 254 where this writes 255; readers use the index).
PARSE_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (128, 0, 0),
    (255, 0, 0),
    (0, 85, 0),
    (170, 0, 51),
    (255, 85, 0),
    (0, 0, 85),
    (0, 119, 221),
    (85, 85, 0),
    (0, 85, 85),
    (85, 51, 0),
    (52, 86, 128),
    (0, 128, 0),
    (0, 0, 255),
    (51, 170, 221),
    (0, 255, 255),
    (85, 255, 170),
    (170, 255, 85),
    (255, 255, 0),
    (255, 170, 0),
)

KEYPOINT_NAMES: tuple[str, ...] = (
    "nose",
    "neck",
    "right-shoulder",
    "right-elbow",
    "right-wrist",
    "left-shoulder",
    "left-elbow",
    "left-wrist",
    "right-hip",
    "right-knee",
    "right-ankle",
    "left-hip",
    "left-knee",
    "left-ankle",
    "right-eye",
    "left-eye",
    "right-ear",
    "left-ear",
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)

NOSE, NECK = 0, 1
R_SHOULDER, R_ELBOW, R_WRIST = 2, 3, 4
L_SHOULDER, L_ELBOW, L_WRIST = 5, 6, 7
R_HIP, R_KNEE, R_ANKLE = 8, 9, 10
L_HIP, L_KNEE, L_ANKLE = 11, 12, 13
R_EYE, L_EYE, R_EAR, L_EAR = 14, 15, 16, 17

# Limbs as OpenPose draws them: pairs of keypoint indices.
SKELETON: tuple[tuple[int, int], ...] = (
    (NECK, R_SHOULDER),
    (R_SHOULDER, R_ELBOW),
    (R_ELBOW, R_WRIST),
    (NECK, L_SHOULDER),
    (L_SHOULDER, L_ELBOW),
    (L_ELBOW, L_WRIST),
    (NECK, R_HIP),
    (R_HIP, R_KNEE),
    (R_KNEE, R_ANKLE),
    (NECK, L_HIP),
    (L_HIP, L_KNEE),
    (L_KNEE, L_ANKLE),
    (NECK, NOSE),
    (NOSE, R_EYE),
    (R_EYE, R_EAR),
    (NOSE, L_EYE),
    (L_EYE, L_EAR),
)

# BODY_25 -> COCO-18: COCO keypoint i is BODY_25 keypoint BODY25_TO_COCO18[i]. BODY_25 adds
# a mid-hip (8) and six foot points; the rest is the COCO set in another order.
BODY25_TO_COCO18: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)


def palette_bytes() -> list[int]:
    """The LIP palette flattened for `PIL.Image.putpalette` (768 entries, zero padded)."""
    flat = [channel for colour in PARSE_PALETTE for channel in colour]
    return flat + [0] * (768 - len(flat))
