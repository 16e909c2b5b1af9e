"""Suite-wide settings: one torch thread (tiny test networks gain nothing from more, and on
a busy machine waiting OpenMP threads slow them down many times over)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    torch.set_num_threads(1)
    yield
