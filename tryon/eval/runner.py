"""`tryon eval`: every metric of the product on a paired VITON-layout dataset, in one run.

Three views of the same pairs:
- the parser alone against the dataset's parse and keypoints (`parse_miou`, `pck_0.1`);
- the GMM and TOM on the dataset's own parse and keypoints (`warp_iou`, `warp_ssim`,
  `tryon_ssim_gt_parse`), which is how the papers measure;
- end to end, as in production: the parser's analysis at model resolution (`tryon_ssim`,
  `tryon_psnr`), and the whole `TryOnPipeline` on the original photo, scored after
  paste-back inside the try-on region only (`region_ssim`, `region_l1`);
plus the grey and affine baselines on the same pairs. Metrics whose ground truth the
dataset lacks (`warp-gt/` on real data) are null.
"""

from __future__ import annotations

import math
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from tryon.data.batches import collate_tensors
from tryon.data.viton import VitonDataset, sample_to_tensors
from tryon.eval import metrics as M
from tryon.eval.baselines import baselines
from tryon.framing import blend_weight
from tryon.imaging import image_to_tensor, resize_image
from tryon.labels import PARSE_LABELS
from tryon.models import decode_keypoints
from tryon.models.gmm import GmmOutput
from tryon.pipeline import TryOnPipeline
from tryon.representation import PersonRepresentation, build_representation


class _Scores:
    """Per-image scores gathered over batches; NaNs (no ground truth) are left out."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}

    def add(self, name: str, scores: torch.Tensor | list[float]) -> None:
        flat = scores.detach().cpu().reshape(-1).tolist() if torch.is_tensor(scores) else scores
        self.values.setdefault(name, []).extend(v for v in flat if not math.isnan(v))

    def mean(self, name: str) -> float | None:
        values = self.values.get(name, [])
        return float(np.mean(values)) if values else None


@torch.inference_mode()
def evaluate(
    pipeline: TryOnPipeline,
    data: Path,
    pairs: str = "pairs.txt",
    limit: int | None = None,
    batch: int = 8,
    on_batch: Callable[[int, int], None] | None = None,
) -> dict:
    """Score `pipeline` on the paired dataset at `data`; returns the metrics dict.

    on_batch: called with (pairs done, pairs in all) after each batch, for progress bars.
    """
    started = time.perf_counter()
    dataset = VitonDataset(data, pairs=pairs, size=pipeline.size)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    scores = _Scores()
    parse_counts = torch.zeros((20, 20), dtype=torch.long)
    pck = [0, 0]
    device = pipeline.device
    for done in range(0, count, batch):
        # Each pair's files are read once: as tensors for the networks and as the
        # original photo for the production path.
        samples = [dataset.read_sample(i) for i in range(done, min(done + batch, count))]
        items = collate_tensors([sample_to_tensors(sample, pipeline.size) for sample in samples])
        b = {k: v.to(device) for k, v in items.items()}
        person, parse, keypoints = b["person"], b["parse"], b["keypoints"]

        # The parser alone.
        parse_logits, heatmaps = pipeline.parse(person)
        predicted_parse = parse_logits.argmax(1)
        predicted_keypoints = decode_keypoints(heatmaps)
        parse_counts += M.confusion(predicted_parse, parse).cpu()
        hits, total = M.pck_hits(predicted_keypoints, keypoints, M.person_heights(parse))
        pck[0] += hits
        pck[1] += total

        # GMM and TOM on the dataset's own analysis.
        truth = build_representation(person, parse, keypoints)
        warp, final_gt = try_on_at_model_resolution(pipeline, truth, b["cloth"], b["cloth_mask"])
        scores.add("warp_iou", M.mask_iou(warp.warped_mask, truth.garment_region))
        if "warp_gt" in b:
            scores.add(
                "warp_ssim", M.region_ssim(warp.warped_garment, b["warp_gt"], b["warp_gt_mask"])
            )
        scores.add("tryon_ssim_gt_parse", M.ssim(final_gt, person))

        # End to end at model resolution.
        seen = build_representation(person, predicted_parse, predicted_keypoints)
        _, final = try_on_at_model_resolution(pipeline, seen, b["cloth"], b["cloth_mask"])
        scores.add("tryon_ssim", M.ssim(final, person))
        scores.add("tryon_psnr", M.psnr(final, person))

        # Baselines, scored like the model.
        region = M.scoring_region(parse)
        for name, image in baselines(
            truth, b["cloth"], b["cloth_mask"], pipeline.keep_arms
        ).items():
            scores.add(f"baseline_{name}_ssim", M.ssim(image, person))
            scores.add(f"baseline_{name}_region_ssim", M.region_ssim(image, person, region))

        # The production path on the original photos, scored inside the region.
        for sample in samples:
            _score_full_pipeline(pipeline, sample, scores)
        if on_batch is not None:
            on_batch(done + len(samples), count)

    result: dict[str, float | int | str | dict | None] = {
        "weights": pipeline.meta.name,
        "precision": pipeline.precision_name,
        "parser_runtime": pipeline.parser_runtime_name,
        "keep_arms": pipeline.keep_arms,
        "parse_miou": M.mean_iou(parse_counts),
        "parse_miou_frequent": M.frequent_mean_iou(parse_counts),
        "pck_0.1": pck[0] / pck[1] if pck[1] else None,
    }
    for name in (
        "warp_iou",
        "warp_ssim",
        "tryon_ssim",
        "tryon_psnr",
        "tryon_ssim_gt_parse",
        "region_ssim",
        "region_l1",
        "region_gmsd",
        "painted_ssim",
        "region_sharpness",
        "baseline_grey_ssim",
        "baseline_grey_region_ssim",
        "baseline_affine_ssim",
        "baseline_affine_region_ssim",
    ):
        result[name] = scores.mean(name)
    # What the mean is made of: on real data a few labels with a handful of pixels in the
    # whole set (shoes, socks) weigh as much as the upper clothes.
    result["parse_iou_per_label"] = M.label_ious(parse_counts, PARSE_LABELS)
    result["n_samples"] = count
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def try_on_at_model_resolution(
    pipeline: TryOnPipeline,
    person: PersonRepresentation,
    cloth: torch.Tensor,
    cloth_mask: torch.Tensor,
) -> tuple[GmmOutput, torch.Tensor]:
    """The GMM's warp of `cloth` `(B, 3, H, W)` and `cloth_mask` `(B, 1, H, W)` onto `person`,
    and the try-on `(B, 3, H, W)` in [-1, 1] as the pipeline dresses it (`TryOnPipeline.dress`),
    before paste-back: what `tryon_ssim` scores."""
    warp = pipeline.warp_onto(person, cloth, cloth_mask)
    output = pipeline.render(person, warp.warped_garment, warp.warped_mask)
    return warp, pipeline.dress(person, warp, output)[0]


def _score_full_pipeline(pipeline: TryOnPipeline, sample, scores: _Scores) -> None:
    """Run the pipeline on the photo as a shopper would send it; score after paste-back."""
    photo = sample.person
    analysis = pipeline.analyse_person(photo)
    garments, masks = pipeline.prepare_garments([sample.cloth], [sample.cloth_mask])
    result = pipeline.try_on([analysis], garments, masks)[0]
    truth = image_to_tensor(photo)
    output = image_to_tensor(result.image)
    region = M.scoring_region(torch.from_numpy(sample.parse)[None].long())
    scores.add("region_ssim", M.region_ssim(output, truth, region))
    scores.add("region_l1", M.region_l1(output, truth, region))
    scores.add("region_gmsd", M.region_gmsd(output, truth, region))
    weight = blend_weight(photo.shape[:2], result.alpha, result.box)
    painted = region * torch.from_numpy(weight > 0.5)[None, None].float()
    scores.add("painted_ssim", M.region_ssim(output, truth, painted))
    scores.add("region_sharpness", M.region_sharpness(output, truth, painted))


@torch.inference_mode()
def unpaired_grid(
    pipeline: TryOnPipeline,
    data: Path,
    pairs: str | Path = "pairs.txt",
    count: int = 8,
    caption: str | None = None,
) -> np.ndarray:
    """A sheet of unpaired try-ons: rows of (person, garment, result), `(H, W, 3)` uint8.

    The people are the first `count` of `pairs` (the evaluated ones, so a held-out split
    shows held-out people), each dressed in the next pair's garment; a dataset's own
    `pairs_unpaired.txt` is used instead when `pairs` is the default. `caption` (e.g. the
    photos' source and licence) is written under the sheet.
    """
    own_unpaired = str(pairs) == "pairs.txt" and (Path(data) / "pairs_unpaired.txt").exists()
    chosen = "pairs_unpaired.txt" if own_unpaired else pairs  # see resolve_pairs_path
    dataset = VitonDataset(data, pairs=chosen, size=pipeline.size)
    rows = []
    for index in range(min(count, len(dataset))):
        sample = dataset.read_sample(index)
        if own_unpaired:
            cloth, mask = sample.cloth, sample.cloth_mask
        else:  # borrow the next pair's garment
            other = dataset.read_sample((index + 1) % len(dataset))
            cloth, mask = other.cloth, other.cloth_mask
        result = pipeline(sample.person, cloth, mask)
        tiles = [sample.person, cloth, result.image]
        rows.append(np.hstack([_resize(t, pipeline.size) for t in tiles]))
    sheet = np.vstack(rows)
    return sheet if caption is None else _with_caption(sheet, caption)


def _with_caption(sheet: np.ndarray, caption: str) -> np.ndarray:
    """`sheet` with `caption` in black on a white band below it, wrapped to its width."""
    font = ImageFont.load_default()
    chars_per_line = max(sheet.shape[1] // 7, 20)
    lines = textwrap.wrap(caption, chars_per_line)
    band = Image.new("RGB", (sheet.shape[1], 14 * len(lines) + 10), "white")
    draw = ImageDraw.Draw(band)
    for number, line in enumerate(lines):
        draw.text((6, 5 + 14 * number), line, fill="black", font=font)
    return np.vstack([sheet, np.asarray(band)])


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    tensor = resize_image(image_to_tensor(image), size)
    return ((tensor[0].clamp(-1, 1) + 1) * 127.5 + 0.5).byte().permute(1, 2, 0).numpy()


def write_grid(grid: np.ndarray, path: Path) -> None:
    """Save a sheet from `unpaired_grid` as PNG (its folder created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)
