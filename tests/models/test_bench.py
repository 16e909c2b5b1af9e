from __future__ import annotations

import io
import time

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import TINY_FACTORIES
from typer.testing import CliRunner

from tryon.bench import benchmark_networks
from tryon.bench_report import (
    STAGES,
    BenchReport,
    LatencyFigures,
    RefusalFigures,
    markdown,
    real_shopper_photos,
    reference_networks,
)
from tryon.cli import app


def test_benchmark_times_each_network_and_the_chain(capsys: pytest.CaptureFixture[str]) -> None:
    parser, gmm, tom = (TINY_FACTORIES[name]() for name in ("parser", "gmm", "tom"))
    timings = benchmark_networks(
        parser, gmm, tom, height=64, width=48, repeats=2, warmup=1, threads=None
    )
    assert [t.name for t in timings] == ["parser", "gmm", "tom", "total"]
    assert all(t.median_ms > 0 and t.min_ms <= t.median_ms for t in timings)
    assert timings[-1].parameters == sum(t.parameters for t in timings[:-1])
    assert "median ms" in capsys.readouterr().out


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_benchmark_says_what_the_convolutions_ran_in(capsys, precision) -> None:
    parser, gmm, tom = (TINY_FACTORIES[name]() for name in ("parser", "gmm", "tom"))
    benchmark_networks(
        parser,
        gmm,
        tom,
        height=64,
        width=48,
        repeats=1,
        warmup=0,
        threads=None,
        precision=precision,
    )
    assert f"{precision} convolutions" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--pipeline", "--precision", "half"], "'half': choose one of"),
        (["--grpc", "--target", "localhost:1", "--precision", "float32"], "own TRYON_PRECISION"),
        (["--pipeline", "--grpc"], "choose one of --pipeline, --grpc or --report"),
        (["--report", "--target", "localhost:1"], "starts its own server"),
    ],
)
def test_bench_refuses_a_precision_it_cannot_apply_as_a_usage_error(arguments, message) -> None:
    result = CliRunner().invoke(app, ["bench", *arguments])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_reference_networks_have_cp_vton_s_sizes_and_outputs() -> None:
    networks = reference_networks()
    parameters = {n: sum(p.numel() for p in net.parameters()) for n, net in networks.items()}
    assert abs(parameters["gmm"] / 19.1e6 - 1) < 0.01
    assert abs(parameters["tom"] / 21.3e6 - 1) < 0.01
    assert 14e6 < parameters["parser"] < 15e6  # smp U-Net-ResNet18
    person, garment, mask = (
        torch.rand(1, 22, 256, 192),
        torch.rand(1, 3, 256, 192),
        torch.ones(1, 1, 256, 192),
    )
    with torch.inference_mode():
        warped, warped_mask = networks["gmm"].eval()(person, garment, mask)
        tried_on = networks["tom"].eval()(person, warped)
        parse = networks["parser"].eval()(garment)
    assert warped.shape == garment.shape and warped_mask.shape == mask.shape
    assert tried_on.shape == (1, 3, 256, 192) and parse.shape == (1, 38, 256, 192)


def test_the_report_states_the_ratio_and_every_stage() -> None:
    report = BenchReport(
        machine={"cpu": "test", "threads": 2, "precision": "float32", "weights": "tiny"},
        stages_ms={name: 1.0 for name in STAGES},
        watermark_ms=0.7,
        c2pa_ms=0.3,
        in_process_ms=len(STAGES),
        grpc_new=LatencyFigures(10, 60.0, 70.0, {}),
        grpc_seen=LatencyFigures(10, 30.0, 35.0, {}),
        reference_ms={"parser": 50.0, "gmm": 60.0, "tom": 90.0, "total": 200.0},
        reference_parameters={"parser": 14_300_000, "gmm": 19_100_000, "tom": 21_300_000},
        server_rss_mib=900.0,
        server_peak_rss_mib=950.0,
        seconds_to_serving=6.0,
        seconds_to_import_torch=2.0,
        refusals=[RefusalFigures("generated 640x480", 40, 1, 0.25)],
    )
    table = markdown(report)
    assert "**0.30x** (60 / 200 ms)" in table
    assert "1 of 40 (2.5%)" in table and "3.0x (6.0 / 2.0 s)" in table
    assert all(f"| {name.replace('_', ' ')} | 1.0 |" in table for name in STAGES)
    values = report.to_dict()
    assert values["ratio"] == pytest.approx(0.3) and values["refusals"][0]["rate"] == 0.025


def test_real_photos_are_timed_at_the_target_size_with_the_person_whole(tmp_path) -> None:
    """A portrait 256x192 photo becomes a 640x480 one: scaled to 480 high, in the middle,
    on a backdrop of its border's usual colour (not its edge columns streaked outwards)."""
    photo = np.full((256, 192, 3), 200, np.uint8)
    photo[:, :10] = (10, 200, 30)  # a green strip along the left edge stays in the photo
    photo[100:150, 80:110] = (250, 0, 0)  # the "person" in the middle
    Image.fromarray(photo).save(tmp_path / "a.png")
    (encoded,) = real_shopper_photos(tmp_path, count=1)
    canvas = np.asarray(Image.open(io.BytesIO(encoded)))
    assert canvas.shape == (480, 640, 3)
    assert np.abs(canvas[240, 5].astype(int) - 200).max() < 20  # the grey backdrop
    assert int(canvas[240, 148, 0]) < 40 and int(canvas[240, 148, 1]) > 160  # the strip
    red = (canvas[..., 0] > 200) & (canvas[..., 1] < 60)
    rows, columns = np.nonzero(red)
    assert 180 < rows.mean() < 300 and 300 < columns.mean() < 340


def test_server_refusal_times_read_the_share_within_10_ms_and_the_p99_bound() -> None:
    from tryon.bench_grpc import server_refusal_times

    def exposition(counts: dict[str, int]) -> str:
        lines = ["# TYPE tryon_refusal_seconds histogram"]
        lines += [f'tryon_refusal_seconds_bucket{{le="{le}"}} {n}' for le, n in counts.items()]
        return "\n".join(lines) + "\n"

    # 200 refusals: 150 within 5 ms, 190 within 10 ms, 197 within 20 ms, all within 50 ms.
    counts = {"0.005": 150, "0.01": 190, "0.02": 197, "0.05": 200, "+Inf": 200}
    assert server_refusal_times(exposition(counts)) == (0.95, 50.0)
    counts["0.02"] = 198  # 99% within 20 ms
    assert server_refusal_times(exposition(counts)) == (0.95, 20.0)
    assert server_refusal_times(exposition({"0.01": 0, "+Inf": 0})) is None


def test_load_throughput_is_the_steady_state_between_first_and_last_call_in_time(
    monkeypatch,
) -> None:
    """Two closed-loop clients of a service that takes 50 ms a call: 40 calls/s, counted
    between the first and the last call that ended before the deadline; the calls in
    flight at the deadline are timed but not counted, and rounds add up."""
    import tryon.client
    from tryon.bench_grpc import run_load

    class SlowClient:
        def __init__(self, target: str, timeout_s: float) -> None:
            pass

        def __enter__(self) -> SlowClient:
            return self

        def __exit__(self, *exc_info: object) -> None:
            pass

        def try_on(self, photo: bytes, sku: str) -> None:
            time.sleep(0.05)

    monkeypatch.setattr(tryon.client, "TryOnClient", SlowClient)
    first = run_load("nowhere", [b"photo"], ["SKU"], 2, 0.6)
    second = run_load("nowhere", [b"photo"], ["SKU"], 2, 0.6)
    for run in (first, second):
        # 2 / 0.05 s = 40, less the sleeps' overshoot; the two clients end in step, so
        # the first one's partner counts: at most one call of the ~22 over.
        assert 30 < run.throughput_per_s < 44
        assert len(run.latencies) >= run.intervals + 2  # the first and the late ones
    both = first.add(second)
    assert both.intervals == first.intervals + second.intervals
    assert both.throughput_per_s == pytest.approx(
        (first.intervals + second.intervals) / (first.span_s + second.span_s)
    )
