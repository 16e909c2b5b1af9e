"""`tryon eval` on real VITON photos (read from ../shared/viton when it is there)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tryon.cli import app
from tryon.pipeline import BUNDLED_WEIGHTS

REAL_VITON = Path(__file__).parents[2].parent / "shared" / "viton" / "train"
HELD_OUT = Path(__file__).parents[2] / "docs" / "splits" / "viton" / "val_pairs.txt"
WEIGHTS = "viton" if (BUNDLED_WEIGHTS / "viton" / "pipeline.json").exists() else "synthetic"


@pytest.mark.skipif(not REAL_VITON.is_dir(), reason="the real VITON data is not on this machine")
def test_eval_scores_held_out_real_pairs_and_nulls_what_they_lack(tmp_path):
    report, sheet = tmp_path / "eval.json", tmp_path / "sheet.png"
    args = ["eval", "--data", str(REAL_VITON), "--pairs", str(HELD_OUT), "--limit", "4"]
    args += ["--weights", WEIGHTS, "--output", str(report), "--batch", "2"]
    args += ["--grid", str(sheet), "--grid-caption", "Photos: VITON, research use only"]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    metrics = json.loads(report.read_text())
    assert metrics["n_samples"] == 4
    assert metrics["warp_ssim"] is None  # real data has no warp-gt/
    for key in ("parse_miou", "pck_0.1", "warp_iou", "tryon_ssim", "region_ssim"):
        assert 0.0 < metrics[key] <= 1.0, key
    assert metrics["baseline_grey_region_ssim"] is not None
    if WEIGHTS == "viton":  # real-photo weights paint the region better than grey
        assert metrics["region_ssim"] > metrics["baseline_grey_region_ssim"]
    image = np.asarray(Image.open(sheet))
    assert image.shape[1] == 3 * 192 and image.shape[0] > 8 * 256  # 8 rows + the caption
    assert (image[8 * 256 :] < 128).any()  # the caption's text
