"""`tryon.v1.ExperimentService`: proto messages to experiment-store calls and back.

Each call runs in one database transaction on a worker thread (the event loop keeps
serving try-ons meanwhile); RecordEvents answers only after the commit, so an
acknowledged event is stored. Errors are raised as domain errors and mapped to statuses
in `tryon.server.errors`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import grpc
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from tryon_client.stubs.tryon.v1 import experiments_pb2, experiments_pb2_grpc

from catalog.database import SQLITE_WRITE
from catalog.models import utcnow
from tryon.errors import NotReadyError
from tryon.experiments import store
from tryon.experiments.events import Event, LineItem, Purchase, Return
from tryon.server.errors import InvalidFieldError
from tryon.server.loop_thread import LoopThread

log = logging.getLogger(__name__)

MAX_EVENTS_PER_CALL = 1000

T = TypeVar("T")


class ExperimentServicer(experiments_pb2_grpc.ExperimentServiceServicer):
    """Assign, RecordEvents and GetResults on the experiment tables of `sessions`' database."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    async def _in_transaction(self, work: Callable[[Session], T], writes: bool = True) -> T:
        """Run `work(session)` in one committed transaction on a worker thread; one that
        `writes` queues for SQLite's write lock up front (see `SQLITE_WRITE`)."""

        def run() -> T:
            try:
                with self.sessions.begin() as session:
                    session.connection(execution_options={SQLITE_WRITE: writes})
                    return work(session)
            except OperationalError as error:
                raise NotReadyError(
                    "the experiment database cannot be reached; nothing was stored, retry"
                ) from error

        return await asyncio.to_thread(run)

    async def Assign(  # noqa: N802 (the proto's name)
        self, request: experiments_pb2.AssignRequest, context: grpc.aio.ServicerContext
    ) -> experiments_pb2.AssignResponse:
        key = _required(request.experiment_key, "experiment_key")
        unit = _required(request.unit_id, "unit_id")
        assignment = await self._in_transaction(lambda s: store.assign(s, key, unit))
        return experiments_pb2.AssignResponse(
            arm=assignment.arm or "",
            in_experiment=assignment.in_experiment,
            bucket=assignment.bucket,
        )

    async def RecordEvents(  # noqa: N802
        self, request: experiments_pb2.RecordEventsRequest, context: grpc.aio.ServicerContext
    ) -> experiments_pb2.RecordEventsResponse:
        key = _required(request.experiment_key, "experiment_key")
        if len(request.events) > MAX_EVENTS_PER_CALL:
            raise InvalidFieldError(
                "events",
                f"{len(request.events)} events in one call; send at most {MAX_EVENTS_PER_CALL}",
            )
        now = utcnow()
        events = [from_proto(event, index, now) for index, event in enumerate(request.events)]
        result = await self._in_transaction(lambda s: store.record_events(s, key, events))
        return experiments_pb2.RecordEventsResponse(
            stored=result.stored, duplicates=result.duplicates
        )

    async def GetResults(  # noqa: N802
        self, request: experiments_pb2.GetResultsRequest, context: grpc.aio.ServicerContext
    ) -> experiments_pb2.GetResultsResponse:
        # Imported on the first report: the statistics stack (SciPy) costs the serving
        # process ~60 MB of memory that try-ons never need.
        from tryon.experiments.report import build_report

        key = _required(request.experiment_key, "experiment_key")
        report = await self._in_transaction(lambda s: build_report(s, key), writes=False)
        return results_to_proto(report)


def _required(value: str, field: str) -> str:
    if not value:
        raise InvalidFieldError(field, f"{field} is empty")
    return value


def from_proto(event: experiments_pb2.Event, index: int, now: datetime) -> Event:
    """A proto `Event` as the store's event object; `index` names it in errors.

    An unset `time` means now; quantities and ids are checked by the store, which names
    the event in its error.
    """
    when = (
        event.time.ToDatetime(tzinfo=timezone.utc) if event.HasField("time") else now  # noqa: UP017
    )
    kind = event.WhichOneof("kind")
    if kind == "purchase":
        return Purchase(
            event_id=event.event_id,
            unit_id=event.unit_id,
            time=when,
            order_id=event.purchase.order_id,
            items=tuple(
                LineItem(sku=item.sku, quantity=item.quantity, unit_price=item.unit_price)
                for item in event.purchase.items
            ),
        )
    if kind == "return":
        returned = getattr(event, "return")  # `return` is a Python keyword
        return Return(
            event_id=event.event_id,
            unit_id=event.unit_id,
            time=when,
            order_id=returned.order_id,
            sku=returned.sku,
            quantity=returned.quantity,
        )
    raise InvalidFieldError(
        f"events[{index}]",
        f"event {event.event_id!r} (events[{index}]) is neither a purchase nor a return",
    )


def _estimate(values: dict[str, Any] | None) -> experiments_pb2.Estimate | None:
    if values is None:
        return None
    return experiments_pb2.Estimate(
        effect=values["effect"],
        ci_low=values["ci_low"],
        ci_high=values["ci_high"],
        p_value=values["p_value"],
    )


def results_to_proto(report: dict[str, Any]) -> experiments_pb2.GetResultsResponse:
    """`build_report`'s dictionary as the GetResults response (a test with too little data
    yet leaves its estimate unset)."""
    arm_fields = experiments_pb2.ArmResult.DESCRIPTOR.fields_by_name

    def arm(row: dict[str, Any]) -> experiments_pb2.ArmResult:
        known = {name: value for name, value in row.items() if name in arm_fields}
        return experiments_pb2.ArmResult(
            **{name: value for name, value in known.items() if value is not None}
        )

    return experiments_pb2.GetResultsResponse(
        experiment=report["experiment"],
        srm_p_value=report["srm_p_value"] if report["srm_p_value"] is not None else 1.0,
        arms=[arm(row) for row in report["arms"]],
        comparisons=[
            experiments_pb2.Comparison(
                arm=comparison["arm"],
                metric=comparison["metric"],
                absolute=_estimate(comparison.get("absolute")),
                relative=_estimate(comparison.get("relative")),
            )
            for comparison in report["comparisons"]
        ],
        unknown_skus=report["unknown_skus"],
    )


class TryOnLedger:
    """Counts the try-ons served to shoppers with a `unit_id`, for the experiment reports.

    A count that cannot be written because the database cannot be reached does not fail
    the try-on: it waits in memory, in order, and one retry task writes the waiting counts
    every `retry_s` seconds until the database answers. While counts wait, new ones join
    them without a write of their own (the call does not wait on a database known to be
    down). At most `max_pending` wait; beyond that the oldest are dropped. Dropped counts,
    counts still waiting when the server stops, counts recorded after `close`, and counts
    the database refuses for another reason (a schema error) are logged as lost.
    """

    def __init__(
        self, sessions: sessionmaker[Session], retry_s: float = 5.0, max_pending: int = 10_000
    ) -> None:
        self.sessions = sessions
        self.retry_s = retry_s
        self.max_pending = max_pending
        self.pending: collections.deque[tuple[str, str, str]] = collections.deque()
        self.dropped = 0
        self._retrying: asyncio.Task | None = None
        self._closed = False

    async def record(self, tryon_id: str, sku: str, unit_id: str) -> None:
        """Store one served try-on (idempotent on `tryon_id`), or queue it for the retry."""
        count = (tryon_id, sku, unit_id)
        if self._closed:  # no write nor retry would come: say so instead of queueing it
            self._lost_at_stop(sku)
            return
        if self._retrying is not None:
            self._wait(count)
            return
        try:
            await self._write([count])
        except (OperationalError, InterfaceError):
            if self._closed:  # the write outlived close(): no retry would follow
                self._lost_at_stop(sku)
                return
            self._wait(count)
            log.warning(
                "try-on counts wait for the database",
                exc_info=True,
                extra={"fields": {"retry_s": self.retry_s}},
            )
            if self._retrying is None:  # calls that failed side by side start one retry
                self._retrying = asyncio.create_task(self._retry(), name="try-on counts")
        except SQLAlchemyError:
            log.error("try-on not counted", exc_info=True, extra={"fields": {"sku": sku}})

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop retrying; one last write of what waits (at most `timeout_s`), and log what
        is lost."""
        self._closed = True
        if self._retrying is not None:
            self._retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrying
        if not self.pending:
            return
        with contextlib.suppress(SQLAlchemyError, TimeoutError):
            await asyncio.wait_for(self._write_waiting(), timeout_s)
        if self.pending:
            log.error(
                "try-on counts lost: the database was down until the server stopped",
                extra={"fields": {"lost": len(self.pending)}},
            )

    @staticmethod
    def _lost_at_stop(sku: str) -> None:
        log.error("try-on not counted: the server is stopping", extra={"fields": {"sku": sku}})

    def _wait(self, count: tuple[str, str, str]) -> None:
        if len(self.pending) >= self.max_pending:
            self.pending.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error(
                    "try-on counts waiting for the database exceed the bound: the oldest are lost",
                    extra={"fields": {"max_pending": self.max_pending, "lost": self.dropped}},
                )
        self.pending.append(count)

    async def _write(self, counts: list[tuple[str, str, str]]) -> None:
        def run() -> None:
            with self.sessions.begin() as session:
                for tryon_id, sku, unit_id in counts:
                    store.record_tryon(session, tryon_id, sku, unit_id)

        await asyncio.to_thread(run)

    async def _write_waiting(self) -> None:
        """Write the waiting counts and take them off the queue (those that joined while
        they were written stay)."""
        batch = list(self.pending)
        await self._write(batch)
        written = {count[0] for count in batch}
        self.pending = collections.deque(c for c in self.pending if c[0] not in written)

    async def _retry(self) -> None:
        try:
            while self.pending:
                await asyncio.sleep(self.retry_s)
                try:
                    await self._write_waiting()
                except (OperationalError, InterfaceError):
                    continue
                except SQLAlchemyError:
                    log.error(
                        "try-on counts lost: the database refused them",
                        exc_info=True,
                        extra={"fields": {"lost": len(self.pending)}},
                    )
                    self.pending.clear()
                    return
                log.info("try-on counts written after the outage")
        finally:
            self._retrying = None


class ExperimentServerThread:
    """The experiment service alone on a free loopback port, on its own event loop in a
    background thread: `tryon ab simulate` drives the real gRPC API with it when no
    running server is given. No networks are loaded.

        with ExperimentServerThread(sessions) as running:
            client = ExperimentClient(running.target)
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.port: int | None = None
        self._loop_thread = LoopThread("experiment-server")
        self._server: grpc.aio.Server | None = None

    @property
    def target(self) -> str:
        """Where clients connect: `localhost:<port>`."""
        return f"localhost:{self.port}"

    async def _start(self) -> None:
        # Imported here: the interceptor's metrics are only needed by a running server.
        from tryon.server.interceptor import CallInterceptor
        from tryon.server.metrics import ServerMetrics

        server = grpc.aio.server(interceptors=[CallInterceptor(ServerMetrics(max_batch=1))])
        experiments_pb2_grpc.add_ExperimentServiceServicer_to_server(
            ExperimentServicer(self.sessions), server
        )
        self.port = server.add_insecure_port("localhost:0")
        await server.start()
        self._server = server

    def __enter__(self) -> ExperimentServerThread:
        self._loop_thread.start()
        self._loop_thread.run(self._start())
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._loop_thread.run(self._server.stop(1.0))
        self._loop_thread.close()
