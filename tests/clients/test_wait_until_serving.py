"""A tool waiting for a starting server sees it SERVING as soon as it is, not when gRPC's
reconnect backoff next lets its channel try again."""

from __future__ import annotations

import socket
import threading
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tryon.client import TryOnClient


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_server_that_starts_late_is_seen_serving_promptly():
    port = _free_port()
    target = f"127.0.0.1:{port}"
    started: list[float] = []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)

    def start_late() -> None:
        # Long enough for failed attempts to grow gRPC's default backoff past 1 s.
        time.sleep(1.5)
        server.add_insecure_port(target)
        server.start()
        started.append(time.perf_counter())

    starter = threading.Thread(target=start_late)
    try:
        with TryOnClient(target) as client:
            starter.start()
            assert not client.serving()
            client.wait_until_serving(timeout_s=30)
            seen = time.perf_counter()
        starter.join()
    finally:
        server.stop(0)
    # With gRPC's default backoff the next attempt came 0.6-1.6 s after the server was up.
    assert seen - started[0] < 0.5
