"""Which garment categories the serving try-on weights can dress, for import warnings.

The weights declare them in their ``pipeline.json`` (``"categories": ["top"]``). This is
read as plain JSON: the catalog must work without PyTorch and never loads the networks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import tryon
from catalog.models import Category

# The same choice as tryon.pipeline.weights_folder, made without importing the pipeline.
BUNDLED_WEIGHTS = Path(tryon.__file__).parent / "weights"
DEFAULT_WEIGHTS = "synthetic"


@dataclass(frozen=True)
class ServingWeights:
    """The weights the service dresses shoppers with: their folder and the categories
    their ``pipeline.json`` declares."""

    folder: Path
    categories: frozenset[str]

    def warning(self, category: Category) -> str | None:
        """What to tell a merchandiser adding a garment of ``category``, or None when the
        weights can dress it."""
        if category.value in self.categories:
            return None
        dressed = ", ".join(sorted(self.categories)) or "no category"
        return (
            f"the serving weights ({self.folder.name}) dress only {dressed}: try-on will "
            f"refuse this {category.value} until weights that dress it are served "
            "(TRYON_WEIGHTS)"
        )


def weights_folder(environ: Mapping[str, str]) -> Path | None:
    """The pipeline folder ``TRYON_WEIGHTS`` names (a bundled name or a path; default the
    bundled synthetic weights), or None when it holds no ``pipeline.json``."""
    spec = environ.get("TRYON_WEIGHTS") or DEFAULT_WEIGHTS
    for folder in (Path(spec), BUNDLED_WEIGHTS / spec):
        if (folder / "pipeline.json").is_file():
            return folder
    return None


def serving_weights(environ: Mapping[str, str]) -> ServingWeights | None:
    """The serving weights when they declare their categories; None when they cannot be
    found or read, or declare none (then every category is taken to be fine)."""
    folder = weights_folder(environ)
    if folder is None:
        return None
    try:
        meta = json.loads((folder / "pipeline.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    categories = meta.get("categories") if isinstance(meta, dict) else None
    if not isinstance(categories, list):
        return None
    return ServingWeights(folder, frozenset(str(c) for c in categories))
