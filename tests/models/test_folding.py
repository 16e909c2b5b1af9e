"""Folding batch norms into convolutions keeps what every network computes."""

from __future__ import annotations

import copy

import pytest
import torch
from tiny_models import TINY_FACTORIES, image
from torch import nn

from tryon.models import fold_batch_norms


def _with_learned_statistics(network: nn.Module) -> nn.Module:
    """Give every batch norm non-trivial statistics and affine terms, as training does."""
    generator = torch.Generator().manual_seed(0)
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(size, generator=generator))
            module.weight.data.copy_(0.5 + torch.rand(size, generator=generator))
            module.bias.data.copy_(torch.randn(size, generator=generator))
    return network.eval()


def _inputs(name: str) -> tuple[torch.Tensor, ...]:
    if name == "parser":
        return (image(2, 3, 64, 48),)
    return (image(2, 22, 64, 48), image(2, 3, 64, 48), image(2, 1, 64, 48, low=0.0))


@pytest.mark.parametrize("name", ["parser", "gmm", "gmm_with_flow", "tom"])
def test_folded_network_computes_the_same_without_batch_norms(name):
    torch.manual_seed(0)
    network = _with_learned_statistics(TINY_FACTORIES[name]())
    folded = fold_batch_norms(copy.deepcopy(network))

    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    inputs = _inputs(name)
    with torch.inference_mode():
        for expected, got in zip(network(*inputs), folded(*inputs), strict=True):
            if expected is None:  # a GMM without a flow stage has no flow
                assert got is None
                continue
            assert torch.allclose(expected, got, atol=1e-4), (expected - got).abs().max()


def test_a_batch_norm_not_after_a_convolution_is_left_alone():
    network = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Conv2d(1, 2, 1))
    before = [type(m) for m in network]

    fold_batch_norms(network)

    assert [type(m) for m in network] == before
