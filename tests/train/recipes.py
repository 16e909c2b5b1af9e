"""Tiny recipes for the CLI tests: `tryon train` runs of a step or two on the tiny data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner, Result

from tryon.cli import app

REPOSITORY = Path(__file__).resolve().parents[2]
# The real networks at a fraction of the width, without the parts the tests add.
TINY_NETWORKS: dict[str, dict[str, Any]] = {
    "parser": {"decoder_channels": [16, 16, 8, 8, 8], "refiner_channels": 0},
    "gmm": {
        "feature_channels": [8, 8, 16, 16],
        "regressor_width": 16,
        "correlation_size": [8, 6],
        "refinement_stages": 0,
        "flow_stage": False,
    },
    "tom": {"base_channels": 8, "max_channels": 16, "residual_blocks": 0, "background": False},
}
# Batches of 2 at 128x96, loaded in this process, a checkpoint every step.
TINY_RUN: dict[str, Any] = {
    "data": {"size": [128, 96]},
    "training": {"batch": 2, "workers": 0, "checkpoint_every": 1, "steps": 1},
}


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes`, sections merged key by key."""
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def write_recipe(path: Path, values: dict[str, Any]) -> Path:
    """`values` as a YAML recipe file at `path`."""
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def tiny_recipe(path: Path, component: str, **changes: Any) -> Path:
    """A recipe for a tiny run of `component` (a tiny network, `TINY_RUN`) with `changes`
    by section (`losses={"grid_weight": 0.3}`), written to `path`."""
    values = {"trains": component, "network": TINY_NETWORKS[component], **TINY_RUN}
    return write_recipe(path, merged(values, changes))


def train(component: str, *arguments: Any) -> Result:
    """`tryon train COMPONENT ARGUMENTS` as the console entry point runs it."""
    return CliRunner().invoke(app, ["train", component, *map(str, arguments)])
