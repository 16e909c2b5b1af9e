"""Metrics and baselines behave as their definitions say."""

from __future__ import annotations

import pytest
import torch

from tryon.eval import metrics as M
from tryon.eval.baselines import affine_paste, baselines
from tryon.labels import LEFT_ARM, PARSE_LABELS, UPPER_CLOTHES
from tryon.representation import build_representation


def test_ssim_is_one_for_identical_images_and_lower_for_noise():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 64, 48) * 2 - 1
    assert torch.allclose(M.ssim(image, image), torch.ones(2), atol=1e-4)
    noisy = (image + 0.3 * torch.randn_like(image)).clamp(-1, 1)
    assert (M.ssim(noisy, image) < 0.9).all()


def test_region_scores_look_only_inside_the_region():
    image = torch.zeros(1, 3, 64, 48)
    broken = image.clone()
    broken[..., :32, :] = 1  # top half wrong
    bottom = torch.zeros(1, 1, 64, 48)
    bottom[..., 40:, :] = 1
    assert M.region_l1(broken, image, bottom).item() == 0
    assert M.region_ssim(broken, image, bottom).item() > 0.99
    top = 1 - bottom
    assert M.region_l1(broken, image, top).item() > 0.3


def test_mean_iou_counts_only_labels_in_the_ground_truth():
    target = torch.tensor([[0, 0, 5, 5]])
    prediction = torch.tensor([[0, 0, 5, 2]])  # label 2 is not in the truth
    counts = M.confusion(prediction, target)
    # background IoU 1, label 5 IoU 1/2; label 2 does not count as a class.
    assert abs(M.mean_iou(counts) - 0.75) < 1e-6
    per_label = M.label_ious(counts, PARSE_LABELS)
    assert per_label == {
        "background": {"iou": 1.0, "pixels": 2},
        "upper-clothes": {"iou": 0.5, "pixels": 2},
    }


def test_pck_uses_a_tenth_of_the_person_height():
    target = torch.tensor([[[10.0, 10.0, 1.0], [20.0, 20.0, 0.0]]])
    near = torch.tensor([[[14.0, 10.0, 1.0], [90.0, 90.0, 1.0]]])
    far = torch.tensor([[[16.0, 10.0, 1.0], [20.0, 20.0, 1.0]]])
    heights = torch.tensor([50.0])
    assert M.pck_hits(near, target, heights) == (1, 1)  # the missing keypoint is skipped
    assert M.pck_hits(far, target, heights) == (0, 1)


def test_pck_counts_a_keypoint_the_parser_reports_missing_as_wrong():
    target = torch.tensor([[[10.0, 10.0, 1.0]]])
    reported_missing = torch.tensor([[[10.0, 10.0, 0.0]]])
    assert M.pck_hits(reported_missing, target, torch.tensor([50.0])) == (0, 1)


def test_person_height_is_the_labelled_extent():
    parse = torch.zeros(1, 100, 50, dtype=torch.long)
    parse[0, 20:80, 10:20] = 13
    assert M.person_heights(parse).item() == 60


def test_affine_paste_moves_the_garment_box_onto_the_region_box():
    garment_mask = torch.zeros(1, 1, 64, 48)
    garment_mask[..., 8:56, 8:40] = 1
    region = torch.zeros(1, 1, 64, 48)
    region[..., 30:50, 20:30] = 1
    garment = garment_mask.expand(-1, 3, -1, -1) * 2 - 1
    _, moved_mask = affine_paste(garment, garment_mask, region)
    assert M.mask_iou(moved_mask, region).item() > 0.9


@pytest.mark.parametrize("keep_arms", [True, False])
def test_baselines_keep_the_bare_arms_when_the_pipeline_does(keep_arms):
    parse = torch.zeros(1, 64, 48, dtype=torch.long)
    parse[0, 16:40, 14:34] = UPPER_CLOTHES
    parse[0, 16:36, 34:40] = LEFT_ARM  # beside the garment: the pasted garment leaves it bare
    keypoints = torch.zeros(1, 18, 3)
    person = torch.rand(1, 3, 64, 48) * 2 - 1
    rep = build_representation(person, parse, keypoints)
    garment_mask = torch.zeros(1, 1, 64, 48)
    garment_mask[..., 8:56, 8:40] = 1
    garment = torch.full((1, 3, 64, 48), 0.5)

    images = baselines(rep, garment, garment_mask, keep_arms)

    arm = parse[0] == LEFT_ARM
    for image in images.values():
        if keep_arms:
            assert torch.equal(image[0][:, arm], person[0][:, arm])
        else:
            assert (image[0][:, arm] == 0).all()  # grey, as the whole region
    assert torch.allclose(images["affine"][0, :, 18:38, 16:32], torch.tensor(0.5))  # garment


def _textured(seed: int = 0) -> torch.Tensor:
    """A photo-like batch `(1, 3, 64, 48)` with stripes and noise: texture to lose."""
    torch.manual_seed(seed)
    stripes = torch.sin(torch.arange(48.0) * 1.3)[None, None, None, :].expand(1, 3, 64, 48)
    return (0.5 * stripes + 0.3 * torch.randn(1, 3, 64, 48)).clamp(-1, 1)


def _blurred(image: torch.Tensor) -> torch.Tensor:
    from kornia.filters import gaussian_blur2d

    return gaussian_blur2d(image, (9, 9), (3.0, 3.0))


def test_sharpness_is_one_for_the_photo_and_falls_when_the_texture_is_blurred():
    photo, everywhere = _textured(), torch.ones(1, 1, 64, 48)
    assert M.region_sharpness(photo, photo, everywhere).item() == pytest.approx(1.0)
    assert M.region_sharpness(_blurred(photo), photo, everywhere).item() < 0.5


def test_gmsd_is_zero_for_the_photo_and_sees_blur_that_ssim_forgives_in_flat_areas():
    photo, everywhere = _textured(), torch.ones(1, 1, 64, 48)
    assert M.region_gmsd(photo, photo, everywhere).item() == pytest.approx(0.0, abs=1e-6)
    blurred = M.region_gmsd(_blurred(photo), photo, everywhere).item()
    slightly_noisy = M.region_gmsd((photo + 0.02).clamp(-1, 1), photo, everywhere).item()
    assert blurred > 0.1 > slightly_noisy


def test_gmsd_and_sharpness_look_only_inside_the_region():
    photo = _textured()
    broken = photo.clone()
    broken[..., :24, :] = _blurred(photo)[..., :24, :]  # top rows blurred
    bottom = torch.zeros(1, 1, 64, 48)
    bottom[..., 36:, :] = 1  # far enough from the blurred rows for the 3x3 gradients
    assert M.region_gmsd(broken, photo, bottom).item() == pytest.approx(0.0, abs=1e-6)
    assert M.region_sharpness(broken, photo, bottom).item() == pytest.approx(1.0)
    assert M.region_gmsd(broken, photo, 1 - bottom).item() > 0.05


def test_frequent_mean_iou_leaves_out_labels_with_a_handful_of_pixels():
    counts = torch.zeros(20, 20, dtype=torch.long)
    counts[0, 0] = 10_000  # background
    counts[5, 5], counts[5, 0] = 3_000, 1_000  # upper clothes, IoU 0.75
    counts[8, 0] = 10  # socks: 10 pixels, all missed
    background = 10_000 / 11_010  # the missed pixels were called background
    assert M.mean_iou(counts) == pytest.approx((background + 0.75 + 0) / 3)
    assert M.frequent_mean_iou(counts) == pytest.approx((background + 0.75) / 2)
