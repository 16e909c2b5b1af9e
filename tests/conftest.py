"""Suite-wide settings: one torch thread (tiny test networks gain nothing from more, and on
a busy machine waiting OpenMP threads slow them down many times over), and a cache folder
of the session's own for exported networks (never the user's ~/.cache)."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture(autouse=True, scope="session")
def _own_cache_folder(tmp_path_factory):
    previous = os.environ.get("TRYON_CACHE_DIR")
    os.environ["TRYON_CACHE_DIR"] = str(tmp_path_factory.mktemp("tryon-cache"))
    yield
    if previous is None:
        os.environ.pop("TRYON_CACHE_DIR", None)
    else:
        os.environ["TRYON_CACHE_DIR"] = previous
