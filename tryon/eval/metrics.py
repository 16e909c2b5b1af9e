"""Image and parse metrics: SSIM (whole and inside a region), PSNR, L1, mIoU, PCK, IoU.

Images are `(B, 3, H, W)` in [-1, 1]; masks `(B, 1, H, W)` in [0, 1]. Scores are per
image, `(B,)`, so callers can average over a dataset.
"""

from __future__ import annotations

import torch
from kornia.metrics import ssim as ssim_map_kornia

from tryon.labels import ARM_LABELS, NUM_PARSE_LABELS, UPPER_CLOTHES_LABELS
from tryon.representation import dilate, label_mask

SSIM_WINDOW = 11
REGION_DILATION = 0.02  # of the image height: the scored try-on region grows past the labels


def ssim_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM `(B, 1, H, W)` of two image batches in [-1, 1] (11x11 Gaussian window,
    channels averaged)."""
    return ssim_map_kornia((a + 1) / 2, (b + 1) / 2, SSIM_WINDOW).mean(1, keepdim=True)


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Whole-image SSIM per image, `(B,)`."""
    return ssim_map(a, b).mean(dim=(1, 2, 3))


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `(B, 1, H, W)` values over each image's mask; NaN where a mask is empty."""
    total = mask.sum(dim=(1, 2, 3))
    return (values * mask).sum(dim=(1, 2, 3)) / total.where(total > 0, torch.nan)


def region_ssim(a: torch.Tensor, b: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """SSIM averaged over the pixels of `region` only, `(B,)`."""
    return masked_mean(ssim_map(a, b), region)


def region_l1(a: torch.Tensor, b: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference (in [0, 1] units) inside `region`, `(B,)`."""
    return masked_mean(((a - b).abs() / 2).mean(1, keepdim=True), region)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image, `(B,)`, with a peak of 1 for images in [0, 1]."""
    mse = (((a - b) / 2) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return -10 * torch.log10(mse)


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of two binary `(B, 1, H, W)` masks per image; NaN when both are empty."""
    a, b = a > 0.5, b > 0.5
    union = (a | b).sum(dim=(1, 2, 3)).float()
    return (a & b).sum(dim=(1, 2, 3)).float() / union.where(union > 0, torch.nan)


def confusion(
    prediction: torch.Tensor, target: torch.Tensor, labels: int = NUM_PARSE_LABELS
) -> torch.Tensor:
    """`(labels, labels)` counts, rows = ground truth, columns = prediction."""
    index = target.reshape(-1).long() * labels + prediction.reshape(-1).long()
    return torch.bincount(index, minlength=labels * labels).reshape(labels, labels)


def _ious_and_pixels(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU of each label `(labels,)` (NaN where absent from both) and its ground-truth
    pixel count `(labels,)`, from `confusion` counts."""
    counts = counts.double()
    inter = counts.diag()
    union = counts.sum(0) + counts.sum(1) - inter
    return inter / union, counts.sum(1)


def mean_iou(counts: torch.Tensor) -> float:
    """Mean IoU over the labels present in the ground truth (rows with any pixels)."""
    ious, pixels = _ious_and_pixels(counts)
    return float(ious[pixels > 0].mean())


def label_ious(counts: torch.Tensor, names: tuple[str, ...]) -> dict[str, dict[str, float | int]]:
    """Per-label IoU and ground-truth pixel count for the labels present in the ground truth,
    keyed by name: {"skirt": {"iou": 0.19, "pixels": 41875}}. `mean_iou` is their mean."""
    ious, pixels = _ious_and_pixels(counts)
    return {
        names[label]: {"iou": float(ious[label]), "pixels": int(pixels[label])}
        for label in range(len(names))
        if pixels[label] > 0
    }


def person_heights(parse: torch.Tensor) -> torch.Tensor:
    """Height in pixels of each person's labelled pixels, `(B,)`, from `(B, H, W)` labels."""
    rows = (parse != 0).any(dim=2)
    index = torch.arange(parse.shape[1], device=parse.device).expand_as(rows)
    top = torch.where(rows, index, parse.shape[1]).amin(1)
    bottom = torch.where(rows, index, -1).amax(1)
    return (bottom - top + 1).clamp_min(1).float()


def visible_keypoint_distances(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Distances in pixels `(N,)` from each ground-truth keypoint marked visible
    (confidence > 0) to its prediction; keypoints `(B, K, 3)` (x, y, confidence)."""
    distance = (predicted[..., :2].float() - target[..., :2].float()).norm(dim=-1)
    return distance[target[..., 2] > 0]


def pck_hits(
    predicted: torch.Tensor, target: torch.Tensor, heights: torch.Tensor, threshold: float = 0.1
) -> tuple[int, int]:
    """(correct, total) keypoints: a ground-truth keypoint (confidence > 0) is correct when
    the prediction is present too (confidence > 0) and lies within `threshold` x the
    person's height of it."""
    present = target[..., 2] > 0
    distance = (predicted[..., :2] - target[..., :2]).norm(dim=-1)
    correct = (distance <= threshold * heights[:, None]) & present & (predicted[..., 2] > 0)
    return int(correct.sum()), int(present.sum())


def scoring_region(parse: torch.Tensor) -> torch.Tensor:
    """Where try-on metrics look: upper clothes and arms of the ground-truth parse `(B, H, W)`,
    dilated by 2% of the height, `(B, 1, H, W)`."""
    region = label_mask(parse, UPPER_CLOTHES_LABELS + ARM_LABELS).float()
    return dilate(region, round(REGION_DILATION * parse.shape[-2]))
