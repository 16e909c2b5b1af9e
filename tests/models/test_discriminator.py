from __future__ import annotations

import pytest
import torch
from tiny_models import fit, image

from tryon.models import (
    MultiScaleDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)


@pytest.mark.parametrize("size", [(256, 192), (128, 96)])
def test_one_output_per_scale_with_features(
    tiny_discriminator: MultiScaleDiscriminator, size: tuple[int, int]
) -> None:
    condition, picture = image(2, 26, *size), image(2, 3, *size).requires_grad_()
    outputs = tiny_discriminator(condition, picture)
    assert len(outputs) == 2
    (fine_logits, fine_features), (coarse_logits, coarse_features) = outputs
    assert fine_logits.shape[:2] == (2, 1) and coarse_logits.shape[:2] == (2, 1)
    assert coarse_logits.shape[-1] < fine_logits.shape[-1]
    assert len(fine_features) == len(coarse_features) == 3
    generator_adversarial_loss(outputs).backward()
    assert picture.grad is not None and picture.grad.abs().sum() > 0


@pytest.mark.parametrize("mode", ["hinge", "lsgan"])
def test_discriminator_learns_to_tell_real_from_fake(
    tiny_discriminator: MultiScaleDiscriminator, mode: str
) -> None:
    condition = image(2, 26, 64, 48)
    real, fake = image(2, 3, 64, 48), image(2, 3, 64, 48)

    def loss() -> torch.Tensor:
        return discriminator_loss(
            tiny_discriminator(condition, real), tiny_discriminator(condition, fake), mode
        )

    first, last = fit(tiny_discriminator, loss)
    assert last < 0.9 * first


def test_feature_matching_is_zero_for_identical_images(
    tiny_discriminator: MultiScaleDiscriminator,
) -> None:
    condition, picture = image(1, 26, 64, 48), image(1, 3, 64, 48)
    tiny_discriminator.eval()
    same = feature_matching_loss(
        tiny_discriminator(condition, picture), tiny_discriminator(condition, picture)
    )
    other = feature_matching_loss(
        tiny_discriminator(condition, picture), tiny_discriminator(condition, image(1, 3, 64, 48))
    )
    assert same == 0.0 and other > 0.0


def test_unknown_gan_loss_names_the_choices(tiny_discriminator: MultiScaleDiscriminator) -> None:
    outputs = tiny_discriminator(image(1, 26, 64, 48), image(1, 3, 64, 48))
    with pytest.raises(ValueError, match=r"supported: \['hinge', 'lsgan'\]"):
        generator_adversarial_loss(outputs, mode="wgan")  # type: ignore[arg-type]
