"""The commands around the service: try-on (a client), demo, bench --grpc, serve + SIGTERM."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from loopback import run_cli, shopper, tiny_pipeline
from PIL import Image

from tryon.bench_grpc import LocalServer, run_benchmark
from tryon.client import TryOnClient


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("weights") / "tiny"
    tiny_pipeline(precision="float32").save_pretrained(folder)
    return str(folder)


def test_try_on_command_saves_one_image_per_sku(server, tmp_path, capsys):
    photo = tmp_path / "me.jpg"
    photo.write_bytes(shopper(40, (320, 240)))
    assert run_cli(
        ["try-on", "--photo", str(photo), "--sku", "TEST-0", "--sku", "TEST-2",
         "-o", str(tmp_path / "out"), "--target", server.target, "--format", "png"]
    ) == 0  # fmt: skip
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["me-TEST-0.png", "me-TEST-2.png"]
    assert Image.open(tmp_path / "out" / "me-TEST-0.png").size == (240, 320)


def test_try_on_command_explains_an_unknown_sku(server, tmp_path, capsys):
    photo = tmp_path / "me.jpg"
    photo.write_bytes(shopper(41))
    status = run_cli(["try-on", "--photo", str(photo), "--sku", "NOPE", "--target", server.target])
    assert status == 1  # a product error, not a usage error
    assert "NOT_FOUND" in capsys.readouterr().err


def test_demo_writes_the_contact_sheet(tiny_weights, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRYON_MIN_CONFIDENCE", "0")  # random weights are never sure
    status = run_cli(["demo", "--out", str(tmp_path), "--shoppers", "2", "--garments", "2",
                      "--weights", tiny_weights])  # fmt: skip
    assert status == 0
    sheet = Image.open(tmp_path / "tryon_sheet.png")
    assert sheet.size == (3 * 192, 3 * 256)  # photo + 2 garments; header + 2 shoppers
    output = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert "SAMPLE-0-0001" in output and "4 try-ons of 2 shoppers" in output
    # The demo's A/B test went through the experiment service and has a report.
    report = (tmp_path / "experiment_report.html").read_text()
    assert "Experiment demo" in report and "<svg" in report
    assert "not in the catalog" not in report  # its shoppers buy the sample garments
    assert "experiment demo: 600 shoppers" in output


def test_demo_without_weights_says_what_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TRYON_WEIGHTS", raising=False)
    assert run_cli(["demo", "--out", str(tmp_path), "--weights", str(tmp_path / "none")]) == 1
    assert "no pipeline weights" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_grpc_reports_throughput_latency_and_memory(tiny_weights, monkeypatch):
    monkeypatch.setenv("TRYON_MIN_CONFIDENCE", "0")
    report = run_benchmark(clients=2, seconds=3, weights=tiny_weights, max_batch=2)
    assert report.calls > 0 and report.errors == {}
    assert report.p50_ms <= report.p95_ms <= report.p99_ms
    assert (
        50 < report.server_private_mib < report.server_rss_mib <= report.server_peak_rss_mib < 4096
    )


@pytest.mark.slow
def test_sigterm_during_load_loses_no_accepted_call(tiny_weights, catalog_url, monkeypatch):
    monkeypatch.setenv("TRYON_MIN_CONFIDENCE", "0")
    monkeypatch.setenv("TRYON_WORKERS", "1")
    monkeypatch.setenv("TRYON_DRAIN_S", "1")
    server = LocalServer(catalog_url, tiny_weights, max_batch=4)
    with server, TryOnClient(server.target) as client, ThreadPoolExecutor(8) as pool:
        calls = [pool.submit(client.try_on, shopper(50 + i), "TEST-0") for i in range(8)]
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        results = [call.result(timeout=60) for call in calls]
        assert server.process.wait(60) == 0
    assert [r.garment_sku for r in results] == ["TEST-0"] * 8


def test_tryon_db_upgrade_brings_a_new_database_to_the_newest_schema(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    assert run_cli(["db", "status", "--db-url", url]) == 0
    assert "needs `tryon db upgrade`" in " ".join(capsys.readouterr().out.split())
    assert run_cli(["db", "upgrade", "--db-url", url]) == 0
    assert run_cli(["db", "status", "--db-url", url, "--json"]) == 0
    assert '"up_to_date": true' in capsys.readouterr().out
