"""Dynamic batching: calls queue work items; one worker runs them in batches off the loop.

A batch starts when the first item arrives and closes when it holds `max_batch` items, when
no other call is on its way (`coming`: admitted, still decoding its photo or fetching its
garments), or when the first item has waited `max_wait_s`, whichever comes first; so a
lone request runs at once, one that has company on the way waits at most `max_wait_s`
for it, and under load batches fill without waiting. At most `max_queue`
items wait or run at once, and with `max_queue_wait_s` a call that would not fit in one
batch with what is queued is admitted only while the work ahead of it is expected to take
at most that long (the items waiting or running times the recent seconds per item);
otherwise it is refused at once with `OverloadedError` (a caller retrying elsewhere beats
one waiting here). An idle queue admits any call that fits `max_queue`, so a call with
many items is never refused for its own size. Items whose caller has gone (cancelled, or
the deadline passed) are dropped before the batch runs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Generic, TypeVar

from tryon.errors import NotReadyError
from tryon.server.errors import DeadlineExpiredError, OverloadedError

# How much each batch's seconds per item moves the running estimate.
ITEM_SECONDS_WEIGHT = 0.25

T = TypeVar("T")
R = TypeVar("R")

BatchRunner = Callable[[list[T]], Sequence["R | BaseException"]]


@dataclass(frozen=True)
class Batched(Generic[R]):
    """One item's result, with the size of the batch it ran in and its time in the queue."""

    value: R
    batch_size: int
    queue_s: float


@dataclass
class _Job(Generic[T, R]):
    item: T
    future: asyncio.Future[Batched[R]]
    deadline: float | None
    enqueued: float


class BatchQueue(Generic[T, R]):
    """Runs `run_batch(items) -> results` (one result or exception per item, in order) on
    `executor`, one batch at a time.

    Args:
        run_batch: the batch function; it runs in `executor`, never on the event loop.
        max_batch, max_wait_s, max_queue, max_queue_wait_s: see the module docstring
            (None: no limit on the expected wait).
        retry_after_s: the retry hint sent with `OverloadedError`.
        on_batch: called on the loop with the batch size and each item's queue seconds.
        on_depth: called with the number of items waiting or running whenever it changes.
    """

    def __init__(
        self,
        run_batch: BatchRunner,
        executor: Executor,
        *,
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
        retry_after_s: float,
        max_queue_wait_s: float | None = None,
        on_batch: Callable[[int, list[float]], None] | None = None,
        on_depth: Callable[[int], None] | None = None,
    ) -> None:
        self.run_batch = run_batch
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.max_queue_wait_s = max_queue_wait_s
        self.item_seconds = 0.0  # recent seconds per item (exponential average)
        self.retry_after_s = retry_after_s
        self.on_batch = on_batch
        self.on_depth = on_depth
        self._waiting: collections.deque[_Job[T, R]] = collections.deque()
        self._taken = 0  # collected into the current batch or running
        self._coming = 0  # items of admitted calls not yet submitted
        self._arrived = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task | None = None
        self._closed = False

    @property
    def depth(self) -> int:
        """Items waiting or running."""
        return len(self._waiting) + self._taken

    def start(self) -> None:
        """Start the worker task on the running loop."""
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="batch-worker")

    def check_room(self, count: int) -> None:
        """Raise OverloadedError if `count` more items would not fit now: a call checks
        before its photo is decoded, so that a refusal costs microseconds, not a decode
        on a saturated CPU (`submit` checks again, as others may have come in between)."""
        if self.depth + count > self.max_queue:
            raise OverloadedError(
                f"the server is at capacity ({self.depth} try-ons queued, limit "
                f"{self.max_queue}); retry after the suggested delay",
                self.retry_after_s,
            )
        expected_wait_s = self.depth * self.item_seconds
        if (
            self.max_queue_wait_s is not None
            and self.depth + count > self.max_batch  # a batch's worth always gets in
            and expected_wait_s > self.max_queue_wait_s
        ):
            raise OverloadedError(
                f"the server is busy ({self.depth} try-ons ahead, about "
                f"{expected_wait_s * 1e3:.0f} ms of work, limit "
                f"{self.max_queue_wait_s * 1e3:.0f} ms); retry after the suggested delay",
                self.retry_after_s,
            )

    @contextlib.contextmanager
    def coming(self, count: int) -> Iterator[None]:
        """Within this block `count` items are on their way (their call is decoding its photo
        or fetching its garments): a batch being collected waits for them, up to
        `max_wait_s`, instead of running at once. Submit them inside the block, with no
        await between `submit` and its end."""
        self._coming += count
        try:
            yield
        finally:
            self._coming -= count
            self._arrived.set()  # the batch being collected need not wait for these now

    def submit(
        self, items: Sequence[T], timeout_s: float | None = None
    ) -> list[asyncio.Future[Batched[R]]]:
        """Queue `items` together (all or none); return one future per item.

        Raises OverloadedError when they do not all fit, NotReadyError once closed.
        Cancel a future to withdraw its item.
        """
        if self._closed or self._worker is None:
            raise NotReadyError("the service is shutting down; retry on another replica")
        self.check_room(len(items))
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        deadline = None if timeout_s is None else now + timeout_s
        futures = []
        for item in items:
            job: _Job[T, R] = _Job(item, loop.create_future(), deadline, now)
            self._waiting.append(job)
            futures.append(job.future)
        self._idle.clear()
        self._arrived.set()
        self._report_depth()
        return futures

    async def close(self) -> None:
        """Refuse new items, finish every accepted one, then stop the worker."""
        self._closed = True
        await self._idle.wait()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            live = self._live(batch)
            if live:
                await self._run(loop, live)
            self._taken = 0
            self._report_depth()
            if not self._waiting:
                self._idle.set()

    async def _collect(self) -> list[_Job[T, R]]:
        """Wait for a first item, then for more until the batch is full or its time is up."""
        while not self._waiting:
            self._arrived.clear()
            await self._arrived.wait()
        batch = [self._take()]
        closes = batch[0].enqueued + self.max_wait_s
        while len(batch) < self.max_batch:
            if self._waiting:
                batch.append(self._take())
                continue
            if not self._coming:  # nobody on the way: waiting would only add latency
                break
            remaining = closes - time.monotonic()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                break
        return batch

    def _take(self) -> _Job[T, R]:
        self._taken += 1
        return self._waiting.popleft()

    def _live(self, batch: list[_Job[T, R]]) -> list[_Job[T, R]]:
        """The jobs still wanted: not cancelled and within their deadline."""
        now = time.monotonic()
        live = []
        for job in batch:
            if job.future.done():
                continue
            if job.deadline is not None and now >= job.deadline:
                job.future.set_exception(
                    DeadlineExpiredError("the deadline passed while the request was queued")
                )
                continue
            live.append(job)
        return live

    async def _run(self, loop: asyncio.AbstractEventLoop, live: list[_Job[T, R]]) -> None:
        started = time.monotonic()
        waits = [started - job.enqueued for job in live]
        if self.on_batch is not None:
            self.on_batch(len(live), waits)
        try:
            results = await loop.run_in_executor(
                self.executor, self.run_batch, [job.item for job in live]
            )
        except Exception as error:  # the whole batch failed: every caller hears why
            results = [error] * len(live)
        self._learn_item_seconds((time.monotonic() - started) / len(live))
        for job, wait, result in zip(live, waits, results, strict=True):
            if job.future.done():
                continue
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(Batched(result, len(live), wait))

    def _learn_item_seconds(self, seconds: float) -> None:
        """Fold one batch's seconds per item into the running estimate (the first batch
        sets it; later ones move it a quarter of the way)."""
        if self.item_seconds == 0.0:
            self.item_seconds = seconds
        else:
            self.item_seconds += ITEM_SECONDS_WEIGHT * (seconds - self.item_seconds)

    def _report_depth(self) -> None:
        if self.on_depth is not None:
            self.on_depth(self.depth)
