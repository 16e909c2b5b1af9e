"""`tryon.v1.ExperimentService`: proto messages to experiment-store calls and back.

Each call runs in one database transaction on a worker thread (the event loop keeps
serving try-ons meanwhile); RecordEvents answers only after the commit, so an
acknowledged event is stored. Errors are raised as domain errors and mapped to statuses
in `tryon.server.errors`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import grpc
from sqlalchemy.exc import OperationalError, SQLAlchemyError
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

    A failed write is logged and does not fail the try-on: the shopper still gets the
    image, and the report undercounts that one try-on.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    async def record(self, tryon_id: str, sku: str, unit_id: str) -> None:
        """Store one served try-on (idempotent on `tryon_id`)."""

        def run() -> None:
            with self.sessions.begin() as session:
                store.record_tryon(session, tryon_id, sku, unit_id)

        try:
            await asyncio.to_thread(run)
        except SQLAlchemyError:
            log.warning(
                "try-on not counted for the experiments",
                exc_info=True,
                extra={"fields": {"tryon_id": tryon_id, "sku": sku}},
            )


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
