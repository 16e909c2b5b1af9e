"""Where the whole-image try-on SSIM is lost, and what a perfect warp would give.

On paired samples with the dataset's own parse and keypoints (as `tryon_ssim_gt_parse`
scores them), two kinds of oracle:
- label oracles: the final image with the ground truth pasted over one group of pixels
  (the worn garment, the arms, the background inside the try-on region); what each
  raises the whole-image SSIM to is what that group costs; and the background fill
  (`PersonRepresentation.background_fill`) pasted where the truth shows background inside
  the region, neck excluded: what a TOM that shows the fill could gain at most;
- the warp oracle (synthetic data only, it needs `warp-gt/`): the TOM given the garment
  as it really lies on the body instead of the GMM's warp; the SSIM it reaches bounds what
  a better GMM can bring with this TOM;
- the parser's share of the end-to-end loss (`tryon_ssim`): the try-on on the parser's
  parse and keypoints, on its parse with the true keypoints, and on the true parse with
  its keypoints.
Prints the means over the samples (docs/training.md, "Where the score is lost").

    python docs/scripts/where_ssim_is_lost.py --data data/test --weights synthetic --n 96
"""

from __future__ import annotations

import argparse

import torch

from tryon.compositing import paste_into_region
from tryon.data.batches import collate_tensors
from tryon.data.viton import VitonDataset, sample_to_tensors
from tryon.eval import metrics as M
from tryon.eval.runner import try_on_at_model_resolution
from tryon.labels import ARM_LABELS, UPPER_CLOTHES_LABELS
from tryon.models import decode_keypoints
from tryon.pipeline import TryOnPipeline
from tryon.representation import build_representation, label_mask, visible_background


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--data", required=True, help="paired dataset, VITON layout")
    arguments.add_argument("--weights", default="synthetic", help="bundled name or folder")
    arguments.add_argument("--n", type=int, default=96, help="pairs to score (the first n)")
    arguments.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16"))
    args = arguments.parse_args()

    pipeline = TryOnPipeline.from_pretrained(args.weights, precision=args.precision)
    dataset = VitonDataset(args.data, size=pipeline.size)
    count = min(args.n, len(dataset))
    scores: dict[str, list[float]] = {}
    with torch.inference_mode():
        for start in range(0, count, 8):
            indices = range(start, min(start + 8, count))
            batch = collate_tensors(
                [sample_to_tensors(dataset.read_sample(i), pipeline.size) for i in indices]
            )
            for name, values in score_batch(pipeline, batch).items():
                scores.setdefault(name, []).extend(values.float().tolist())
    print(f"{count} pairs of {args.data}, weights {pipeline.meta.name}, {pipeline.precision_name}")
    for name, values in scores.items():
        print(f"{name:48s} {sum(values) / len(values):.4f}")


def score_batch(pipeline: TryOnPipeline, batch: dict) -> dict[str, torch.Tensor]:
    """Whole-image SSIM `(B,)` of the try-on and of each oracle, plus each group's share
    of the image."""
    person, parse = batch["person"], batch["parse"]
    truth = build_representation(person, parse, batch["keypoints"])
    _, final = try_on_at_model_resolution(pipeline, truth, batch["cloth"], batch["cloth_mask"])
    region = truth.tryon_region
    groups = {
        "worn garment": label_mask(parse, UPPER_CLOTHES_LABELS).float(),
        "arms": label_mask(parse, ARM_LABELS).float(),
        "background inside the try-on region": region * (parse == 0).unsqueeze(1).float(),
    }
    scores = {"try-on (GMM warp)": M.ssim(final, person)}
    for name, pixels in groups.items():
        scores[f"  share of the image: {name}"] = pixels.mean(dim=(1, 2, 3))
        oracle = final * (1 - pixels) + person * pixels
        scores[f"  with the true {name}"] = M.ssim(oracle, person)
    shown = visible_background(parse, batch["keypoints"], region)
    oracle = final * (1 - shown) + truth.background_fill() * shown
    scores["  with the background fill where the background shows"] = M.ssim(oracle, person)
    if "warp_gt" in batch:
        oracle = _final(pipeline, truth, batch["warp_gt"], batch["warp_gt_mask"])
        scores["try-on (true warp: warp-gt/)"] = M.ssim(oracle, person)
    parse_logits, heatmaps = pipeline.parse(person)
    seen_parse, seen_keypoints = parse_logits.argmax(1), decode_keypoints(heatmaps)
    for name, analysis in {
        "end to end (the parser's parse and keypoints)": (seen_parse, seen_keypoints),
        "  the parser's parse, the true keypoints": (seen_parse, batch["keypoints"]),
        "  the true parse, the parser's keypoints": (parse, seen_keypoints),
    }.items():
        seen = build_representation(person, *analysis)
        _, seen_final = try_on_at_model_resolution(
            pipeline, seen, batch["cloth"], batch["cloth_mask"]
        )
        scores[name] = M.ssim(seen_final, person)
    return scores


def _final(pipeline, truth, warped_garment, warped_mask) -> torch.Tensor:
    output = pipeline.render(truth, warped_garment, warped_mask)
    return paste_into_region(output.composite, truth.agnostic, truth.tryon_region)


if __name__ == "__main__":
    main()
