"""Two baselines every evaluation reports beside the model, computed in the same run.

- grey: the try-on region filled grey, the rest of the photo copied;
- affine: the same, then the product garment pasted by the affine map (scale and shift)
  that takes its mask's bounding box onto the bounding box of the worn garment region.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tryon.representation import PersonRepresentation


def _bounding_boxes(mask: torch.Tensor) -> torch.Tensor:
    """`(B, 4)` float (x0, y0, x1, y1) of each `(B, 1, H, W)` mask (the whole image if empty)."""
    b, _, h, w = mask.shape
    on = mask[:, 0] > 0.5
    boxes = []
    for i in range(b):
        ys, xs = torch.nonzero(on[i], as_tuple=True)
        if len(xs) == 0:
            boxes.append(torch.tensor([0.0, 0.0, w, h]))
        else:
            boxes.append(torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float())
    return torch.stack(boxes).to(mask.device)


def affine_paste(
    garment: torch.Tensor, garment_mask: torch.Tensor, target_region: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each garment so its mask's box lands on the target region's box.

    Args:
        garment: `(B, 3, H, W)` in [-1, 1]; garment_mask, target_region: `(B, 1, H, W)`.

    Returns:
        The moved garment and its mask, same shapes.
    """
    _, _, h, w = garment.shape
    source, target = _bounding_boxes(garment_mask), _bounding_boxes(target_region)
    # affine_grid maps output coordinates (normalised, align_corners=False) to input ones.
    scale_x = (source[:, 2] - source[:, 0]) / (target[:, 2] - target[:, 0]).clamp_min(1)
    scale_y = (source[:, 3] - source[:, 1]) / (target[:, 3] - target[:, 1]).clamp_min(1)
    norm = lambda v, size: v / size * 2 - 1  # noqa: E731
    shift_x = norm(source[:, 0], w) - norm(target[:, 0], w) * scale_x
    shift_y = norm(source[:, 1], h) - norm(target[:, 1], h) * scale_y
    theta = torch.zeros((garment.shape[0], 2, 3), device=garment.device)
    theta[:, 0, 0], theta[:, 0, 2] = scale_x, shift_x
    theta[:, 1, 1], theta[:, 1, 2] = scale_y, shift_y
    grid = F.affine_grid(theta, list(garment.shape), align_corners=False)
    both = F.grid_sample(torch.cat((garment, garment_mask), 1), grid, align_corners=False)
    return both[:, :3], both[:, 3:]


def baselines(
    person: PersonRepresentation,
    garment: torch.Tensor,
    garment_mask: torch.Tensor,
    keep_arms: bool,
) -> dict[str, torch.Tensor]:
    """The grey and affine baselines, `(B, 3, H, W)` in [-1, 1] each, for `person` (the
    dataset's own analysis) in `garment` `(B, 3, H, W)` with its mask `(B, 1, H, W)`.

    They repaint what the pipeline would: with `keep_arms` the arms that the affine-pasted
    garment leaves bare stay the photo's, as the pipeline keeps those its warp leaves bare.
    """
    moved, moved_mask = affine_paste(garment, garment_mask, person.garment_region)
    region = person.repainted_region(moved_mask if keep_arms else None)
    return {
        "grey": person.dressed(torch.zeros_like(moved), region),
        "affine": person.dressed(moved * moved_mask, region),
    }
