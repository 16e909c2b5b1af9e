from __future__ import annotations

import pytest
import torch

from tryon.labels import (
    BACKGROUND,
    FACE,
    HAIR,
    L_ELBOW,
    L_HIP,
    L_SHOULDER,
    L_WRIST,
    LEFT_ARM,
    NECK,
    NOSE,
    NUM_PARSE_LABELS,
    PANTS,
    R_EAR,
    R_ELBOW,
    R_HIP,
    R_SHOULDER,
    R_WRIST,
    RIGHT_ARM,
    UPPER_CLOTHES,
)
from tryon.representation import (
    GMM_PERSON_CHANNELS,
    TOM_PERSON_CHANNELS,
    build_representation,
    dilate,
    keypoint_heatmaps,
    push_pull_fill,
    scale_keypoints,
    visible_background,
)

SIZES = [(256, 192), (128, 96)]

# Label boxes as fractions of the image: (top, bottom, left, right). The neck (rows
# 0.22-0.28 under the face) is background, as in LIP parse maps.
BOXES = {
    HAIR: (0.04, 0.10, 0.40, 0.60),
    FACE: (0.10, 0.22, 0.42, 0.58),
    UPPER_CLOTHES: (0.28, 0.60, 0.30, 0.70),
    RIGHT_ARM: (0.28, 0.55, 0.20, 0.30),
    LEFT_ARM: (0.28, 0.55, 0.70, 0.80),
    PANTS: (0.60, 0.95, 0.32, 0.68),
}
# Keypoints as fractions of the image: (x, y).
KEYPOINTS = {
    NOSE: (0.50, 0.16),
    NECK: (0.50, 0.28),
    R_SHOULDER: (0.30, 0.29),
    L_SHOULDER: (0.70, 0.29),
    R_ELBOW: (0.25, 0.42),
    L_ELBOW: (0.75, 0.42),
    R_WRIST: (0.25, 0.54),
    L_WRIST: (0.75, 0.54),
    R_HIP: (0.40, 0.60),
    L_HIP: (0.60, 0.60),
}


def at(fraction: tuple[float, float], size: tuple[int, int]) -> tuple[int, int]:
    """(row, column) of the pixel at fractions (y, x) of an image of `size`."""
    return int(fraction[0] * size[0]), int(fraction[1] * size[1])


def scene(size: tuple[int, int], shift: int = 0) -> tuple[torch.Tensor, ...]:
    """One person: photo `(1, 3, H, W)`, parse `(1, H, W)`, keypoints `(1, 18, 3)`.

    Each label has its own colour, so tests can tell which pixels were kept.
    """
    height, width = size
    parse = torch.zeros(1, height, width, dtype=torch.long)
    for label, (top, bottom, left, right) in BOXES.items():
        rows = slice(int(top * height), int(bottom * height))
        parse[0, rows, int(left * width) + shift : int(right * width) + shift] = label
    colours = torch.linspace(-0.9, 0.9, NUM_PARSE_LABELS * 3).view(NUM_PARSE_LABELS, 3)
    person = colours[parse].permute(0, 3, 1, 2).contiguous()
    keypoints = torch.zeros(1, 18, 3)
    for index, (x, y) in KEYPOINTS.items():
        keypoints[0, index] = torch.tensor([x * width + shift, y * height, 1.0])
    return person, parse, keypoints


@pytest.mark.parametrize("size", SIZES)
def test_shapes_and_channel_counts(size):
    people = [scene(size), scene(size, shift=5)]
    person, parse, keypoints = (torch.cat(parts) for parts in zip(*people, strict=True))

    rep = build_representation(person, parse, keypoints)

    assert rep.heatmaps.shape == (2, 18, *size)
    assert rep.shape.shape == rep.tryon_region.shape == rep.garment_region.shape == (2, 1, *size)
    assert rep.head.shape == rep.agnostic.shape == (2, 3, *size)
    assert rep.gmm_input().shape == (2, GMM_PERSON_CHANNELS, *size) == (2, 22, *size)
    assert rep.tom_input().shape == (2, TOM_PERSON_CHANNELS, *size) == (2, 22, *size)
    assert all(t.dtype == torch.float32 for t in (rep.gmm_input(), rep.tom_input()))


def test_network_inputs_come_in_the_layout_asked_for_with_the_channels_in_order():
    rep = build_representation(*scene((128, 96)))
    gmm_parts = [rep.shape, rep.head, rep.heatmaps]
    tom_parts = [rep.agnostic, rep.shape, rep.heatmaps]
    for layout in (torch.channels_last, torch.contiguous_format):
        gmm_input, tom_input = rep.gmm_input(layout), rep.tom_input(layout)
        assert gmm_input.is_contiguous(memory_format=layout)
        assert tom_input.is_contiguous(memory_format=layout)
        assert torch.equal(gmm_input, torch.cat(gmm_parts, 1))
        assert torch.equal(tom_input, torch.cat(tom_parts, 1))


@pytest.mark.parametrize("size", SIZES)
def test_agnostic_keeps_background_head_and_lower_body(size):
    person, parse, keypoints = scene(size)

    agnostic = build_representation(person, parse, keypoints).agnostic

    for label in (FACE, HAIR, PANTS):
        where = parse[0] == label
        assert torch.equal(agnostic[0][:, where], person[0][:, where]), f"label {label} changed"
    # Corners, beside the legs, beside the neck above the shoulders, above the hair.
    for point in [(0.02, 0.02), (0.98, 0.98), (0.75, 0.1), (0.20, 0.36), (0.02, 0.50)]:
        row, column = at(point, size)
        assert torch.equal(agnostic[0, :, row, column], person[0, :, row, column])


@pytest.mark.parametrize("size", SIZES)
def test_agnostic_greys_upper_clothes_arms_and_neck(size):
    person, parse, keypoints = scene(size)

    rep = build_representation(person, parse, keypoints)

    covered = (parse[0] == UPPER_CLOTHES) | (parse[0] == LEFT_ARM) | (parse[0] == RIGHT_ARM)
    assert (rep.agnostic[0][:, covered] == 0).all()
    neck_row, neck_column = at((0.25, 0.50), size)
    assert parse[0, neck_row, neck_column] == BACKGROUND
    assert (rep.agnostic[0, :, neck_row, neck_column] == 0).all()
    assert rep.tryon_region[0, 0, neck_row, neck_column] == 1


def test_neck_comes_from_the_neck_keypoint():
    size = (256, 192)
    person, parse, keypoints = scene(size)
    keypoints[0, NECK] = 0

    rep = build_representation(person, parse, keypoints)

    neck_row, neck_column = at((0.25, 0.50), size)
    assert rep.tryon_region[0, 0, neck_row, neck_column] == 0


@pytest.mark.parametrize("size", SIZES)
def test_tryon_region_grows_a_little_past_the_garment(size):
    person, parse, keypoints = scene(size)

    rep = build_representation(person, parse, keypoints)

    garment = (parse == UPPER_CLOTHES).float().unsqueeze(1)
    assert torch.equal(rep.garment_region, garment)
    assert (rep.tryon_region >= rep.garment_region).all()
    height, width = size
    hem = int(0.60 * height)  # pants start here: kept
    right_edge = int(0.80 * width)  # the left arm's outer edge
    row = int(0.40 * height)
    assert rep.tryon_region[0, 0, row, right_edge + 1] == 1  # just past the edge: greyed
    assert rep.tryon_region[0, 0, row, right_edge + int(0.05 * height)] == 0  # far: kept
    assert rep.tryon_region[0, 0, hem, width // 2] == 0


def test_arms_the_warped_garment_leaves_bare_stay_the_photo_s():
    size = (256, 192)
    person, parse, keypoints = scene(size)
    rep = build_representation(person, parse, keypoints)
    right_arm, left_arm = parse == RIGHT_ARM, parse == LEFT_ARM
    # A new garment with one long sleeve, over the left arm: the right arm is left bare.
    warped_mask = ((parse == UPPER_CLOTHES) | left_arm).float().unsqueeze(1)
    painted = torch.full_like(person, 0.5)

    region = rep.repainted_region(warped_mask)
    dressed = rep.dressed(painted, region)

    assert (region[:, 0][right_arm] == 0).all()
    assert (region[:, 0][left_arm | (parse == UPPER_CLOTHES)] == 1).all()
    assert torch.equal(dressed[0][:, right_arm[0]], person[0][:, right_arm[0]])
    assert (dressed[0][:, left_arm[0]] == 0.5).all()
    outside = rep.tryon_region[0, 0] == 0
    assert torch.equal(dressed[0][:, outside], person[0][:, outside])
    # Without a warped mask the whole try-on region is painted, arms included.
    assert torch.equal(rep.repainted_region(None), rep.tryon_region)


@pytest.mark.parametrize("size", SIZES)
def test_heatmaps_peak_at_the_keypoints(size):
    person, parse, keypoints = scene(size)
    keypoints[0, R_EAR] = torch.tensor([10.0, 10.0, 0.0])  # not found by the pose detector

    heatmaps = build_representation(person, parse, keypoints).heatmaps[0]

    width = size[1]
    for index in KEYPOINTS:
        peak = int(heatmaps[index].argmax())
        x, y = keypoints[0, index, :2]
        assert (peak // width, peak % width) == (round(float(y)), round(float(x)))
        assert heatmaps[index].max() > 0.9
    assert heatmaps[R_EAR].abs().sum() == 0
    assert heatmaps.min() >= 0 and heatmaps.max() <= 1


def test_heatmap_width_follows_the_resolution():
    keypoints = torch.tensor([[[40.0, 60.0, 1.0]] * 18])
    small = keypoint_heatmaps(keypoints / 2 * torch.tensor([1, 1, 2]), (128, 96))
    large = keypoint_heatmaps(keypoints, (256, 192))

    assert (large[0, 0] > 0.5).sum().item() == pytest.approx(
        4 * (small[0, 0] > 0.5).sum().item(), rel=0.2
    )


def test_shape_is_a_blurred_silhouette():
    size = (256, 192)
    person, parse, keypoints = scene(size)

    shape = build_representation(person, parse, keypoints).shape[0, 0]

    assert shape.min() >= 0 and shape.max() <= 1
    assert shape[at((0.45, 0.50), size)] > 0.95  # middle of the torso
    assert shape[at((0.02, 0.02), size)] < 0.05  # far background
    edge = shape[int(0.45 * 256), int(0.2 * 192) - 8 : int(0.2 * 192) + 8]
    assert ((edge > 0.1) & (edge < 0.9)).sum() >= 4  # a soft edge, not the crisp outline


def test_head_is_the_photo_on_head_labels_only():
    person, parse, keypoints = scene((128, 96))

    head = build_representation(person, parse, keypoints).head

    on_head = (parse[0] == FACE) | (parse[0] == HAIR)
    assert torch.equal(head[0][:, on_head], person[0][:, on_head])
    assert (head[0][:, ~on_head] == 0).all()


def test_a_batch_equals_its_items_built_one_by_one():
    size = (128, 96)
    first, second = scene(size), scene(size, shift=9)
    batch = [torch.cat(parts) for parts in zip(first, second, strict=True)]

    together = build_representation(*batch)
    alone = [build_representation(*first), build_representation(*second)]

    for name in ("heatmaps", "shape", "head", "agnostic", "tryon_region", "garment_region"):
        expected = torch.cat([getattr(rep, name) for rep in alone])
        assert torch.allclose(getattr(together, name), expected, atol=1e-6), name


def test_scale_keypoints_round_trip_keeps_missing_points_at_zero():
    keypoints = torch.tensor([[10.0, 20.0, 0.8], [5.0, 5.0, 0.0]])

    there = scale_keypoints(keypoints, (256, 192), (1024, 768))
    back = scale_keypoints(there, (1024, 768), (256, 192))

    assert there[0].tolist() == pytest.approx([41.5, 81.5, 0.8])
    assert there[1].tolist() == [0, 0, 0]
    assert back[0].tolist() == pytest.approx([10.0, 20.0, 0.8])


def test_mismatched_inputs_are_refused_with_the_expected_shapes():
    person, parse, keypoints = scene((128, 96))

    with pytest.raises(ValueError, match=r"person must be \(B, 3, H, W\) = \(1, 3, 128, 96\)"):
        build_representation(person[:, :, :64], parse, keypoints)
    with pytest.raises(ValueError, match="keypoints must be"):
        build_representation(person, parse, keypoints[:, :17])
    with pytest.raises(ValueError, match="integer labels"):
        build_representation(person, parse.float(), keypoints)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_gives_the_cpu_result():
    inputs = scene((256, 192))

    on_cpu = build_representation(*inputs)
    on_gpu = build_representation(*(t.cuda() for t in inputs))

    assert on_gpu.agnostic.is_cuda
    assert torch.allclose(on_gpu.tom_input().cpu(), on_cpu.tom_input(), atol=1e-5)
    assert torch.allclose(on_gpu.gmm_input().cpu(), on_cpu.gmm_input(), atol=1e-5)


def test_push_pull_fill_keeps_known_pixels_and_fills_a_hole_from_around_it():
    # A red wall on the left, a blue one on the right; a hole in each.
    image = torch.zeros(1, 3, 64, 48)
    image[:, 0, :, :24], image[:, 2, :, 24:] = 1.0, 1.0
    known = torch.ones(1, 1, 64, 48)
    known[..., 20:40, 4:16] = 0.0
    known[..., 20:40, 32:44] = 0.0
    damaged = image * known  # what is under a hole must not matter
    filled = push_pull_fill(damaged, known)
    keep = known.bool().expand_as(image)
    assert torch.equal(filled[keep], image[keep])
    # Each hole takes mostly the colour of the wall around it (a coarser level reaches a
    # little of the other wall too).
    left_hole, right_hole = filled[0, :, 30, 10], filled[0, :, 30, 38]
    assert left_hole[0] > 0.75 and left_hole[2] < 0.25 and left_hole[1] == 0
    assert right_hole[2] > 0.75 and right_hole[0] < 0.25 and right_hole[1] == 0


def test_background_fill_continues_the_wall_under_the_try_on_region():
    size = (128, 96)
    person, parse, keypoints = scene(size)
    wall = person[0, :, 0, 0].clone()  # the background's own colour
    rep = build_representation(person, parse, keypoints)
    fill = rep.background_fill()
    ring = (rep.tryon_region[0, 0] > 0) & (parse[0] == BACKGROUND)
    assert ring.any()
    assert torch.allclose(fill[0][:, ring], wall[:, None].expand(3, int(ring.sum())), atol=1e-5)
    # Only background pixels outside the region are spread: never the person's colours.
    assert (
        rep.background_pixels.sum() == ((parse == BACKGROUND) & (rep.tryon_region[:, 0] == 0)).sum()
    )


def test_visible_background_is_the_region_s_background_less_the_neck():
    size = (128, 96)
    person, parse, keypoints = scene(size)
    rep = build_representation(person, parse, keypoints)
    visible = visible_background(parse, keypoints, rep.tryon_region)[0, 0].bool()
    assert visible.any()
    assert not visible[parse[0] != BACKGROUND].any()
    assert not visible[rep.tryon_region[0, 0] == 0].any()
    neck_row, neck_column = at((0.25, 0.50), size)  # under the face: the neck, not background
    assert rep.tryon_region[0, 0, neck_row, neck_column] == 1
    assert not visible[neck_row, neck_column]


def test_dilate_grows_a_mask_by_a_square_as_a_max_filter_does():
    """Every pixel within `radius` (a square, not a disc) of a set pixel is set, none
    further, at the image's edges too."""
    generator = torch.Generator().manual_seed(3)
    mask = (torch.rand(2, 1, 40, 30, generator=generator) > 0.97).float()
    mask[0, 0, 0, 0] = 1.0  # a corner pixel
    for radius in (1, 2, 5):
        expected = torch.nn.functional.max_pool2d(mask, 2 * radius + 1, stride=1, padding=radius)
        assert torch.equal(dilate(mask, radius), expected)
    single = torch.zeros(1, 1, 9, 9)
    single[0, 0, 4, 4] = 1.0
    grown = dilate(single, 2)
    assert grown.sum() == 25 and grown[0, 0, 2:7, 2:7].all()
