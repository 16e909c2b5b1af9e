"""The try-on generator in ONNX Runtime: the same outputs as eager PyTorch, a cache that is
used, and a runtime option that says why it cannot be honoured."""

from __future__ import annotations

import pytest
import torch
from tiny_models import image

from tryon.errors import InvalidInputError
from tryon.models import TryOnGenerator
from tryon.models.exported import OnnxTryOnGenerator
from tryon.pipeline import resolve_runtime

SIZE = (64, 48)


def tiny_tom(background: bool) -> TryOnGenerator:
    torch.manual_seed(0)
    tom = TryOnGenerator(
        base_channels=8, depth=3, max_channels=32, residual_blocks=1, background=background
    )
    if background:  # away from its start (all background) so the head's output matters
        torch.nn.init.normal_(tom.background_head.weight, std=0.1)
    return tom.eval()


@pytest.mark.parametrize("background", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_runtime_paints_what_pytorch_paints(tmp_path, background, batch):
    tom = tiny_tom(background)
    exported = OnnxTryOnGenerator(tom, SIZE, threads=1, cache_dir=tmp_path)
    inputs = (image(batch, 22, *SIZE), image(batch, 3, *SIZE), image(batch, 1, *SIZE, low=0))
    if background:
        inputs += (image(batch, 3, *SIZE),)
    with torch.no_grad():
        expected = tom(*inputs)
    got = exported(*inputs)
    assert len(got) == len(expected)
    for name, want, have in zip(expected._fields, expected, got, strict=True):
        if want is None:
            assert have is None, name
        else:
            assert have.shape == want.shape, name
            assert (have - want).abs().max().item() < 1e-3, name


def test_the_exported_graph_is_cached_by_the_weights(tmp_path, monkeypatch):
    tom = tiny_tom(False)
    OnnxTryOnGenerator(tom, SIZE, threads=1, cache_dir=tmp_path)
    assert len(list((tmp_path / "onnx").glob("tom-*.onnx"))) == 1

    def no_export(*args):
        raise AssertionError("exported again although the cache holds this network")

    monkeypatch.setattr(OnnxTryOnGenerator, "_export", no_export)
    OnnxTryOnGenerator(tom, SIZE, threads=1, cache_dir=tmp_path)  # from the cache
    with torch.no_grad():
        tom.unet.head.bias.add_(0.5)  # other weights: another graph
    with pytest.raises(AssertionError, match="exported again"):
        OnnxTryOnGenerator(tom, SIZE, threads=1, cache_dir=tmp_path)


def test_a_cache_folder_that_cannot_be_written_costs_an_export_not_an_error(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    exported = OnnxTryOnGenerator(tiny_tom(False), SIZE, threads=1, cache_dir=blocked)
    out = exported(image(1, 22, *SIZE), image(1, 3, *SIZE), image(1, 1, *SIZE, low=0))
    assert out.composite.shape == (1, 3, *SIZE)


def test_a_generator_that_shows_the_background_needs_the_fill(tmp_path):
    exported = OnnxTryOnGenerator(tiny_tom(True), SIZE, threads=1, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="background fill"):
        exported(image(1, 22, *SIZE), image(1, 3, *SIZE), image(1, 1, *SIZE, low=0))


def test_the_runtime_option_resolves_and_explains():
    cpu = torch.device("cpu")
    assert resolve_runtime("auto", cpu, torch.float32) == "onnxruntime"
    assert resolve_runtime("auto", cpu, torch.bfloat16) == "torch"
    assert resolve_runtime("torch", cpu, torch.float32) == "torch"
    with pytest.raises(InvalidInputError, match="float32"):
        resolve_runtime("onnxruntime", cpu, torch.bfloat16)
    with pytest.raises(InvalidInputError, match="CPU only"):
        resolve_runtime("onnxruntime", torch.device("cuda"), torch.float32)
    with pytest.raises(InvalidInputError, match="choose one of"):
        resolve_runtime("tensorrt", cpu, torch.float32)
