"""`tryon bench --grpc`: closed-loop load on the try-on service over loopback.

Starts `tryon serve` as its own process (so its memory is the server's alone) with a
sample catalog, waits for SERVING, then runs N clients that each send a call, wait for
the answer and send the next, for T seconds. Each call sends a 640x480 shopper photo
the server has not seen (unique trailing bytes, which JPEG decoders ignore), so the
person cache does not flatter the numbers; `seen_photos` measures the other case, a
shopper trying on more garments with a photo already analysed (cached). Prints
throughput, latency percentiles, error counts by status code, the server's resident
memory and its time from launch to SERVING.
With --target it loads a running service instead (memory is then not measured).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

PHOTO_SIZE = (480, 640)  # height, width: the photo the latency target is stated for
PHOTOS = 8
GARMENTS = 4
COMPARE_ROUNDS = 3  # gRPC and in-process rounds, alternated


@dataclass
class LoadReport:
    """What a load run measured; latencies in milliseconds, memory in MiB. `calls` is every
    successful call timed; `throughput_per_s` the steady state's (`LoadRun`)."""

    clients: int
    seconds: float
    calls: int
    errors: dict[str, int]
    throughput_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    server_rss_mib: float | None = None
    server_peak_rss_mib: float | None = None
    server_private_mib: float | None = None
    seconds_to_serving: float | None = None
    pipeline_throughput_per_s: float | None = None
    settings: dict = field(default_factory=dict)


def shopper_photos(count: int = PHOTOS) -> list[bytes]:
    """Generated shopper photos at PHOTO_SIZE, JPEG-encoded."""
    from tryon.data.synth import generate_sample

    photos = []
    for index in range(count):
        buffer = io.BytesIO()
        Image.fromarray(generate_sample(202, index, PHOTO_SIZE).person).save(
            buffer, format="JPEG", quality=90
        )
        photos.append(buffer.getvalue())
    return photos


@dataclass
class LoadRun:
    """One closed-loop run: the successful calls' latencies (ms), failures by status code,
    and the steady state's throughput.

    Throughput is measured between the first and the last call that ended before the
    deadline: `intervals` calls ended in `span_s` seconds after the first. The start-up
    (the first batch filling) and the end (calls still in flight at the deadline finish
    and are timed, but clients drop out) are not the steady state and count for neither.
    Calls that end together (a batch) make it count up to one call per round too many.
    """

    latencies: list[float]
    errors: Counter
    seconds: float
    intervals: int = 0
    span_s: float = 0.0

    @property
    def throughput_per_s(self) -> float:
        return self.intervals / self.span_s if self.span_s > 0 else 0.0

    def add(self, other: LoadRun) -> LoadRun:
        """This run and `other` as one (rounds of a longer run)."""
        return LoadRun(
            self.latencies + other.latencies,
            self.errors + other.errors,
            self.seconds + other.seconds,
            self.intervals + other.intervals,
            self.span_s + other.span_s,
        )


def run_load(
    target: str,
    photos: list[bytes],
    skus: list[str],
    clients: int,
    seconds: float,
    seen_photos: bool = False,
) -> LoadRun:
    """N closed-loop clients for `seconds`; returns when every client's last call has
    ended. Photos are new to the server unless `seen_photos` (then each is sent once
    untimed, so that every timed call finds it analysed)."""
    from tryon.client import ServiceError, TryOnClient

    latencies: list[float] = []
    errors: Counter = Counter()
    ends: list[float] = []
    lock = threading.Lock()

    if seen_photos:
        with TryOnClient(target, timeout_s=30) as client:
            for photo in photos:
                with contextlib.suppress(ServiceError):
                    client.try_on(photo, skus[0])
    stop_at = time.perf_counter() + seconds

    def client_loop(number: int) -> None:
        with TryOnClient(target, timeout_s=30) as client:
            call = 0
            while time.perf_counter() < stop_at:
                photo = photos[(number + call) % len(photos)]
                if not seen_photos:
                    photo += os.urandom(8)
                sku = skus[(number + call) % len(skus)]
                start = time.perf_counter()
                try:
                    client.try_on(photo, sku)
                except ServiceError as error:
                    with lock:
                        errors[error.code.name] += 1
                else:
                    end = time.perf_counter()
                    with lock:
                        latencies.append((end - start) * 1e3)
                        ends.append(end)
                call += 1

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    in_time = sorted(end for end in ends if end <= stop_at)
    if len(in_time) < 2:
        return LoadRun(latencies, errors, seconds)
    return LoadRun(latencies, errors, seconds, len(in_time) - 1, in_time[-1] - in_time[0])


def alternated_load(
    target: str,
    photos: list[bytes],
    skus: list[str],
    clients: int,
    seconds: float,
    rounds: int,
    between: Callable[[], None],
    seen_photos: bool = False,
) -> LoadRun:
    """`run_load` in `rounds` rounds of `seconds / rounds`, each followed by `between()`
    (the other side of a comparison, so that the machine's drift weighs on both alike),
    as one run."""
    total = None
    for _ in range(rounds):
        run = run_load(target, photos, skus, clients, seconds / rounds, seen_photos)
        total = run if total is None else total.add(run)
        between()
    return total


class InProcessLoad:
    """The pipeline in this process, batches of `batch`: each photo decoded and analysed,
    dressed in one `try_on` batch, and each result watermarked and encoded as the server
    sends it (JPEG, no C2PA signature, as the started server has no certificate): the
    service's work minus gRPC. `run` it in rounds between the gRPC rounds."""

    def __init__(
        self, weights: str | None, photos: list[bytes], batch: int, precision: str
    ) -> None:
        from tryon.data.synth import render_garment
        from tryon.pipeline import TryOnPipeline

        self.pipeline = TryOnPipeline.from_pretrained(weights, precision=precision)
        self.photos, self.batch = photos, batch
        image, mask = render_garment(0, 0)
        self.garments, self.masks = self.pipeline.prepare_garments([image] * batch, [mask] * batch)
        self.done, self.elapsed = 0, 0.0
        self._one_batch(0)  # warm-up, as the server's

    @property
    def throughput_per_s(self) -> float:
        return self.done / self.elapsed if self.elapsed else 0.0

    def run(self, seconds: float) -> None:
        """Dress batches for about `seconds` (at least one batch)."""
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or done == 0:
            self._one_batch(self.done + done)
            done += self.batch
        self.done += done
        self.elapsed += time.perf_counter() - start

    def _one_batch(self, first: int) -> None:
        from tryon.imaging import decode_image
        from tryon.provenance import TryOnClaims
        from tryon.server.output import OutputSpec, encode_result

        chosen = [self.photos[(first + i) % len(self.photos)] for i in range(self.batch)]
        analyses = [self.pipeline.analyse_person(decode_image(photo)) for photo in chosen]
        meta = self.pipeline.meta
        for result in self.pipeline.try_on(analyses, self.garments, self.masks):
            claims = TryOnClaims(f"bench-{first}", meta.name, meta.version)
            encode_result(result.image, OutputSpec(), "benchmark", claims, None)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`, 0 when empty."""
    return float(np.percentile(values, q)) if values else 0.0


def run_benchmark(
    *,
    clients: int = 8,
    seconds: float = 20.0,
    target: str | None = None,
    weights: str | None = None,
    precision: str | None = None,
    max_batch: int | None = None,
    compare: bool = False,
    seen_photos: bool = False,
    echo: Callable[[str], None] = print,
) -> LoadReport:
    """Run the benchmark (see the module docstring) and print its report."""
    from tryon.demo import build_sample_catalog, sample_sku
    from tryon.server.settings import ServerSettings

    max_batch = max_batch or ServerSettings.max_batch
    # The started server and the in-process pipeline run at the same precision: the one
    # asked for, else the server's own (TRYON_PRECISION, auto).
    precision = precision or ServerSettings.load().precision

    photos = shopper_photos()
    skus = [sample_sku(index) for index in range(GARMENTS)]
    # With `compare`, gRPC and the in-process pipeline alternate in short rounds, so that
    # the machine's drift (a noisy neighbour, a throttled core) weighs on both alike.
    in_process = InProcessLoad(weights, photos, max_batch, precision) if compare else None
    rounds = COMPARE_ROUNDS if compare else 1

    def load(grpc_target: str) -> LoadRun:
        def between() -> None:
            if in_process is not None:
                in_process.run(seconds / rounds)

        return alternated_load(
            grpc_target, photos, skus, clients, seconds, rounds, between, seen_photos
        )

    if target is not None:
        report = _report(clients, load(target))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            url = build_sample_catalog(Path(tmp) / "catalog.db", GARMENTS)
            with LocalServer(url, weights, max_batch, precision) as server:
                echo(f"server SERVING {server.seconds_to_serving:.1f} s after launch")
                report = _report(clients, load(server.target))
                memory = server.memory_mib()
                report.server_rss_mib = memory["VmRSS"]
                report.server_peak_rss_mib = memory["VmHWM"]
                report.server_private_mib = memory["RssAnon"]
                report.seconds_to_serving = server.seconds_to_serving
    # For --target, the settings of the in-process side (the remote server's own are
    # its operator's): compare only with a server on this machine, set alike.
    report.settings = {
        "max_batch": max_batch,
        "weights": weights or "bundled",
        "seen_photos": seen_photos,
        "precision": precision,
    }
    if in_process is not None:
        report.pipeline_throughput_per_s = in_process.throughput_per_s
    _print(report, echo)
    return report


def _report(clients: int, run: LoadRun) -> LoadReport:
    return LoadReport(
        clients=clients,
        seconds=run.seconds,
        calls=len(run.latencies),
        errors=dict(run.errors),
        throughput_per_s=run.throughput_per_s,
        p50_ms=percentile(run.latencies, 50),
        p95_ms=percentile(run.latencies, 95),
        p99_ms=percentile(run.latencies, 99),
    )


def _print(report: LoadReport, echo: Callable[[str], None]) -> None:
    echo(
        f"{report.clients} clients, {report.seconds:.0f} s: {report.calls} calls, "
        f"{report.throughput_per_s:.1f} try-ons/s; latency p50 {report.p50_ms:.0f} ms, "
        f"p95 {report.p95_ms:.0f} ms, p99 {report.p99_ms:.0f} ms; errors {report.errors or 0}"
    )
    if report.server_rss_mib is not None:
        echo(
            f"server memory: {report.server_rss_mib:.0f} MiB resident "
            f"({report.server_private_mib:.0f} MiB private), "
            f"peak {report.server_peak_rss_mib:.0f} MiB"
        )
    if report.pipeline_throughput_per_s:
        share = report.throughput_per_s / report.pipeline_throughput_per_s
        echo(
            f"in-process pipeline: {report.pipeline_throughput_per_s:.1f} try-ons/s; "
            f"gRPC reaches {share:.0%} of it"
        )


class LocalServer:
    """`tryon serve` in a child process on free loopback ports (stopped with SIGTERM)."""

    def __init__(
        self,
        database_url: str,
        weights: str | None,
        max_batch: int,
        precision: str = "auto",
        extra_flags: tuple[str, ...] = (),
        *,
        metrics: bool = False,
    ) -> None:
        self.port = _free_port()
        self.metrics_port = _free_port() if metrics else None
        self.command = [
            sys.executable, "-m", "tryon.cli", "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--metrics-port", str(self.metrics_port or -1),
            "--db-url", database_url, "--max-batch", str(max_batch),
            "--precision", precision, "--drain-s", "0", "--log-level", "WARNING",
        ]  # fmt: skip
        if weights:
            self.command += ["--weights", weights]
        self.command += list(extra_flags)
        self.target = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.seconds_to_serving = 0.0

    def __enter__(self) -> LocalServer:
        from tryon.client import TryOnClient

        start = time.perf_counter()
        self.process = subprocess.Popen(self.command)
        with TryOnClient(self.target) as client:
            while not client.serving():
                if self.process.poll() is not None:
                    raise RuntimeError(f"the server exited with status {self.process.returncode}")
                if time.perf_counter() - start > 300:
                    self.__exit__()
                    raise TimeoutError("the server was not SERVING within 300 s")
                time.sleep(0.1)
        self.seconds_to_serving = time.perf_counter() - start
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)

    def memory_mib(self) -> dict[str, float]:
        """The server's memory from Linux /proc, MiB: VmRSS (resident), VmHWM (peak
        resident), RssAnon (the private part; the rest are mapped files such as shared
        libraries)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return {
            line.split(":")[0]: int(line.split()[1]) / 1024
            for line in status.splitlines()
            if line.startswith(("VmRSS", "VmHWM", "RssAnon"))
        }


@dataclass
class OverloadReport:
    """What an overload run measured (milliseconds): the idle latency, the capacity, and
    under `factor` times that load the accepted calls' latency, the refused calls' time
    to refusal, and how often health answered anything but SERVING."""

    factor: float
    max_queue: int
    idle_calls: int
    idle_p50_ms: float
    idle_p99_ms: float
    capacity_per_s: float
    offered: int
    accepted: int
    accepted_p50_ms: float
    accepted_p99_ms: float
    refused: int
    refused_p99_ms: float
    refused_max_ms: float
    other_errors: dict[str, int]
    health_checks: int
    health_not_serving: int
    # From the server's own tryon_refusal_seconds histogram, when it was read: the share
    # of refusals answered within 10 ms of the call's start in the server, and the
    # smallest bucket bound (ms) that holds 99% of them.
    server_refused_within_10ms: float | None = None
    server_refused_p99_bound_ms: float | None = None

    @property
    def p99_ratio(self) -> float:
        """Accepted p99 over idle p99: the target is at most 2."""
        return self.accepted_p99_ms / self.idle_p99_ms if self.idle_p99_ms else float("inf")


def run_overload(
    target: str,
    photos: list[bytes],
    skus: list[str],
    *,
    factor: float = 4.0,
    seconds: float = 20.0,
    saturating_clients: int = 4,
    max_queue: int = 0,
    capacity_per_s: float | None = None,
) -> OverloadReport:
    """Idle latency (one client), capacity (closed loop, `saturating_clients`, unless
    `capacity_per_s` gives it: a server that refuses early under load would otherwise
    understate it; where the closed loop ends too few calls to time, the idle run's rate),
    then an open loop (Poisson arrivals) at `factor` times the capacity for `seconds`,
    with health checked every 100 ms; `max_queue` is only reported."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from tryon_client.stubs.tryon.v2 import tryon_pb2

    idle_run = run_load(target, photos, skus, 1, seconds / 2)
    idle, idle_errors = idle_run.latencies, idle_run.errors
    if idle_errors or not idle:
        raise RuntimeError(f"the idle run failed: {dict(idle_errors)}")
    capacity = capacity_per_s
    if capacity is None:
        saturated = run_load(target, photos, skus, saturating_clients, seconds / 2)
        # On a machine too slow or busy for two calls a client to end in the run, there is
        # no steady state to time: one client's rate, a lower bound, stands in.
        capacity = saturated.throughput_per_s or len(idle) / idle_run.seconds
    rate = factor * capacity
    accepted: list[float] = []
    refused: list[float] = []
    others: Counter = Counter()
    lock = threading.Lock()
    health = Counter()
    stop = threading.Event()

    def watch_health() -> None:
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while not stop.wait(0.1):
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    health[health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)] += 1
                except grpc.RpcError as error:
                    health[error.code().name] += 1

    def finished(start: float, future: grpc.Future) -> None:
        took = (time.perf_counter() - start) * 1e3
        code = future.code()
        with lock:
            if code == grpc.StatusCode.OK:
                accepted.append(took)
            elif code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                refused.append(took)
            else:
                others[code.name] += 1

    rng = np.random.default_rng(0)
    watcher = threading.Thread(target=watch_health)
    watcher.start()
    try:  # the health watcher stops however the open loop ends
        pending = []
        with grpc.insecure_channel(target) as channel:
            call = channel.unary_unary(
                "/tryon.v2.TryOnService/TryOn",
                request_serializer=tryon_pb2.TryOnRequest.SerializeToString,
                response_deserializer=tryon_pb2.TryOnResponse.FromString,
            )
            begin = time.perf_counter()
            due = begin
            sent = 0
            while due - begin < seconds:
                due += rng.exponential(1 / rate)
                time.sleep(max(0.0, due - time.perf_counter()))
                request = tryon_pb2.TryOnRequest(
                    person_image=photos[sent % len(photos)] + os.urandom(8),
                    garment_sku=skus[sent % len(skus)],
                )
                start = time.perf_counter()
                future = call.future(request, timeout=30)
                future.add_done_callback(lambda f, start=start: finished(start, f))
                pending.append(future)
                sent += 1
            for future in pending:
                with contextlib.suppress(grpc.RpcError, grpc.FutureCancelledError):
                    future.result()
    finally:
        stop.set()
        watcher.join()
    return OverloadReport(
        factor=factor,
        max_queue=max_queue,
        idle_calls=len(idle),
        idle_p50_ms=percentile(idle, 50),
        idle_p99_ms=percentile(idle, 99),
        capacity_per_s=capacity,
        offered=sent,
        accepted=len(accepted),
        accepted_p50_ms=percentile(accepted, 50),
        accepted_p99_ms=percentile(accepted, 99),
        refused=len(refused),
        refused_p99_ms=percentile(refused, 99),
        refused_max_ms=max(refused, default=0.0),
        other_errors=dict(others),
        health_checks=sum(health.values()),
        health_not_serving=sum(n for name, n in health.items() if name != "SERVING"),
    )


def print_overload(report: OverloadReport, echo: Callable[[str], None] = print) -> None:
    """The overload figures in words."""
    echo(
        f"idle: {report.idle_calls} calls, p50 {report.idle_p50_ms:.0f} ms, "
        f"p99 {report.idle_p99_ms:.0f} ms; capacity {report.capacity_per_s:.1f} try-ons/s"
    )
    echo(
        f"{report.factor:g}x capacity (max_queue {report.max_queue}): {report.offered} calls "
        f"offered; {report.accepted} accepted, p50 {report.accepted_p50_ms:.0f} ms, p99 "
        f"{report.accepted_p99_ms:.0f} ms = {report.p99_ratio:.2f}x idle p99 (target <= 2)"
    )
    echo(
        f"{report.refused} refused RESOURCE_EXHAUSTED in p99 {report.refused_p99_ms:.1f} ms, "
        f"max {report.refused_max_ms:.1f} ms (target <= 10); other errors "
        f"{report.other_errors or 0}; health not SERVING in {report.health_not_serving} of "
        f"{report.health_checks} checks"
    )
    if report.server_refused_within_10ms is not None:
        echo(
            f"server side: {report.server_refused_within_10ms:.1%} of refusals within 10 ms "
            f"of the call's start in the server, 99% within "
            f"{report.server_refused_p99_bound_ms:g} ms (the rest of the client's time is "
            "transport and the load generator's own wait for a core)"
        )


def server_refusal_times(metrics_text: str) -> tuple[float, float] | None:
    """From a server's `/metrics` text: the share of its RESOURCE_EXHAUSTED answers given
    within 10 ms of the call's start, and the smallest histogram bound (ms) holding 99% of
    them; None before any refusal."""
    from prometheus_client.parser import text_string_to_metric_families

    buckets = {
        float(sample.labels["le"]): sample.value
        for family in text_string_to_metric_families(metrics_text)
        if family.name == "tryon_refusal_seconds"
        for sample in family.samples
        if sample.name.endswith("_bucket")
    }
    total = buckets.get(float("inf"), 0.0)
    if not total:
        return None
    bounds = sorted(buckets)
    p99_bound = next(bound for bound in bounds if buckets[bound] >= 0.99 * total)
    return buckets[0.01] / total, p99_bound * 1e3


def main(argv: list[str] | None = None) -> None:
    """`python -m tryon.bench_grpc --overload 4`: the overload benchmark on a started
    `tryon serve` (bundled weights unless --weights) with a sample catalog."""
    import argparse
    import urllib.request

    from tryon.demo import build_sample_catalog, sample_sku

    parser = argparse.ArgumentParser(prog="python -m tryon.bench_grpc")
    parser.add_argument("--overload", type=float, default=4.0, help="times the capacity")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--weights")
    parser.add_argument("--max-batch", type=int, default=2)
    parser.add_argument("--max-queue", type=int, default=2)
    parser.add_argument(
        "--capacity", type=float, help="try-ons/s to overload (default: measured first)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    photos = shopper_photos()
    skus = [sample_sku(index) for index in range(GARMENTS)]
    with tempfile.TemporaryDirectory() as tmp:
        url = build_sample_catalog(Path(tmp) / "catalog.db", GARMENTS)
        flags = ("--max-queue", str(args.max_queue))
        with LocalServer(
            url, args.weights, args.max_batch, extra_flags=flags, metrics=True
        ) as server:
            report = run_overload(
                server.target,
                photos,
                skus,
                factor=args.overload,
                seconds=args.seconds,
                # As many closed-loop clients as the queue holds: more would be refused
                # and count as lost capacity.
                saturating_clients=min(2 * args.max_batch, args.max_queue),
                max_queue=args.max_queue,
                capacity_per_s=args.capacity,
            )
            metrics_url = f"http://127.0.0.1:{server.metrics_port}/metrics"
            with urllib.request.urlopen(metrics_url, timeout=5) as response:
                times = server_refusal_times(response.read().decode())
            if times is not None:
                report.server_refused_within_10ms, report.server_refused_p99_bound_ms = times
    if args.json:
        import json
        from dataclasses import asdict

        print(json.dumps({**asdict(report), "p99_ratio": report.p99_ratio}, indent=2))
    else:
        print_overload(report)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    main()
