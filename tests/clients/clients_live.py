"""What the client tests share, in a module of its own name (tests/server has a conftest
too, and `from conftest import` would find whichever was imported first)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = "tryon-returns"


@dataclass(frozen=True)
class LiveServer:
    """Where the server listens, a key it accepts, and a photo and SKU it can dress."""

    target: str
    api_key: str
    experiment: str
    photo: Path
    sku: str = "TEST-0"
