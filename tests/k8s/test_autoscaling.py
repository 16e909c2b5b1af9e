"""`tryon k8s simulate`: the shipped HPA, replayed over ramps, scales up in time and back down."""

from __future__ import annotations

import json

import pytest
from k8s_paths import K8S
from typer.testing import CliRunner

from tryon.cli import app
from tryon.deploy.autoscaling import (
    HpaSpec,
    PodModel,
    ScalingPolicy,
    ScalingRules,
    Trace,
    ramp_trace,
    simulate,
)
from tryon.deploy.manifests import find

CAPACITY = 17.0  # try-ons/s of one 2-core pod, `tryon bench --grpc` (docs/service.md)
STARTUP_S = 30.0


@pytest.fixture(scope="module")
def shipped(rendered) -> HpaSpec:
    return HpaSpec.from_manifest(find(rendered["prod"], "HorizontalPodAutoscaler"))


def test_the_shipped_hpa_absorbs_a_10x_ramp_and_scales_back_down(shipped):
    base = 0.3 * CAPACITY * shipped.min_replicas  # the minimum pods at 30%
    trace = ramp_trace(base, 10, ramp_s=600, hold_s=600)
    pods = PodModel(CAPACITY, STARTUP_S)
    timeline, figures = simulate(trace, shipped, pods)
    assert figures.refused_try_ons == 0
    # Above target only while pods start: never near a full queue, and each stretch no
    # longer than metric delay + two syncs + start-up.
    assert figures.max_in_progress_per_pod < 3 * shipped.target_in_progress
    assert figures.longest_above_target_s <= 15 + 2 * 15 + STARTUP_S + 15
    assert figures.p95_latency_s < 2 / CAPACITY * 1.5  # within 1.5x of two try-ons' time
    peak_needed = 10 * base / CAPACITY
    assert peak_needed < figures.peak_replicas <= shipped.max_replicas
    assert figures.final_replicas == shipped.min_replicas
    assert figures.scaled_down_to_min_after_s is not None


def test_a_ramp_faster_than_the_start_up_is_refused_in_part_and_min_replicas_is_the_cure(
    shipped,
):
    base = 0.3 * CAPACITY * shipped.min_replicas
    trace = ramp_trace(base, 10, ramp_s=STARTUP_S, hold_s=600)
    _, tight = simulate(trace, shipped, PodModel(CAPACITY, STARTUP_S))
    roomy = HpaSpec(**{**shipped.__dict__, "min_replicas": 10 * shipped.min_replicas})
    _, padded = simulate(trace, roomy, PodModel(CAPACITY, STARTUP_S))
    assert tight.refused_try_ons > 0
    assert padded.refused_try_ons == 0


def test_scale_up_follows_the_policies_and_scale_down_waits_for_its_window():
    rules_up = ScalingRules(0, "Max", (ScalingPolicy("Pods", 1, 60),))
    rules_down = ScalingRules(120, "Max", (ScalingPolicy("Pods", 1, 15),))
    hpa = HpaSpec(1, 10, 1.0, None, rules_up, rules_down)
    step_up = Trace((0, 1, 600), (100, 100, 100))
    timeline, _ = simulate(step_up, hpa, PodModel(CAPACITY, startup_s=0))
    # The first sync that sees the metric (15 s sync, 15 s delay) adds one pod, then one
    # a minute, whatever the metric asks for.
    assert timeline.replicas[14] == 1 and timeline.replicas[16] == 2
    assert timeline.replicas[74] == 2 and timeline.replicas[76] == 3
    assert timeline.replicas[196] == 5
    # Load stops at 300 s: no pod goes before the 120 s window has passed, then all do.
    stops = Trace((0, 300, 301, 900), (100, 100, 0, 0))
    timeline, _ = simulate(stops, hpa, PodModel(CAPACITY, startup_s=0))
    peak = timeline.replicas[300]
    first_down = next(
        t for t, n in zip(timeline.seconds, timeline.replicas, strict=True) if t > 300 and n < peak
    )
    assert first_down >= 300 + 120
    assert timeline.replicas[-1] == 1


def test_cli_reads_the_hpa_from_the_manifests_and_writes_json_and_a_plot(tmp_path):
    trace = tmp_path / "trace.csv"
    ramp_trace(15, 10, 600, 300).write_csv(trace)
    plot = tmp_path / "run.png"
    result = CliRunner().invoke(
        app,
        [
            "k8s", "simulate", "--trace", str(trace), "--capacity", "17",
            "--manifests", str(K8S / "overlays/prod"), "--json", "--plot", str(plot),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["hpa"]["target_in_progress"] == 1.0
    assert report["figures"]["peak_offered"] == 150
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_says_what_a_malformed_trace_should_look_like(tmp_path):
    trace = tmp_path / "bad.csv"
    trace.write_text("time,rate\n0,1\n")
    result = CliRunner().invoke(app, ["k8s", "simulate", "--trace", str(trace), "--capacity", "17"])
    assert result.exit_code == 1
    assert "seconds,try_ons_per_s" in str(result.exception or result.output)
