"""Virtual try-on: show a shopper wearing a catalog garment."""

from __future__ import annotations

__version__ = "0.1.0"
