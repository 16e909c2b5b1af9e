"""What the loss settings of a recipe do to training: the GMM's grid weight, the TOM's GAN
and SSIM terms, its background head, and fine-tuning the GMM beside it."""

from __future__ import annotations

import pytest
import torch
from tiny_trainers import tiny_gmm_trainer, tiny_tom_trainer

from tryon.data.batches import collate_tensors
from tryon.data.viton import VitonDataset
from tryon.models.gmm import grid_regularisation
from tryon.representation import build_representation
from tryon.train.components import HEAD_LR_FACTOR, region_ssim_loss

SIZE = (128, 96)


def _bending_after_training(train_data, grid_weight: float) -> float:
    """Grid regulariser of the warps of a tiny GMM after 15 steps with `grid_weight`."""
    trainer = tiny_gmm_trainer(lr=3e-3, grid_weight=grid_weight)
    gmm = trainer.gmm
    data = VitonDataset(train_data, size=SIZE)
    batch = collate_tensors([data[i] for i in range(len(data))])
    for step in range(15):
        trainer.train_step(batch, step)
    gmm.eval()
    with torch.no_grad():
        rep = build_representation(batch["person"], batch["parse"], batch["keypoints"])
        output = gmm(rep.gmm_input(), batch["cloth"], batch["cloth_mask"])
    return grid_regularisation(output.source_points).item()


def test_a_higher_grid_weight_keeps_the_learnt_warp_closer_to_affine(train_data):
    assert _bending_after_training(train_data, 10.0) < 0.5 * _bending_after_training(
        train_data, 0.0
    )


def test_without_gan_weights_the_tom_trains_alone(train_data):
    data = VitonDataset(train_data, size=SIZE)
    batch = collate_tensors([data[i] for i in range(2)])
    for weights, discriminator_learns in (
        ({}, True),
        ({"adversarial_weight": 0, "feature_weight": 0}, False),
    ):
        trainer = tiny_tom_trainer(lr=1e-3, **weights)
        before = [p.clone() for p in trainer.discriminator.parameters()]
        tom_before = [p.clone() for p in trainer.tom.parameters()]
        losses = trainer.train_step(batch, 0)
        after = trainer.discriminator.parameters()
        moved = any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
        assert moved == discriminator_learns
        assert ("d" in losses) == discriminator_learns
        assert any(
            not torch.equal(a, b) for a, b in zip(tom_before, trainer.tom.parameters(), strict=True)
        )


def test_the_tom_ssim_loss_looks_only_inside_the_try_on_region():
    """1 - SSIM over the region: 0 for the photo itself, and the same for a region painted
    alike whatever share of the image it covers (a whole-image mean would shrink it)."""
    torch.manual_seed(0)
    photo = torch.rand(1, 3, 64, 96) * 2 - 1
    painted = photo.clone()
    painted[..., 16:48, 16:48] = torch.rand(1, 3, 32, 32) * 2 - 1
    region = torch.zeros(1, 1, 64, 96)
    region[..., 16:48, 16:48] = 1
    small = region_ssim_loss(painted, photo, region)
    assert region_ssim_loss(photo, photo, region).item() == pytest.approx(0, abs=1e-4)
    assert small.item() > 0.5
    wide = torch.cat([painted, photo], dim=-1)
    wide_photo = torch.cat([photo, photo], dim=-1)
    wide_region = torch.cat([region, torch.zeros_like(region)], dim=-1)
    assert region_ssim_loss(wide, wide_photo, wide_region).item() == pytest.approx(
        small.item(), rel=0.02
    )


def test_the_background_head_learns_where_the_dataset_shows_background(train_data):
    data = VitonDataset(train_data, size=SIZE)
    batch = collate_tensors([data[i] for i in range(2)])
    trainer = tiny_tom_trainer(lr=1e-4, background=True, adversarial_weight=0, feature_weight=0)
    body, heads = trainer.optimizers["tom"].param_groups  # the new head learns faster
    assert heads["lr"] == HEAD_LR_FACTOR * body["lr"] == HEAD_LR_FACTOR * 1e-4
    bias = trainer.tom.background_head.bias
    start = float(bias.detach())
    losses = [trainer.train_step(batch, step)["background"] for step in range(3)]
    assert float(bias.detach()) > start  # the dataset shows background in the region: it opens
    assert losses[-1] < losses[0]


def test_tune_gmm_trains_the_gmm_through_the_final_image_and_saves_it_beside_the_tom(train_data):
    data = VitonDataset(train_data, size=SIZE)
    batch = collate_tensors([data[i] for i in range(2)])
    weights = {"adversarial_weight": 0, "feature_weight": 0}
    for tune_gmm in (None, 0.0, 1.0):
        trainer = tiny_tom_trainer(lr=1e-3, tune_gmm=tune_gmm, **weights)
        before = [p.clone() for p in trainer.gmm.parameters()]
        losses = trainer.train_step(batch, 0)
        moved = any(
            not torch.equal(a, b) for a, b in zip(before, trainer.gmm.parameters(), strict=True)
        )
        # Even with no warp loss (0) the final image's losses reach the GMM.
        assert moved == (tune_gmm is not None)
        assert ("warp" in losses) == (tune_gmm is not None)
