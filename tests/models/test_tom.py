from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny_models import fit, image

from tryon.models import TryOnGenerator, compose


@pytest.mark.parametrize("size", [(256, 192), (128, 96)])
def test_shapes_ranges_and_backward(tiny_tom: TryOnGenerator, size: tuple[int, int]) -> None:
    person, garment, mask = image(2, 22, *size), image(2, 3, *size), image(2, 1, *size, low=0.0)
    output = tiny_tom(person, garment, mask)
    assert output.rendered.shape == (2, 3, *size)
    assert output.composition_mask.shape == (2, 1, *size)
    assert output.composite.shape == (2, 3, *size)
    assert output.rendered.abs().max() <= 1.0
    assert output.composition_mask.min() >= 0.0 and output.composition_mask.max() <= 1.0
    output.composite.mean().backward()
    assert tiny_tom.unet.head.weight.grad is not None


def test_compose_keeps_the_garment_where_the_mask_is_one() -> None:
    garment, rendered = image(1, 3, 8, 6), image(1, 3, 8, 6)
    mask = torch.zeros(1, 1, 8, 6)
    mask[..., :4, :] = 1.0
    final = compose(garment, rendered, mask)
    assert torch.equal(final[..., :4, :], garment[..., :4, :])
    assert torch.equal(final[..., 4:, :], rendered[..., 4:, :])


def test_training_steps_lower_the_loss(tiny_tom: TryOnGenerator) -> None:
    person, garment, mask = image(2, 22, 64, 48), image(2, 3, 64, 48), image(2, 1, 64, 48, low=0.0)
    target = image(2, 3, 64, 48)

    def loss() -> torch.Tensor:
        return F.l1_loss(tiny_tom(person, garment, mask).composite, target)

    first, last = fit(tiny_tom, loss)
    assert last < 0.95 * first
