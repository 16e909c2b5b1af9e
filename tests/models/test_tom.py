from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tiny_models import fit, image

from tryon.models import TryOnGenerator, compose
from tryon.models.tom import add_background_head, add_residual_blocks

WEIGHTS = Path(__file__).resolve().parents[2] / "tryon" / "weights"


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


def test_residual_blocks_grow_a_trained_tom_without_changing_it_until_they_learn(
    tiny_tom: TryOnGenerator, tmp_path
) -> None:
    torch.manual_seed(0)
    person, garment, mask = image(1, 22, 64, 48), image(1, 3, 64, 48), image(1, 1, 64, 48, low=0.0)
    trained = tiny_tom.eval()
    grown = add_residual_blocks(trained, 2).eval()
    assert len(grown.unet.bottleneck) == 2
    before = trained(person, garment, mask).composite
    assert torch.allclose(grown(person, garment, mask).composite, before, atol=1e-6)

    grown.train()
    F.l1_loss(grown(person, garment, mask).composite, image(1, 3, 64, 48)).backward()
    assert grown.unet.bottleneck[0].layers[-1].weight.grad.abs().sum() > 0  # the blocks learn
    with torch.no_grad():  # as if the blocks had trained: the reload must keep them
        grown.unet.bottleneck[1].layers[-1].weight.fill_(1.0)
    grown.eval()
    after = grown(person, garment, mask).composite
    assert not torch.allclose(after, before, atol=1e-3)
    grown.save_pretrained(tmp_path / "tom")
    reloaded = TryOnGenerator.from_pretrained(tmp_path / "tom")
    assert reloaded.config["residual_blocks"] == 2
    assert torch.equal(reloaded(person, garment, mask).composite, after)
    with pytest.raises(ValueError, match="cannot drop"):
        add_residual_blocks(grown, 1)
    with pytest.raises(ValueError, match="0 or more"):
        TryOnGenerator(residual_blocks=-1)


def test_residual_blocks_keep_shapes_at_two_resolutions() -> None:
    tom = TryOnGenerator(
        base_channels=8, depth=4, max_channels=32, residual_blocks=2, background=False
    )
    for size in ((256, 192), (128, 96)):
        person, garment, mask = image(1, 22, *size), image(1, 3, *size), image(1, 1, *size)
        assert tom(person, garment, mask).composite.shape == (1, 3, *size)


def test_a_background_head_grows_a_trained_tom_and_shows_the_fill_where_it_opens(
    tiny_tom: TryOnGenerator, tmp_path
) -> None:
    torch.manual_seed(0)
    person, garment, mask = image(1, 22, 64, 48), image(1, 3, 64, 48), image(1, 1, 64, 48, low=0.0)
    fill = image(1, 3, 64, 48)
    trained = tiny_tom.eval()
    grown = add_background_head(trained).eval()
    assert grown.shows_background and not trained.shows_background
    before = trained(person, garment, mask).composite
    output = grown(person, garment, mask, fill)
    assert torch.allclose(output.composite, before, atol=1e-3)  # almost closed at the start
    assert output.background_mask.max() < 1e-4
    with pytest.raises(ValueError, match="pass the background fill"):
        grown(person, garment, mask)

    with torch.no_grad():  # as if it had learnt that the background shows everywhere
        grown.background_head.bias.fill_(30.0)
    assert torch.allclose(grown(person, garment, mask, fill).composite, fill, atol=1e-6)
    grown.save_pretrained(tmp_path / "tom")
    reloaded = TryOnGenerator.from_pretrained(tmp_path / "tom")
    assert reloaded.config["background"] is True
    assert torch.equal(reloaded(person, garment, mask, fill).composite, fill)
    with pytest.raises(ValueError, match="already has a background head"):
        add_background_head(grown)


def test_the_defaults_build_the_shipped_tom() -> None:
    """A plain `TryOnGenerator()` is the network the synthetic weights ship (every argument of
    the bundled config.json, which names them all)."""
    bundled = json.loads((WEIGHTS / "synthetic" / "tom" / "config.json").read_text())
    expected = {k: v for k, v in bundled.items() if not k.startswith("_")}
    assert TryOnGenerator().config == expected
