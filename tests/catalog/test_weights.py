"""The categories the serving weights dress, as the catalog reads them for its warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog.models import Category
from catalog.weights import serving_weights, weights_folder


def _weights(folder: Path, meta: dict[str, object]) -> Path:
    folder.mkdir()
    (folder / "pipeline.json").write_text(json.dumps(meta))
    return folder


def test_the_bundled_weights_dress_tops_only() -> None:
    weights = serving_weights({})
    assert weights is not None and weights.folder.name == "synthetic"
    assert weights.warning(Category.TOP) is None
    warning = weights.warning(Category.TROUSERS)
    assert warning is not None and "dress only top" in warning and "trousers" in warning


def test_declared_categories_decide(tmp_path: Path) -> None:
    folder = _weights(tmp_path / "mine", {"categories": ["top", "dress"]})
    weights = serving_weights({"TRYON_WEIGHTS": str(folder)})
    assert weights is not None and weights.warning(Category.DRESS) is None
    assert "dress only dress, top" in (weights.warning(Category.SKIRT) or "")


@pytest.mark.parametrize("meta", [{"name": "old"}, ["not", "an", "object"]])
def test_weights_that_declare_nothing_give_no_warning(tmp_path: Path, meta: object) -> None:
    folder = _weights(tmp_path / "old", meta)  # type: ignore[arg-type]
    assert serving_weights({"TRYON_WEIGHTS": str(folder)}) is None


def test_missing_weights_give_no_warning(tmp_path: Path) -> None:
    assert serving_weights({"TRYON_WEIGHTS": str(tmp_path / "nowhere")}) is None


def test_the_folder_is_the_one_the_service_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tryon.pipeline import weights_folder as service_folder  # torch: only for this check

    folder = _weights(tmp_path / "mine", {})
    for spec in (None, "synthetic", "viton", str(folder)):
        if spec is None:
            monkeypatch.delenv("TRYON_WEIGHTS", raising=False)
        else:
            monkeypatch.setenv("TRYON_WEIGHTS", spec)
        environ = {"TRYON_WEIGHTS": spec} if spec else {}
        assert weights_folder(environ) == service_folder()
