"""Image and parse metrics: SSIM (whole and inside a region), PSNR, L1, mIoU, PCK, IoU,
and two that see texture: sharpness against the photo and GMSD.

Images are `(B, 3, H, W)` in [-1, 1]; masks `(B, 1, H, W)` in [0, 1]. Scores are per
image, `(B,)`, so callers can average over a dataset.
"""

from __future__ import annotations

import torch
from kornia.color import rgb_to_grayscale
from kornia.filters import spatial_gradient
from kornia.metrics import ssim as ssim_map_kornia

from tryon.labels import ARM_LABELS, NUM_PARSE_LABELS, UPPER_CLOTHES_LABELS
from tryon.representation import dilate, label_mask

SSIM_WINDOW = 11
# GMSD's stability constant for intensities in [0, 255] (Xue et al., 2014), here in [0, 1].
GMSD_C = 170 / 255**2
# A label counts for `parse_miou_frequent` when it covers at least this share of the pixels.
FREQUENT_LABEL_SHARE = 0.005
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


def gradient_magnitude(image: torch.Tensor) -> torch.Tensor:
    """Per-pixel gradient magnitude `(B, 1, H, W)` of the luma of `(B, 3, H, W)` images in
    [-1, 1], in [0, 1] units per pixel (Sobel, replicated borders)."""
    luma = rgb_to_grayscale((image + 1) / 2)
    gradients = spatial_gradient(luma, mode="sobel", normalized=True)  # (B, 1, 2, H, W)
    return gradients.pow(2).sum(2).sqrt()


def region_sharpness(
    output: torch.Tensor, truth: torch.Tensor, region: torch.Tensor
) -> torch.Tensor:
    """Mean gradient magnitude of `output` over `region` divided by that of `truth` there,
    `(B,)`: 1.0 is as sharp as the photo, lower is blurrier (a blurred average of
    textures scores low even where SSIM barely moves)."""
    return masked_mean(gradient_magnitude(output), region) / masked_mean(
        gradient_magnitude(truth), region
    )


def region_gmsd(a: torch.Tensor, b: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Gradient Magnitude Similarity Deviation (Xue et al., 2014) over `region`, `(B,)`: the
    standard deviation of the per-pixel gradient-magnitude similarity; 0 is identical,
    higher is worse. A weight-free perceptual score that sees lost edges and texture.

    On whole images (`region` all ones) it follows the paper's definition except that the
    images are not downsampled 2x first and the gradient is Sobel's, not Prewitt's."""
    ga, gb = gradient_magnitude(a), gradient_magnitude(b)
    similarity = (2 * ga * gb + GMSD_C) / (ga**2 + gb**2 + GMSD_C)
    mean = masked_mean(similarity, region)
    variance = masked_mean((similarity - mean[:, None, None, None]) ** 2, region)
    return variance.sqrt()


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


def frequent_mean_iou(counts: torch.Tensor, share: float = FREQUENT_LABEL_SHARE) -> float:
    """Mean IoU over the labels that cover at least `share` of the ground-truth pixels of
    `counts` (a confusion matrix, target x prediction): on real photos a few labels with a
    handful of pixels (socks, gloves) would otherwise weigh as much as the upper clothes."""
    ious, pixels = _ious_and_pixels(counts)
    frequent = pixels >= share * pixels.sum()
    return float(ious[frequent].mean())


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
