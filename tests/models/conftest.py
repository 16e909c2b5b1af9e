"""Fixtures: tiny seeded networks (tiny_models.py) on one thread, so the model tests run
in seconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from tiny_models import TINY_FACTORIES

from tryon.models import GeometricMatcher, HumanParser, MultiScaleDiscriminator, TryOnGenerator


@pytest.fixture(autouse=True)
def _seeded_single_thread() -> Iterator[None]:
    # One thread: these tiny networks gain nothing from more, and on a busy machine
    # OpenMP threads waiting on each other made the suite ~50x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_parser() -> HumanParser:
    return TINY_FACTORIES["parser"]()


@pytest.fixture
def tiny_gmm() -> GeometricMatcher:
    return TINY_FACTORIES["gmm"]()


@pytest.fixture
def tiny_tom() -> TryOnGenerator:
    return TINY_FACTORIES["tom"]()


@pytest.fixture
def tiny_discriminator() -> MultiScaleDiscriminator:
    return TINY_FACTORIES["discriminator"]()
