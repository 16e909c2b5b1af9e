"""`tryon k8s`: the Kubernetes deployment's autoscaling, replayed over traffic traces."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from tryon.cli.common import JsonOption, OutputOption, console, emit_json

app = typer.Typer(
    help="The Kubernetes deployment: replay its autoscaler over a traffic trace.",
    no_args_is_help=True,
)

DEFAULT_MANIFESTS = Path("k8s/overlays/prod")


@app.command()
def simulate(
    trace: Annotated[
        Path, typer.Option(help="CSV of offered load: header `seconds,try_ons_per_s`.")
    ],
    capacity: Annotated[
        float,
        typer.Option(
            help="Try-ons/s one pod serves flat out: `tryon bench --grpc` with 8 clients."
        ),
    ],
    manifests: Annotated[
        Path,
        typer.Option(help="Kustomize folder or rendered YAML holding the HPA to replay."),
    ] = DEFAULT_MANIFESTS,
    startup_s: Annotated[
        float,
        typer.Option(
            help="Seconds from pod creation to ready: scheduling, image pull and the "
            "server's time to SERVING (its log line `serving`, metric tryon_seconds_to_ready)."
        ),
    ] = 30.0,
    max_queue: Annotated[
        int, typer.Option(help="Try-ons a pod holds before refusing (TRYON_MAX_QUEUE).")
    ] = 32,
    metric_delay_s: Annotated[
        float, typer.Option(help="How late the HPA sees the metric (scrape + adapter window).")
    ] = 15.0,
    min_replicas: Annotated[
        int | None, typer.Option(help="Replay with this minReplicas instead of the HPA's.")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write a PNG of load, replicas, queue and latency.")
    ] = None,
    as_json: JsonOption = False,
    output: OutputOption = None,
) -> None:
    """Replay the shipped HPA (15 s sync, 10% tolerance, stabilisation windows, policies,
    pod start-up) over a traffic trace; print replicas, queue, latency and refusals."""
    from tryon.deploy.autoscaling import (
        ControllerSettings,
        HpaSpec,
        PodModel,
        Trace,
    )
    from tryon.deploy.autoscaling import (
        simulate as run_simulation,
    )
    from tryon.deploy.manifests import find, render

    hpa = HpaSpec.from_manifest(find(render(manifests), "HorizontalPodAutoscaler"))
    if min_replicas is not None:
        hpa = replace(hpa, min_replicas=min_replicas)
    pods = PodModel(capacity, startup_s, max_queue)
    controller = ControllerSettings(metric_delay_s=metric_delay_s)
    timeline, figures = run_simulation(Trace.read_csv(trace), hpa, pods, controller)
    result = {
        "trace": str(trace),
        "hpa": {
            "min_replicas": hpa.min_replicas,
            "max_replicas": hpa.max_replicas,
            "target_in_progress": hpa.target_in_progress,
            "target_cpu": hpa.target_cpu,
        },
        "pod": {"capacity": capacity, "startup_s": startup_s, "max_queue": max_queue},
        "figures": figures.as_dict(),
    }
    if plot is not None:
        from tryon.deploy.charts import plot_timeline

        plot_timeline(timeline, figures, plot)
    emit_json(result, print_it=as_json, output=output)
    if as_json:
        return
    f = figures
    back = (
        "never"
        if f.scaled_down_to_min_after_s is None
        else f"{f.scaled_down_to_min_after_s:.0f} s after the peak"
    )
    console.print(
        f"{trace}: peak {f.peak_offered:.1f} try-ons/s, {capacity:g}/s per pod, "
        f"start-up {startup_s:g} s\n"
        f"  replicas: {hpa.min_replicas} -> peak {f.peak_replicas} -> {f.final_replicas} "
        f"(back to min {back}); {f.pod_hours} pod-hours\n"
        f"  try-ons in progress per pod: max {f.max_in_progress_per_pod:.2f} "
        f"(target {f.target_in_progress:g}); above target {f.seconds_above_target:.0f} s, "
        f"longest stretch {f.longest_above_target_s:.0f} s\n"
        f"  latency p50 {f.p50_latency_s * 1e3:.0f} ms, p95 {f.p95_latency_s * 1e3:.0f} ms; "
        f"refused {f.refused_try_ons:.0f} try-ons ({f.refused_fraction:.2%})"
        + (f"\n  plot: {plot}" if plot is not None else "")
    )


@app.command()
def ramp(
    output_csv: Annotated[Path, typer.Argument(help="Where to write the trace CSV.")],
    base: Annotated[float, typer.Option(help="Try-ons/s before and after the ramp.")] = 13.6,
    factor: Annotated[float, typer.Option(help="Peak load as a multiple of the base.")] = 10.0,
    ramp_s: Annotated[float, typer.Option(help="Seconds from base to peak (and back).")] = 600,
    hold_s: Annotated[float, typer.Option(help="Seconds at the peak.")] = 600,
) -> None:
    """Write a ramp trace: base load, up to factor x base, hold, down, base again."""
    from tryon.deploy.autoscaling import ramp_trace

    ramp_trace(base, factor, ramp_s, hold_s).write_csv(output_csv)
    console.print(f"wrote {output_csv}")
