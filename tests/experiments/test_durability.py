"""The experiment service under load and failure: concurrent clients with duplicates and
retries store exactly the unique events; a server killed mid-stream loses no acknowledged one.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from sqlalchemy import Engine, func, select
from tryon_client.stubs.tryon.v1 import experiments_pb2 as pb
from tryon_client.stubs.tryon.v1 import experiments_pb2_grpc

from catalog.database import make_sessionmaker
from tryon.client import event_to_proto
from tryon.experiments.events import Event, LineItem, Purchase, Return
from tryon.experiments.store import create_experiment, start_experiment
from tryon.experiments.tables import ExperimentEvent, PurchaseItem
from tryon.experiments.tables import Return as ReturnRow
from tryon.server.experiments import ExperimentServerThread

KEY = "durability"
T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
CLIENTS = 16
BATCH = 50


def _start(engine: Engine) -> None:
    with make_sessionmaker(engine).begin() as session:
        create_experiment(session, KEY, [("control", 1), ("tryon", 1)])
        start_experiment(session, KEY, at=T0)


def _client_events(client: int, count: int) -> list[Event]:
    """`count` events of one client: orders of 2 items, every fifth followed by a return."""
    events: list[Event] = []
    order = 0
    while len(events) < count:
        unit, order_id = f"c{client}-u{order % 50}", f"c{client}-o{order}"
        bought = T0 + timedelta(minutes=order + 1)
        items = (LineItem("TOP-1", 1, 20.0), LineItem("SKIRT-2", 1, 35.0))
        events.append(Purchase(f"{order_id}-p", unit, bought, order_id, items))
        if order % 5 == 0 and len(events) < count:
            when = bought + timedelta(days=3)
            events.append(Return(f"{order_id}-r", unit, when, order_id, "TOP-1", 1))
        order += 1
    return events


def _send(stub: experiments_pb2_grpc.ExperimentServiceStub, batch: list[Event], timeout: float):
    request = pb.RecordEventsRequest(
        experiment_key=KEY, events=[event_to_proto(event) for event in batch]
    )
    return stub.RecordEvents(request, timeout=timeout)


def _stream_with_duplicates_and_retries(target: str, client: int, count: int) -> None:
    """Send a client's events in batches, a tenth of each batch resent from earlier; every
    fourth batch first goes with a deadline too short to answer, then again (a retry)."""
    rng = random.Random(client)
    events = _client_events(client, count)
    sent: list[Event] = []
    with grpc.insecure_channel(target) as channel:
        stub = experiments_pb2_grpc.ExperimentServiceStub(channel)
        for number, first in enumerate(range(0, len(events), BATCH)):
            fresh = events[first : first + BATCH]
            # Duplicates come first: a return must not arrive before its order.
            batch = rng.sample(sent, min(len(sent), BATCH // 10)) + fresh
            if number % 4 == 1:
                try:
                    _send(stub, batch, timeout=0.001)
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            _send(stub, batch, timeout=60)
            sent.extend(fresh)


def _stored(engine: Engine) -> tuple[int, int, int]:
    with make_sessionmaker(engine)() as session:
        return (
            session.scalar(select(func.count()).select_from(ExperimentEvent)),
            session.scalar(select(func.sum(PurchaseItem.quantity))),
            session.scalar(select(func.count()).select_from(ReturnRow)),
        )


# The load (16 clients x 1,000 events) takes about a minute on two cores; the
# default run sends a fifth of it, the same way.
@pytest.mark.parametrize("per_client", [200, pytest.param(1_000, marks=pytest.mark.slow)])
def test_concurrent_clients_with_duplicates_and_retries_store_exactly_the_unique_events(
    fresh_engine: Engine, per_client: int
) -> None:
    _start(fresh_engine)
    with (
        ExperimentServerThread(make_sessionmaker(fresh_engine)) as running,
        ThreadPoolExecutor(CLIENTS) as pool,
    ):
        clients = [
            pool.submit(_stream_with_duplicates_and_retries, running.target, c, per_client)
            for c in range(CLIENTS)
        ]
        for client in clients:
            client.result()
    unique = [e for c in range(CLIENTS) for e in _client_events(c, per_client)]
    purchases = sum(isinstance(e, Purchase) for e in unique)
    assert _stored(fresh_engine) == (len(unique), 2 * purchases, len(unique) - purchases)


SERVE = """
import sys, time
from catalog.database import create_catalog_engine, make_sessionmaker
from tryon.server.experiments import ExperimentServerThread
with ExperimentServerThread(make_sessionmaker(create_catalog_engine(sys.argv[1]))) as running:
    print(running.port, flush=True)
    time.sleep(600)
"""


@pytest.mark.postgres
@pytest.mark.parametrize("empty_db_url", ["postgresql"], indirect=True)
def test_a_server_killed_mid_stream_loses_no_acknowledged_event(
    fresh_engine: Engine, empty_db_url: str
) -> None:
    _start(fresh_engine)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, empty_db_url], stdout=subprocess.PIPE, text=True
    )
    try:
        target = f"localhost:{server.stdout.readline().strip()}"
        acknowledged: list[str] = []
        in_flight: dict[int, list[str]] = {}
        lock = threading.Lock()

        def stream(client: int) -> None:
            events = _client_events(client, 5_000)
            with grpc.insecure_channel(target) as channel:
                stub = experiments_pb2_grpc.ExperimentServiceStub(channel)
                for first in range(0, len(events), 20):
                    batch = events[first : first + 20]
                    with lock:
                        in_flight[client] = [e.event_id for e in batch]
                    try:
                        _send(stub, batch, timeout=10)
                    except grpc.RpcError as error:
                        assert error.code() == grpc.StatusCode.UNAVAILABLE
                        return
                    with lock:
                        acknowledged.extend(in_flight.pop(client))

        with ThreadPoolExecutor(4) as pool:
            streams = [pool.submit(stream, client) for client in range(4)]
            while len(acknowledged) < 400:  # a good part of the stream is acknowledged
                time.sleep(0.01)
                assert not any(s.done() for s in streams), "a stream ended before the kill"
            server.send_signal(signal.SIGKILL)
            for s in streams:
                s.result()
    finally:
        server.kill()
        server.wait()
    with make_sessionmaker(fresh_engine)() as session:
        stored = set(session.scalars(select(ExperimentEvent.event_id)))
    assert set(acknowledged) <= stored
    # The batches cut off by the kill are stored whole or not at all.
    for batch in in_flight.values():
        assert len(stored & set(batch)) in (0, len(batch))
