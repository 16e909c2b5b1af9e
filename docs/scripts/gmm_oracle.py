"""The GMM's ceiling: fit 5x5 TPS control points directly to each sample, no network.

Starts from a GMM's own prediction and runs Adam on the control points with the main
terms of the GMM's training loss (garment L1, mask L1, soft Dice and the grid regulariser
at each weight given; not the 1/4 and 1/16 copies, nor the tanh bound on the offsets),
then prints the warp IoU that `tryon train --val-data` and `tryon eval` report. What the
fit reaches at a grid weight approximates the best a GMM trained with that weight can do
on these samples (docs/training.md, round 5).

    python docs/scripts/gmm_oracle.py --data data/val --n 40 --grid-weights 1 0.3 0.1 0
"""

from __future__ import annotations

import argparse

import torch

from tryon.data.viton import VitonDataset
from tryon.eval.metrics import mask_iou
from tryon.models import GeometricMatcher
from tryon.models.gmm import GmmOutput, gmm_loss, grid_regularisation
from tryon.models.tps import warp_tps
from tryon.representation import build_representation
from tryon.train.components import gmm_targets, soft_dice_loss
from tryon.train.loop import collate_tensors


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--data", required=True, help="paired dataset (VITON layout)")
    arguments.add_argument("--pairs", default="pairs.txt", help="pairs file, in --data or a path")
    arguments.add_argument("--n", type=int, default=40, help="samples to fit")
    arguments.add_argument("--gmm", default="tryon/weights/synthetic/gmm", help="starting GMM")
    arguments.add_argument("--grid-weights", type=float, nargs="+", default=[1.0, 0.1, 0.0])
    arguments.add_argument("--steps", type=int, default=300, help="Adam steps per fit")
    args = arguments.parse_args()

    dataset = VitonDataset(args.data, pairs=args.pairs)
    batch = collate_tensors([dataset[i] for i in range(min(args.n, len(dataset)))])
    gmm = GeometricMatcher.from_pretrained(args.gmm)
    rep = build_representation(batch["person"], batch["parse"], batch["keypoints"])
    with torch.no_grad():
        predicted = gmm(rep.gmm_input(), batch["cloth"], batch["cloth_mask"])
    start_iou = mask_iou(predicted.warped_mask, rep.garment_region).nanmean()
    print(f"GMM {args.gmm}: warp_iou {start_iou:.3f}")
    target, target_mask = gmm_targets(batch)
    garment = torch.cat((batch["cloth"] * batch["cloth_mask"], batch["cloth_mask"]), 1)
    for grid_weight in args.grid_weights:
        points = predicted.source_points.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([points], lr=0.01)
        for _ in range(args.steps):
            warped = warp_tps(garment, points)
            output = GmmOutput(warped[:, :3], warped[:, 3:], points)
            loss = gmm_loss(output, target, target_mask, grid_weight) + soft_dice_loss(
                output.warped_mask, target_mask
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            mask = warp_tps(garment, points)[:, 3:]
            iou = mask_iou(mask, rep.garment_region).nanmean()
            bending = grid_regularisation(points)
        print(f"grid weight {grid_weight:g}: warp_iou {iou:.3f}, grid regulariser {bending:.3f}")


if __name__ == "__main__":
    main()
