"""bfloat16 networks: only their convolutions change precision; outputs stay float32."""

from __future__ import annotations

import copy

import pytest
import torch
from tiny_models import TINY_FACTORIES, image

from tryon.models import PRECISIONS, in_precision, resolve_precision, store_weights_in
from tryon.models.precision import convolution_input, cpu_multiplies_bfloat16
from tryon.models.tom import add_background_head


def test_precision_names_resolve_to_dtypes_and_unknown_ones_name_the_choices():
    assert resolve_precision("float32") == torch.float32
    assert resolve_precision("bfloat16") == torch.bfloat16
    # auto only lowers precision where the CPU multiplies bfloat16 natively.
    expected = torch.bfloat16 if cpu_multiplies_bfloat16() else torch.float32
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("auto", torch.device("cuda")) == torch.float32
    with pytest.raises(ValueError, match="float16.*choose one of auto, float32, bfloat16"):
        resolve_precision("float16")
    assert set(PRECISIONS) == {"auto", "float32", "bfloat16"}


def test_float32_leaves_the_network_as_it_is():
    tom = TINY_FACTORIES["tom"]()
    assert in_precision(tom, torch.float32) is tom


def test_a_bfloat16_network_returns_float32_close_to_the_float32_network():
    torch.manual_seed(0)
    # With the background head, every output field is a tensor.
    tom = add_background_head(TINY_FACTORIES["tom"]()).eval()
    person, garment, mask = image(2, 22, 64, 48), image(2, 3, 64, 48), image(2, 1, 64, 48, 0)
    fill = image(2, 3, 64, 48)
    with torch.no_grad():
        exact = tom(person, garment, mask, fill)
        lowered = in_precision(tom, torch.bfloat16)(person, garment, mask, fill)
    for name, value in lowered._asdict().items():
        assert value.dtype == torch.float32, name
    # bfloat16 keeps 8 bits of mantissa: the rendering moves by parts in a thousand.
    difference = (lowered.composite - exact.composite).abs()
    assert 0 < difference.mean() < 0.01


def test_gradients_flow_through_a_bfloat16_network_to_float32_weights():
    torch.manual_seed(0)
    tom = TINY_FACTORIES["tom"]()
    person, garment, mask = image(2, 22, 64, 48), image(2, 3, 64, 48), image(2, 1, 64, 48, 0)
    output = in_precision(tom, torch.bfloat16)(person, garment, mask)
    output.composite.abs().mean().backward()
    weights = [p for p in tom.parameters() if p.grad is not None]
    assert weights and all(p.grad.dtype == torch.float32 for p in weights)
    assert all(p.dtype == torch.float32 for p in tom.parameters())


def test_weights_stored_in_bfloat16_give_what_autocast_gives_without_the_copies():
    torch.manual_seed(0)
    tom = TINY_FACTORIES["tom"]().eval()
    stored = store_weights_in(copy.deepcopy(tom), torch.bfloat16)
    person, garment, mask = image(1, 22, 64, 48), image(1, 3, 64, 48), image(1, 1, 64, 48, 0)
    with torch.no_grad():
        autocast = in_precision(tom, torch.bfloat16)(person, garment, mask)
        kept = in_precision(stored, torch.bfloat16)(person, garment, mask)
    convolutions = [m for m in stored.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convolutions and all(m.weight.dtype == torch.bfloat16 for m in convolutions)
    # autocast rounds the float32 weights to bfloat16 on each call; stored, they are
    # rounded once, to the same values.
    torch.testing.assert_close(kept.composite, autocast.composite, atol=1e-6, rtol=0)


def _convolution(channels: int, layout: torch.memory_format) -> torch.nn.Conv2d:
    return torch.nn.Conv2d(channels, 8, 3, padding=1).to(memory_format=layout)


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_a_convolution_input_holds_the_parts_in_the_convolutions_dtype_and_layout(layout):
    parts = [image(2, 22, 32, 24), image(2, 3, 32, 24), image(2, 1, 32, 24, 0)]
    convolution = _convolution(26, layout)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        joined = convolution_input(convolution, *parts)
    assert joined.dtype == torch.bfloat16
    assert joined.is_contiguous(memory_format=layout)
    torch.testing.assert_close(joined, torch.cat(parts, 1).to(torch.bfloat16), atol=0, rtol=0)
    # Without autocast the parts keep their dtype.
    assert convolution_input(convolution, *parts).dtype == torch.float32


def test_a_convolution_input_passes_gradients_to_every_part_and_reuses_a_ready_one():
    parts = [image(1, 2, 8, 8).requires_grad_(), image(1, 3, 8, 8).requires_grad_()]
    convolution = _convolution(5, torch.contiguous_format)
    convolution_input(convolution, *parts).square().sum().backward()
    for part in parts:
        torch.testing.assert_close(part.grad, 2 * part.detach())
    ready = image(1, 5, 8, 8)
    assert convolution_input(convolution, ready) is ready
