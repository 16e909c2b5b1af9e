"""`tryon eval` on a generated dataset, as the README runs it (a relative --data path)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tryon.cli import app
from tryon.data.synth.writer import write_dataset
from tryon.pipeline import BUNDLED_WEIGHTS

KEYS = (
    "parse_miou", "pck_0.1", "warp_iou", "warp_ssim", "tryon_ssim", "tryon_psnr",
    "tryon_ssim_gt_parse", "region_ssim", "region_l1", "baseline_grey_ssim",
    "baseline_grey_region_ssim", "baseline_affine_ssim", "baseline_affine_region_ssim",
    "parse_miou_frequent", "painted_ssim", "region_sharpness", "region_gmsd",
    "n_samples", "seconds",
)  # fmt: skip


@pytest.mark.skipif(
    not (BUNDLED_WEIGHTS / "synthetic" / "pipeline.json").exists(),
    reason="bundled synthetic weights not present",
)
def test_eval_writes_every_metric_and_an_unpaired_sheet(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_dataset(tmp_path / "data" / "test", n=3, seed=31)
    args = ["eval", "--data", "data/test", "--weights", "synthetic"]
    args += ["--output", "eval.json", "--grid", "sheet.png"]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval.json").read_text())
    assert set(KEYS) <= set(metrics)
    assert metrics["n_samples"] == 3
    assert metrics["warp_ssim"] is not None  # generated data has warp-gt/
    assert 0 < metrics["region_sharpness"] < 2 and 0 < metrics["region_gmsd"] < 1
    # The painted pixels exclude the arms kept from the photo, which match it exactly.
    assert metrics["painted_ssim"] <= metrics["region_ssim"]
    per_label = metrics["parse_iou_per_label"]
    assert {"background", "upper-clothes", "face"} <= set(per_label)
    mean = sum(label["iou"] for label in per_label.values()) / len(per_label)
    assert mean == pytest.approx(metrics["parse_miou"])
    sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
    assert sheet.shape == (3 * 256, 3 * 192, 3)  # one row of person, garment, result each
