"""The bundled research weights trained on VITON: labelled as such, small, loadable."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open

from tryon.pipeline import BUNDLED_WEIGHTS, TryOnPipeline

VITON_WEIGHTS = BUNDLED_WEIGHTS / "viton"
pytestmark = pytest.mark.skipif(
    not (VITON_WEIGHTS / "pipeline.json").exists(), reason="no bundled VITON weights"
)


def test_viton_weights_say_they_are_research_only_and_what_they_were_trained_on():
    meta = json.loads((VITON_WEIGHTS / "pipeline.json").read_text())
    assert meta["name"] == "viton"
    assert "non-commercial research" in meta["licence"]
    assert meta["training_data"]["dataset"]["name"] == "VITON"


def test_viton_weights_are_small_half_precision_and_load_by_name():
    files = list(VITON_WEIGHTS.rglob("*.safetensors"))
    assert len(files) == 3
    assert sum(f.stat().st_size for f in files) <= 40 * 2**20
    for path in files:
        with safe_open(str(path), framework="pt") as weights:
            dtypes = {str(weights.get_tensor(name).dtype) for name in weights.keys()}  # noqa: SIM118
        assert dtypes <= {"torch.float16", "torch.int64"}, (path, dtypes)
    assert TryOnPipeline.from_pretrained("viton").meta.name == "viton"
