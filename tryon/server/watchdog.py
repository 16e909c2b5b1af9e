"""Liveness for the kubelet: a health service name that fails when the event loop is stuck.

Readiness (`tryon.v1.TryOnService`) goes NOT_SERVING on purpose while the server warms up
and drains; liveness (`liveness`) must not, or the kubelet would restart a draining pod.
It answers from a watchdog instead: a heartbeat task on the event loop wakes every
`interval_s`, and a loop that did not turn for `stall_s` (a blocking call, a deadlock in
a callback) reports NOT_SERVING until it has turned on time again for `stall_s`. A loop
that stays stuck cannot answer at all, and the probe's timeout fails it; a monitor
thread logs where the loop is stuck, which the loop itself cannot.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable

import grpc
from grpc_health.v1 import health, health_pb2

log = logging.getLogger(__name__)

LIVENESS_SERVICE = "liveness"


class LoopWatchdog:
    """Watches one event loop's heartbeat; `alive()` says whether it turns on time.

    Args:
        stall_s: a heartbeat this late means the loop is stuck.
        interval_s: how often the heartbeat wakes (default: a quarter of `stall_s`, at
            most 1 s).
        on_lag: called on the loop with each heartbeat's lateness in seconds (metrics).
        clock: seconds, monotonic.
    """

    def __init__(
        self,
        stall_s: float,
        interval_s: float | None = None,
        on_lag: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stall_s = stall_s
        self.interval_s = interval_s or min(1.0, stall_s / 4)
        self.on_lag = on_lag
        self.clock = clock
        self._last_beat = clock()
        self._healthy_from = 0.0
        self._heartbeat: asyncio.Task | None = None
        self._monitor: threading.Thread | None = None
        self._stopped = threading.Event()

    def alive(self) -> bool:
        """False while the loop has not turned for `stall_s`, and for `stall_s` after."""
        now = self.clock()
        return now - self._last_beat <= self.stall_s and now >= self._healthy_from

    def start(self) -> None:
        """Start the heartbeat on the running loop and the monitor thread."""
        loop_thread = threading.get_ident()
        self._last_beat = self.clock()
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat(), name="watchdog")
        self._monitor = threading.Thread(
            target=self._watch, args=(loop_thread,), name="watchdog", daemon=True
        )
        self._monitor.start()

    async def stop(self) -> None:
        """Stop the heartbeat and the monitor thread."""
        self._stopped.set()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        if self._monitor is not None:
            await asyncio.to_thread(self._monitor.join)

    async def _beat(self) -> None:
        while True:
            before = self.clock()
            await asyncio.sleep(self.interval_s)
            now = self.clock()
            lag = max(0.0, now - before - self.interval_s)
            if lag > self.stall_s:
                self._healthy_from = now + self.stall_s
                log.error(
                    "the event loop was stuck; liveness NOT_SERVING for a while",
                    extra={"fields": {"stuck_s": round(lag, 2), "liveness": LIVENESS_SERVICE}},
                )
            self._last_beat = now
            if self.on_lag is not None:
                self.on_lag(lag)

    def _watch(self, loop_thread: int) -> None:
        """Log, once per stall, where the loop thread is stuck."""
        reported = None
        while not self._stopped.wait(self.interval_s):
            beat = self._last_beat
            if self.clock() - beat <= self.stall_s or beat == reported:
                continue
            reported = beat
            frame = sys._current_frames().get(loop_thread)
            stack = "".join(traceback.format_stack(frame)) if frame is not None else "unknown"
            log.error(
                "the event loop is stuck; the liveness probe will fail and the kubelet "
                "restart the container unless it turns again",
                extra={"fields": {"stuck_s": round(self.clock() - beat, 2), "stack": stack}},
            )


class HealthServicer(health.aio.HealthServicer):
    """The standard gRPC health service, whose `liveness` name answers from a watchdog.

    Other names keep the usual behaviour (`set` them); `liveness` stays SERVING through
    warm-up and drain while the loop turns.
    """

    def __init__(self, watchdog: LoopWatchdog) -> None:
        super().__init__()
        self.watchdog = watchdog

    async def Check(  # noqa: N802 (the gRPC method's name)
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        if request.service != LIVENESS_SERVICE:
            return await super().Check(request, context)
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if self.watchdog.alive()
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        return health_pb2.HealthCheckResponse(status=status)
