from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tiny_models import fit, image

from tryon.models import GeometricMatcher, gmm_loss, grid_regularisation, regular_grid, warp_tps
from tryon.models.gmm import (
    add_flow_stage,
    add_refinement_stages,
    flow_smoothness,
    half_resolution,
)

WEIGHTS = Path(__file__).resolve().parents[2] / "tryon" / "weights"


@pytest.mark.parametrize("size", [(256, 192), (128, 96)])
def test_shapes_and_backward(tiny_gmm: GeometricMatcher, size: tuple[int, int]) -> None:
    person, garment, mask = (
        image(2, 22, *size, low=0.0),
        image(2, 3, *size),
        image(2, 1, *size, low=0.0),
    )
    output = tiny_gmm(person, garment, mask)
    assert output.warped_garment.shape == (2, 3, *size)
    assert output.warped_mask.shape == (2, 1, *size)
    assert output.source_points.shape == (2, 4, 3, 2)
    gmm_loss(output, garment, mask).backward()
    assert all(p.grad is not None for p in tiny_gmm.regressor.parameters())


def test_an_untrained_matcher_does_not_warp(tiny_gmm: GeometricMatcher) -> None:
    garment, mask = image(1, 3, 64, 48), image(1, 1, 64, 48, low=0.0)
    output = tiny_gmm(image(1, 22, 64, 48, low=0.0), garment, mask)
    # The garment's background (mask 0) is greyed before warping.
    assert (output.warped_garment - garment * mask).abs().max() < 1e-4
    assert (output.warped_mask - mask).abs().max() < 1e-4


def test_garment_mask_input_is_optional() -> None:
    gmm = GeometricMatcher(
        use_garment_mask=False,
        feature_channels=(8, 8, 8, 8),
        regressor_width=8,
        refinement_stages=0,
        flow_stage=False,
    )
    assert gmm.garment_features.layers[0][0].in_channels == 3
    output = gmm(image(1, 22, 64, 48), image(1, 3, 64, 48), image(1, 1, 64, 48, low=0.0))
    assert output.source_points.shape == (1, 5, 5, 2)


def test_rejects_sizes_not_divisible_by_16(tiny_gmm: GeometricMatcher) -> None:
    with pytest.raises(ValueError, match="divisible by 16"):
        tiny_gmm(image(1, 22, 60, 48), image(1, 3, 60, 48), image(1, 1, 60, 48))


def test_grid_regularisation_is_zero_for_affine_grids_only() -> None:
    grid = regular_grid((5, 5))[None]
    affine = grid @ torch.tensor([[1.2, 0.1], [-0.2, 0.9]]) + torch.tensor([0.1, -0.3])
    assert grid_regularisation(affine) < 1e-6
    bent = grid.clone()
    bent[0, 2, 2] += 0.2
    assert grid_regularisation(bent) > 0.01


def test_training_steps_lower_the_loss(tiny_gmm: GeometricMatcher) -> None:
    person, garment, mask = (
        image(2, 22, 64, 48, low=0.0),
        image(2, 3, 64, 48),
        image(2, 1, 64, 48, low=0.0),
    )
    # The garment as worn: the same garment sampled from a slightly shifted grid.
    worn_points = regular_grid((4, 3))[None].expand(2, -1, -1, -1) + torch.tensor([0.1, 0.05])
    worn = warp_tps(torch.cat((garment, mask), 1), worn_points)

    def loss() -> torch.Tensor:
        return gmm_loss(tiny_gmm(person, garment, mask), worn[:, :3], worn[:, 3:])

    first, last = fit(tiny_gmm, loss, lr=1e-3)
    assert last < 0.95 * first


def _refined_gmm(stages: int) -> GeometricMatcher:
    return GeometricMatcher(
        feature_channels=(8, 8, 16, 16),
        regressor_width=8,
        correlation_size=(8, 6),
        grid_size=(4, 3),
        refinement_stages=stages,
        flow_stage=False,
    )


def _saved_and_reloaded(gmm: GeometricMatcher, tmp_path) -> GeometricMatcher:
    """`gmm` written as a component folder and read back, in eval mode."""
    gmm.save_pretrained(tmp_path / "gmm")
    return GeometricMatcher.from_pretrained(tmp_path / "gmm").eval()


@pytest.mark.parametrize("size", [(256, 192), (128, 96)])
def test_refinement_stages_learn_and_keep_the_output_shapes(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    gmm = _refined_gmm(2)
    with torch.no_grad():  # stages that already correct something
        for refiner in gmm.refiners:
            refiner.regressor.linear.weight.normal_(0, 0.01)
    garment, mask = image(2, 3, *size), image(2, 1, *size, low=0.0)
    output = gmm(image(2, 22, *size, low=0.0), garment, mask)
    assert output.warped_garment.shape == (2, 3, *size)
    assert output.source_points.shape == (2, 4, 3, 2)
    gmm_loss(output, garment, mask).backward()
    for refiner in gmm.refiners:
        assert refiner.features.layers[0][0].weight.grad.abs().sum() > 0


def test_adding_refinement_stages_keeps_a_trained_warp_until_they_learn(tmp_path) -> None:
    torch.manual_seed(0)
    trained = _refined_gmm(0)
    with torch.no_grad():  # a GMM that warps: its regressor's last layer is no longer zero
        trained.regressor.linear.bias.normal_(0, 0.1)
    person, garment, mask = image(1, 22, 64, 48, low=0.0), image(1, 3, 64, 48), image(1, 1, 64, 48)
    grown = add_refinement_stages(trained.eval(), 2).eval()
    assert len(grown.refiners) == 2
    before, after = trained(person, garment, mask), grown(person, garment, mask)
    assert (before.warped_garment - garment * mask).abs().max() > 0.01
    assert torch.allclose(before.warped_garment, after.warped_garment, atol=1e-6)

    with torch.no_grad():  # as if the stages had trained: the reload must keep them
        for refiner in grown.refiners:
            refiner.regressor.linear.weight.normal_(0, 0.01)
    after = grown(person, garment, mask)
    assert not torch.allclose(after.source_points, before.source_points)
    reloaded = _saved_and_reloaded(grown, tmp_path)
    assert reloaded.config["refinement_stages"] == 2
    assert torch.equal(reloaded(person, garment, mask).source_points, after.source_points)
    with pytest.raises(ValueError, match="cannot drop"):
        add_refinement_stages(grown, 1)
    with pytest.raises(ValueError, match="0 or more"):
        _refined_gmm(-1)


@pytest.mark.parametrize("size", [(256, 192), (128, 96)])
def test_a_flow_stage_keeps_shapes_and_learns_at_two_resolutions(size) -> None:
    torch.manual_seed(0)
    gmm = GeometricMatcher(
        feature_channels=(8, 8, 16, 16), regressor_width=8, grid_size=(4, 3), flow_stage=True
    )
    garment, mask = image(2, 3, *size), image(2, 1, *size, low=0.0)
    output = gmm(image(2, 22, *size, low=0.0), garment, mask)
    assert output.warped_garment.shape == (2, 3, *size)
    assert output.flow.shape == (2, 2, *size)
    assert output.flow.abs().max() == 0  # untrained: the spline's warp as it is
    gmm_loss(output, garment, mask).backward()
    assert gmm.flow.unet.head.weight.grad.abs().sum() > 0
    assert gmm.regressor.linear.weight.grad.abs().sum() > 0  # the spline still learns


def test_adding_a_flow_stage_keeps_a_trained_warp_until_it_learns(tmp_path) -> None:
    torch.manual_seed(0)
    trained = _refined_gmm(1)
    with torch.no_grad():  # a GMM that warps: its regressor's last layer is no longer zero
        trained.regressor.linear.bias.normal_(0, 0.1)
    person, garment, mask = image(1, 22, 64, 48, low=0.0), image(1, 3, 64, 48), image(1, 1, 64, 48)
    grown = add_flow_stage(trained.eval()).eval()
    before, after = trained(person, garment, mask), grown(person, garment, mask)
    assert torch.allclose(before.warped_garment, after.warped_garment, atol=1e-6)

    with torch.no_grad():  # as if the stage had trained: the reload must keep it
        grown.flow.unet.head.bias.fill_(0.05)
    after = grown(person, garment, mask)
    assert not torch.allclose(after.warped_garment, before.warped_garment, atol=1e-3)
    reloaded = _saved_and_reloaded(grown, tmp_path)
    assert reloaded.config["flow_stage"] is True
    assert torch.equal(reloaded(person, garment, mask).warped_garment, after.warped_garment)


def test_flow_smoothness_charges_noise_not_a_smooth_shift() -> None:
    torch.manual_seed(0)
    shift = torch.full((1, 2, 64, 48), 0.1)
    ramp = torch.linspace(0, 0.2, 48).expand(1, 2, 64, 48)
    noise = 0.02 * torch.randn(1, 2, 64, 48)
    assert flow_smoothness(shift).item() == 0
    # 0.2 over the width, which spans 2 normalised units
    assert flow_smoothness(ramp).item() == pytest.approx(0.1, rel=0.05)
    # The same ramp at twice the resolution costs the same.
    fine_ramp = torch.linspace(0, 0.2, 96).expand(1, 2, 128, 96)
    assert flow_smoothness(fine_ramp).item() == pytest.approx(flow_smoothness(ramp).item(), 0.05)
    assert flow_smoothness(noise).item() > 10 * flow_smoothness(ramp).item()


def test_a_flow_stage_fits_a_sleeve_the_spline_cannot() -> None:
    """A garment whose left half moves down while the right half stays: no smooth 4x3
    spline fits that step; the flow stage, trained on the same few steps, fits it better."""
    torch.manual_seed(0)
    garment = torch.zeros(1, 3, 64, 48)
    garment[..., 8:40, 8:40] = torch.linspace(-1, 1, 32).view(1, 1, 32, 1)
    mask = (garment.abs().sum(1, keepdim=True) > 0).float()
    target, target_mask = garment.clone(), mask.clone()
    target[..., :, :24] = torch.roll(garment[..., :, :24], 8, dims=-2)
    target_mask[..., :, :24] = torch.roll(mask[..., :, :24], 8, dims=-2)
    person = image(1, 22, 64, 48, low=0.0)

    def final_loss(gmm: GeometricMatcher) -> float:
        def loss() -> torch.Tensor:
            return gmm_loss(gmm(person, garment, mask), target * target_mask, target_mask)

        return fit(gmm, loss, steps=60, lr=3e-3)[1]

    spline_only, with_flow = _refined_gmm(0), add_flow_stage(_refined_gmm(0))
    assert final_loss(with_flow) < 0.8 * final_loss(spline_only)


@pytest.mark.parametrize("size", [(256, 192), (64, 48)])
def test_half_resolution_is_the_mean_of_each_two_by_two_block(size) -> None:
    x = torch.randn(2, 22, *size)
    assert torch.allclose(half_resolution(x), F.avg_pool2d(x, 2), atol=1e-6)


def test_the_defaults_build_the_shipped_gmm() -> None:
    """A plain `GeometricMatcher()` is the network the synthetic weights ship (every argument of
    the bundled config.json, which names them all)."""
    bundled = json.loads((WEIGHTS / "synthetic" / "gmm" / "config.json").read_text())
    expected = {k: v for k, v in bundled.items() if not k.startswith("_")}
    assert GeometricMatcher().config == expected
