"""BatchQueue: coalescing, the wait bound, overflow, dropping unwanted items, closing."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tryon.server.batching import BatchQueue
from tryon.server.errors import DeadlineExpiredError, OverloadedError


class Recorder:
    """A batch function that doubles items, records each batch, and can be held shut."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.open = threading.Event()
        self.open.set()

    def __call__(self, items: list[int]) -> list[int | BaseException]:
        self.open.wait(5)
        self.batches.append(list(items))
        return [ValueError("odd one") if item == 13 else item * 2 for item in items]


def run(scenario, recorder=None, **options):
    """Run `scenario(queue, recorder)` on a fresh loop with a started queue (of a new
    `Recorder` unless one is given)."""
    recorder = recorder or Recorder()
    settings = {"max_batch": 4, "max_wait_s": 0.05, "max_queue": 8, "retry_after_s": 0.2}
    settings.update(options)

    async def main():
        with ThreadPoolExecutor(1) as executor:
            queue = BatchQueue(recorder, executor, **settings)
            queue.start()
            try:
                return await scenario(queue, recorder)
            finally:
                recorder.open.set()
                await queue.close()

    return asyncio.run(main()), recorder


def test_concurrent_items_share_batches_of_at_most_max_batch():
    async def scenario(queue, _):
        futures = [f for i in range(6) for f in queue.submit([i])]
        return [(await f).value for f in futures], [(await f).batch_size for f in futures]

    (values, sizes), recorder = run(scenario)
    assert values == [0, 2, 4, 6, 8, 10]
    assert [len(b) for b in recorder.batches] == [4, 2]
    assert sizes == [4, 4, 4, 4, 2, 2]


def test_a_lone_item_runs_at_once_when_no_other_call_is_on_its_way():
    async def scenario(queue, _):
        return (await queue.submit([1])[0]).queue_s

    queue_s, recorder = run(scenario, max_wait_s=0.5)
    assert queue_s < 0.2 and recorder.batches == [[1]]


def test_a_batch_waits_for_a_call_on_its_way_but_not_past_max_wait():
    async def scenario(queue, _):
        async def later_call() -> int:
            with queue.coming(1):
                await asyncio.sleep(0.03)  # decoding its photo
                future = queue.submit([2])[0]
            return (await future).batch_size

        late = asyncio.create_task(later_call())
        await asyncio.sleep(0)  # the later call has announced itself
        first = await queue.submit([1])[0]
        with queue.coming(1):  # announced, never submitted: the batch stops waiting at max_wait
            lone = await queue.submit([3])[0]
        return first.batch_size, first.queue_s, await late, lone.queue_s

    (size, waited, late_size, lone_waited), recorder = run(scenario, max_wait_s=0.2)
    assert size == late_size == 2 and recorder.batches[0] == [1, 2]
    assert 0.02 <= waited < 0.2
    assert 0.15 <= lone_waited < 1.0


def test_full_queue_refuses_at_once_with_a_retry_hint():
    async def scenario(queue, recorder):
        recorder.open.clear()
        held = queue.submit([1, 2, 3, 4])
        start = time.monotonic()
        with pytest.raises(OverloadedError) as refused:
            queue.submit([5])
        took = time.monotonic() - start
        recorder.open.set()
        await asyncio.gather(*held)
        return refused.value.retry_after_s, took

    (retry_after, took), _ = run(scenario, max_batch=2, max_queue=4, retry_after_s=0.2)
    assert retry_after == 0.2
    assert took < 0.05


class SlowRecorder(Recorder):
    """A batch function that takes 50 ms per item."""

    def __call__(self, items: list[int]) -> list[int | BaseException]:
        time.sleep(0.05 * len(items))
        return super().__call__(items)


def test_calls_are_refused_while_the_work_ahead_would_take_too_long():
    async def scenario(queue, recorder):
        await queue.submit([1])[0]  # one batch teaches the queue ~50 ms per item
        learned = queue.item_seconds
        queue.max_queue_wait_s = 1.5 * learned  # room for one item ahead, not two
        recorder.open.clear()
        held = queue.submit([2])  # nothing ahead
        second = queue.submit([3])  # one item of work ahead: within
        with pytest.raises(OverloadedError, match="ms of work") as refused:
            queue.submit([4])  # two items ahead: over, though max_queue has room
        recorder.open.set()
        await asyncio.gather(*held, *second)
        big = queue.submit(list(range(6)))  # idle again: any call that fits max_queue
        return learned, refused.value.retry_after_s, [(await f).value for f in big]

    (learned, retry_after, big), _ = run(
        scenario, SlowRecorder(), max_batch=1, max_wait_s=0.0, max_queue_wait_s=1.0
    )
    assert 0.045 <= learned < 1.0
    assert retry_after == 0.2
    assert big == [0, 2, 4, 6, 8, 10]


def test_cancelled_and_expired_items_are_dropped_before_running():
    async def scenario(queue, recorder):
        recorder.open.clear()
        first = queue.submit([1])  # runs, and holds the worker
        await asyncio.sleep(0.1)
        cancelled = queue.submit([2])
        expiring = queue.submit([3], timeout_s=0.01)
        kept = queue.submit([4])
        cancelled[0].cancel()
        await asyncio.sleep(0.05)
        recorder.open.set()
        await first[0]
        with pytest.raises(DeadlineExpiredError):
            await expiring[0]
        return (await kept[0]).value

    kept, recorder = run(scenario)
    assert kept == 8
    assert recorder.batches == [[1], [4]]


def test_an_item_error_fails_only_that_item():
    async def scenario(queue, _):
        futures = queue.submit([12, 13])
        ok = await futures[0]
        with pytest.raises(ValueError, match="odd one"):
            await futures[1]
        return ok.value

    value, _ = run(scenario)
    assert value == 24


def test_close_finishes_every_accepted_item():
    async def scenario(queue, recorder):
        futures = queue.submit([1, 2, 3, 4, 5])
        closing = asyncio.ensure_future(queue.close())
        await asyncio.sleep(0)
        results = [(await f).value for f in futures]
        await closing
        return results

    results, _ = run(scenario)
    assert results == [2, 4, 6, 8, 10]
