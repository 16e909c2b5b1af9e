"""The server's try-on counts survive a database outage: they wait in memory and are
written once the database answers again; only a bound or a stop while it is down loses
them, and then the log says so."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from tryon.experiments.tables import TryOn
from tryon.server.experiments import TryOnLedger


class SwitchableDatabase:
    """`sessions` while `up`; while down, `begin()` fails as a refused connection does, and
    with `broken` as a schema error does."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.up = True
        self.broken = False
        self.attempts = 0

    def begin(self):  # noqa: ANN201
        self.attempts += 1
        if self.broken:
            raise ProgrammingError("insert", {}, Exception('relation "tryons" does not exist'))
        if not self.up:
            raise OperationalError("connect", {}, ConnectionRefusedError("database down"))
        return self.sessions.begin()


def counted(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return sorted(session.scalars(select(TryOn.tryon_id)))


def test_counts_made_during_an_outage_are_written_when_it_ends(sessions) -> None:
    database = SwitchableDatabase(sessions)

    async def scenario() -> tuple[list[str], int]:
        ledger = TryOnLedger(database, retry_s=0.05)
        await ledger.record("t-1", "TOP-1", "u1")
        database.up = False
        await ledger.record("t-2", "TOP-1", "u1")
        attempts = database.attempts
        await ledger.record("t-3", "TOP-2", "u2")  # joins the backlog without a write
        assert database.attempts == attempts
        during = counted(sessions)
        database.up = True
        for _ in range(100):
            if not ledger.pending:
                break
            await asyncio.sleep(0.02)
        assert counted(sessions) == ["t-1", "t-2", "t-3"]
        attempts = database.attempts
        await ledger.record("t-4", "TOP-2", "u2")  # written at once again: the retry is over
        assert database.attempts == attempts + 1 and "t-4" in counted(sessions)
        await ledger.close()
        return during, len(ledger.pending)

    during, waiting = asyncio.run(scenario())
    assert during == ["t-1"] and waiting == 0


def test_a_stop_during_an_outage_and_the_bound_are_logged_as_lost(sessions, caplog) -> None:
    database = SwitchableDatabase(sessions)
    database.up = False

    async def scenario() -> None:
        ledger = TryOnLedger(database, retry_s=60, max_pending=2)
        for index in range(3):
            await ledger.record(f"t-{index}", "TOP-1", "u1")
        assert [record[0] for record in ledger.pending] == ["t-1", "t-2"]
        await ledger.close()

    with caplog.at_level(logging.ERROR, logger="tryon.server.experiments"):
        asyncio.run(scenario())
    messages = [record.getMessage() for record in caplog.records]
    assert any("oldest are lost" in message for message in messages)
    assert any("try-on counts lost" in message for message in messages)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(TryOn)) == 0


def test_a_count_the_database_refuses_for_another_reason_is_logged_not_kept(
    sessions, caplog
) -> None:
    database = SwitchableDatabase(sessions)
    database.broken = True

    async def scenario() -> int:
        ledger = TryOnLedger(database, retry_s=0.01)
        await ledger.record("t-1", "TOP-1", "u1")
        waiting = len(ledger.pending)
        await ledger.close()
        return waiting

    with caplog.at_level(logging.ERROR, logger="tryon.server.experiments"):
        assert asyncio.run(scenario()) == 0
    assert [record.getMessage() for record in caplog.records] == ["try-on not counted"]


def test_a_count_recorded_after_close_is_logged_as_lost_not_queued(sessions, caplog) -> None:
    async def scenario() -> int:
        ledger = TryOnLedger(sessions, retry_s=0.01)
        await ledger.close()
        await ledger.record("t-late", "TOP-1", "u1")
        return len(ledger.pending)

    with caplog.at_level(logging.ERROR, logger="tryon.server.experiments"):
        assert asyncio.run(scenario()) == 0
    assert [r.getMessage() for r in caplog.records] == [
        "try-on not counted: the server is stopping"
    ]
    assert counted(sessions) == []


def test_a_write_that_fails_after_close_is_logged_as_lost_without_a_new_retry(
    sessions, caplog
) -> None:
    """The database goes down while a count is being written and the server stops before
    the write fails: the count is reported lost, and no retry task outlives the ledger."""
    import threading

    class StallingDatabase(SwitchableDatabase):
        def __init__(self, sessions: sessionmaker[Session]) -> None:
            super().__init__(sessions)
            self.entered, self.release = threading.Event(), threading.Event()

        def begin(self):  # noqa: ANN201
            self.entered.set()
            self.release.wait(10)
            raise OperationalError("connect", {}, ConnectionRefusedError("database down"))

    database = StallingDatabase(sessions)

    async def scenario() -> tuple[int, bool]:
        ledger = TryOnLedger(database, retry_s=0.01)
        writing = asyncio.create_task(ledger.record("t-1", "TOP-1", "u1"))
        await asyncio.to_thread(database.entered.wait, 10)
        await ledger.close()
        database.release.set()
        await writing
        return len(ledger.pending), ledger._retrying is None

    with caplog.at_level(logging.ERROR, logger="tryon.server.experiments"):
        assert asyncio.run(scenario()) == (0, True)
    assert [r.getMessage() for r in caplog.records] == [
        "try-on not counted: the server is stopping"
    ]
