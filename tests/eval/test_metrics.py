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
