"""`tryon bench`: measure the networks and the service."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from tryon.cli.common import (
    JsonOption,
    OutputOption,
    PrecisionOption,
    WeightsOption,
    check_precision,
    console,
    emit_json,
)


def bench(
    pipeline: Annotated[
        bool, typer.Option("--pipeline", help="Time the networks in process (tryon.bench).")
    ] = False,
    grpc: Annotated[
        bool, typer.Option("--grpc", help="Closed-loop load on the gRPC service.")
    ] = False,
    report: Annotated[
        bool,
        typer.Option(
            "--report",
            help="Stages, gRPC latency, CP-VTON's networks, memory, start-up and refusals "
            "in one run (tryon.bench_report).",
        ),
    ] = False,
    clients: Annotated[int, typer.Option(min=1, help="--grpc: concurrent clients.")] = 8,
    seconds: Annotated[
        float | None,
        typer.Option(help="Seconds of load: --grpc (default 20), each --report gRPC run (15)."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(help="--grpc: load this running service instead of starting one."),
    ] = None,
    weights: WeightsOption = None,
    precision: PrecisionOption = None,
    max_batch: Annotated[
        int | None, typer.Option(help="--grpc: the started server's batch (default: serve's).")
    ] = None,
    compare: Annotated[
        bool, typer.Option(help="--grpc: also time the pipeline in process at that batch.")
    ] = False,
    seen_photos: Annotated[
        bool,
        typer.Option(help="--grpc: photos the server has analysed (a shopper's next garment)."),
    ] = False,
    real_photos: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            file_okay=False,
            help="--report: time and judge real photos of people from this folder, each on a "
            "640x480 canvas, instead of generated shoppers (read only).",
        ),
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option(help="--report: write its markdown tables to this file.")
    ] = None,
    as_json: JsonOption = False,
    output: OutputOption = None,
) -> None:
    """Measure speed: --pipeline (network timings), --grpc (the service under load) or
    --report (all of it, next to CP-VTON's networks, in one run of a few minutes)."""
    if pipeline + grpc + report != 1:
        raise typer.BadParameter("choose one of --pipeline, --grpc or --report")
    from tryon.openmp import limit_openmp_spinning

    limit_openmp_spinning()  # as `tryon serve` runs, for the in-process figures
    if precision is not None:
        check_precision(precision)
        if target is not None:
            raise typer.BadParameter(
                "--precision sets up the server bench starts; the service at --target runs "
                "at its own TRYON_PRECISION"
            )
    if pipeline:
        import torch

        from tryon.bench import benchmark_networks
        from tryon.models import resolve_precision
        from tryon.models.bundle import load_pipeline_components
        from tryon.models.openvino_parser import requested_parser_runtime, resolve_parser_runtime
        from tryon.pipeline import weights_folder

        precision = precision or os.environ.get("TRYON_PRECISION") or "auto"
        check_precision(precision)
        folder = weights_folder(weights)
        networks = load_pipeline_components(folder)
        torch.set_num_threads(2)  # before OpenVINO takes its thread count from torch
        openvino_parser = resolve_parser_runtime(
            requested_parser_runtime(),
            folder / "parser",
            resolve_precision(precision, torch.device("cpu")),
            torch.device("cpu"),
        )
        timings = benchmark_networks(
            networks.parser,
            networks.gmm,
            networks.tom,
            precision=precision,
            openvino_parser=openvino_parser,
            echo=console.print,
        )
        emit_json([asdict(timing) for timing in timings], print_it=as_json, output=output)
        return
    if report:
        from tryon.bench_report import markdown as report_markdown
        from tryon.bench_report import run_report

        if target is not None:
            raise typer.BadParameter("--report starts its own server; leave out --target")
        result = run_report(
            weights=weights,
            precision=precision,
            seconds=seconds or 15.0,
            real_photo_folder=real_photos,
            echo=console.print,
        )
        if markdown is not None:
            markdown.parent.mkdir(parents=True, exist_ok=True)
            markdown.write_text(report_markdown(result))
        emit_json(result.to_dict(), print_it=as_json, output=output)
        return
    from tryon.bench_grpc import run_benchmark

    report = run_benchmark(
        clients=clients,
        seconds=seconds or 20.0,
        target=target,
        weights=weights,
        precision=precision,
        max_batch=max_batch,
        compare=compare,
        seen_photos=seen_photos,
        echo=console.print,
    )
    emit_json(asdict(report), print_it=as_json, output=output)
