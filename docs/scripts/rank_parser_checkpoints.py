"""Rank parser checkpoints by the try-on they lead to, end to end, with one GMM and TOM.

A parser run keeps its best step by `parse_miou`, but the GMM and TOM read the pose from
its keypoints too, and the try-on is what the shopper sees. This script puts each parser
folder in front of the GMM and TOM of `--weights` and scores, on held-out pairs at model
resolution, what `tryon eval` scores end to end: the whole-image SSIM of the try-on
(`tryon_ssim`), the SSIM inside the scored try-on region, and the keypoints' mean distance
from the visible true ones in pixels (docs/training.md, "Choosing a parser step").
Snapshot the run's `parser/` folder at each checkpoint to have candidates.

    python docs/scripts/rank_parser_checkpoints.py --data data/val --weights synthetic \\
        runs/snapshots/step_875 runs/snapshots/step_1250
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from tryon.data.batches import collate_tensors
from tryon.data.viton import VitonDataset, sample_to_tensors
from tryon.eval import metrics as M
from tryon.eval.runner import try_on_at_model_resolution
from tryon.models import HumanParser, decode_keypoints
from tryon.models.bundle import load_pipeline_components
from tryon.models.folding import fold_batch_norms
from tryon.pipeline import TryOnPipeline, weights_folder
from tryon.representation import build_representation


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("parsers", nargs="+", type=Path, help="parser folders to rank")
    arguments.add_argument("--data", required=True, help="held-out paired dataset, VITON layout")
    arguments.add_argument("--pairs", default="pairs.txt", help="pairs file in --data")
    arguments.add_argument("--weights", default="synthetic", help="the GMM and TOM: name or folder")
    arguments.add_argument("--n", type=int, default=96, help="pairs to score (the first n)")
    arguments.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16"))
    args = arguments.parse_args()

    parts = load_pipeline_components(weights_folder(args.weights))
    gmm, tom = fold_batch_norms(parts.gmm), fold_batch_norms(parts.tom)
    dataset = VitonDataset(args.data, pairs=args.pairs, size=tuple(parts.meta.resolution))
    count = min(args.n, len(dataset))
    batches = [
        collate_tensors(
            [
                sample_to_tensors(dataset.read_sample(i), dataset.size)
                for i in range(start, min(start + 8, count))
            ]
        )
        for start in range(0, count, 8)
    ]
    print(f"{count} pairs of {args.data}, GMM and TOM of {args.weights}")
    print(f"{'parser':48s} tryon_ssim  region_ssim  keypoint_error")
    for folder in ["bundled", *args.parsers]:
        parser = parts.parser if folder == "bundled" else HumanParser.from_pretrained(folder)
        pipeline = TryOnPipeline(
            fold_batch_norms(parser), gmm, tom, parts.meta, precision=args.precision, folded=True
        )
        scores = score(pipeline, batches)
        print(
            f"{str(folder):48s} {scores['tryon_ssim']:.4f}      {scores['region_ssim']:.4f}"
            f"       {scores['keypoint_error']:.3f} px",
            flush=True,
        )


@torch.inference_mode()
def score(pipeline: TryOnPipeline, batches: list[dict]) -> dict[str, float]:
    """Mean end-to-end scores of `pipeline` over `batches` (model resolution)."""
    whole, region, distances = [], [], []
    for batch in batches:
        person = batch["person"]
        parse_logits, heatmaps = pipeline.parse(person)
        keypoints = decode_keypoints(heatmaps)
        distances.append(M.visible_keypoint_distances(keypoints, batch["keypoints"]))
        seen = build_representation(person, parse_logits.argmax(1), keypoints)
        _, final = try_on_at_model_resolution(pipeline, seen, batch["cloth"], batch["cloth_mask"])
        whole.append(M.ssim(final, person))
        region.append(M.region_ssim(final, person, M.scoring_region(batch["parse"])))
    return {
        "tryon_ssim": float(torch.cat(whole).mean()),
        "region_ssim": float(torch.cat(region).nanmean()),
        "keypoint_error": float(torch.cat(distances).mean()),
    }


if __name__ == "__main__":
    main()
