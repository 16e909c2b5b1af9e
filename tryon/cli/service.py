"""`tryon serve`, `tryon try-on` and `tryon demo`: run the service and call it."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated

import typer

from tryon.cli.common import PrecisionOption, WeightsOption, console
from tryon.errors import InvalidInputError


def serve(
    port: Annotated[
        int | None, typer.Option(help="gRPC port (env TRYON_PORT; default 50051).")
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Address to bind (env TRYON_HOST; default all interfaces).")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Prometheus /metrics port, -1 off (env TRYON_METRICS_PORT).")
    ] = None,
    health_port: Annotated[
        int | None,
        typer.Option(
            help="Second, plaintext port serving only gRPC health, for probes when the API "
            "port speaks TLS; 0 a free one, -1 none (env TRYON_HEALTH_PORT; default -1)."
        ),
    ] = None,
    weights: WeightsOption = None,
    db_url: Annotated[
        str | None,
        typer.Option(help="Catalog database URL (env TRYON_DATABASE_URL; default ./tryon.db)."),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="Torch device (env TRYON_DEVICE; default cpu).")
    ] = None,
    precision: PrecisionOption = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Torch threads for model work, 0 all cores (env TRYON_WORKERS)."),
    ] = None,
    max_batch: Annotated[
        int | None,
        typer.Option(help="Most try-ons per model batch (env TRYON_MAX_BATCH; default 2)."),
    ] = None,
    max_wait_ms: Annotated[
        float | None,
        typer.Option(help="Longest wait to fill a batch (env TRYON_MAX_WAIT_MS; default 2)."),
    ] = None,
    max_queue: Annotated[
        int | None,
        typer.Option(
            help="Queued try-ons before RESOURCE_EXHAUSTED (env TRYON_MAX_QUEUE; default 64)."
        ),
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option(
            help="Refuse persons below this confidence (env TRYON_MIN_CONFIDENCE; default 0.25)."
        ),
    ] = None,
    drain_s: Annotated[
        float | None, typer.Option(help="Seconds served NOT_SERVING after SIGTERM (default 5).")
    ] = None,
    grace_s: Annotated[
        float | None, typer.Option(help="Then seconds running calls get to finish (default 20).")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING, ERROR.")] = None,
) -> None:
    """Run the gRPC try-on service until SIGTERM (then drain and stop).

    Every option also reads TRYON_<OPTION> from the environment; see docs/service.md for
    all settings (caches, limits, keepalive).
    """
    import asyncio

    from tryon.openmp import limit_openmp_spinning
    from tryon.server.memory import skip_kernel_compiler

    # Before torch loads OpenMP: the work between the networks runs faster.
    spin_limited = limit_openmp_spinning()
    skip_kernel_compiler()  # before the models' imports: ~80 MB less resident
    from tryon.server.app import serve as run_server
    from tryon.server.logs import configure_logging
    from tryon.server.settings import ServerSettings

    settings = ServerSettings.load(
        port=port,
        host=host,
        metrics_port=metrics_port,
        health_port=health_port,
        weights=weights,
        database_url=db_url,
        device=device,
        precision=precision,
        workers=workers,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_queue=max_queue,
        min_confidence=min_confidence,
        drain_s=drain_s,
        grace_s=grace_s,
        log_level=log_level,
    )
    configure_logging(settings.log_level)
    if not spin_limited:
        logging.getLogger(__name__).warning(
            "torch was imported before `tryon serve` could set GOMP_SPINCOUNT: OpenMP keeps "
            "its default spin (docs/service.md)"
        )
    asyncio.run(run_server(settings))


def try_on_command(
    photo: Annotated[Path, typer.Option(help="The shopper photo (JPEG, PNG or WebP).")],
    sku: Annotated[list[str], typer.Option(help="Garment SKU; repeat for several.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the results.")] = Path("."),
    target: Annotated[
        str, typer.Option(envvar="TRYON_TARGET", help="The service, host:port.")
    ] = "localhost:50051",
    fmt: Annotated[str, typer.Option("--format", help="jpeg, png or webp.")] = "jpeg",
    quality: Annotated[int, typer.Option(help="JPEG/WebP quality 1-100.")] = 90,
    max_width: Annotated[int, typer.Option(help="Shrink results to this width (0: no).")] = 0,
    max_height: Annotated[int, typer.Option(help="Shrink results to this height (0: no).")] = 0,
    timeout: Annotated[float, typer.Option(help="Deadline in seconds.")] = 60.0,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="TRYON_API_KEY",
            help="The store's key from `tryon keys add`, for a service that asks for one "
            "(env TRYON_API_KEY; prefer it to the flag, which shows in the process list).",
            show_default=False,
        ),
    ] = None,
    tls: Annotated[
        bool, typer.Option("--tls", help="Connect over TLS, trusting the system's CAs.")
    ] = False,
    tls_ca: Annotated[
        Path | None, typer.Option(help="Connect over TLS, trusting this CA (PEM); implies --tls.")
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(help="Client certificate (PEM) for a mutual-TLS service; with --tls-key."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="The client certificate's private key (PEM).")
    ] = None,
) -> None:
    """Send a photo to a running service and save it dressed in each garment.

    A client only: start the service with `tryon serve` (or use `tryon demo`).
    """
    from tryon.client import OutputOptions, TlsOptions, TryOnClient

    try:
        data = photo.read_bytes()
    except OSError as error:
        raise InvalidInputError(f"cannot read --photo {photo}: {error.strerror}") from None
    options = OutputOptions(fmt, quality, max_width, max_height)
    out.mkdir(parents=True, exist_ok=True)
    extension = {"jpeg": "jpg", "png": "png", "webp": "webp"}.get(fmt, fmt)
    secure = tls or any(path is not None for path in (tls_ca, tls_cert, tls_key))
    try:
        tls_options = TlsOptions.from_files(tls_ca, tls_cert, tls_key) if secure else None
    except (OSError, ValueError) as error:
        raise typer.BadParameter(str(error), param_hint="--tls-*") from None
    start = time.perf_counter()
    with TryOnClient(target, timeout_s=timeout, api_key=api_key, tls=tls_options) as client:
        for response in client.try_on_many(data, list(sku), options):
            path = out / f"{photo.stem}-{response.garment_sku}.{extension}"
            path.write_bytes(response.image)
            ms = (time.perf_counter() - start) * 1e3
            console.print(
                f"{path}: {response.width}x{response.height}, confidence "
                f"{response.confidence:.2f}, {ms:.0f} ms since sending"
            )


def demo(
    out: Annotated[Path, typer.Option(help="Folder for the catalog and the sheet.")] = Path("demo"),
    shoppers: Annotated[int, typer.Option(min=1, help="Shopper photos to send.")] = 3,
    garments: Annotated[int, typer.Option(min=1, help="Sample garments each tries on.")] = 4,
    weights: WeightsOption = None,
) -> None:
    """The whole product in one command: catalog, server, gRPC calls, contact sheet.

    Writes OUT/catalog.db and OUT/tryon_sheet.png; needs no configuration.
    """
    from tryon.demo import run_demo

    run_demo(out, shoppers=shoppers, garments=garments, weights=weights, echo=console.print)
