"""Fixtures shared by the training tests."""

from __future__ import annotations

import pytest

from tryon.data.synth.writer import write_dataset


@pytest.fixture(scope="module")
def train_data(tmp_path_factory):
    """Four synthetic training samples in the VITON layout (read only)."""
    root = tmp_path_factory.mktemp("train")
    write_dataset(root, n=4, seed=41)
    return root
