"""Where the deployment files are, for the tests in this folder."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ("dev", "prod", "gpu")
