"""Experiment errors: subclasses of the product's one hierarchy in :mod:`tryon.errors`."""

from __future__ import annotations

from tryon.errors import InvalidInputError, TryOnError


class ExperimentError(TryOnError):
    """An experiment operation cannot go ahead; the message says why and what to do."""


class ExperimentNotFoundError(ExperimentError):
    """No experiment has this key."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"no experiment has the key {key!r}; create it first (`tryon ab create {key} ...`)"
        )
        self.key = key


class ExperimentExistsError(ExperimentError):
    """An experiment with this key already exists."""


class ExperimentStateError(ExperimentError):
    """The experiment is in the wrong state for this (starting a stopped one, say)."""


class ExperimentDefinitionError(InvalidInputError):
    """An experiment's definition is unusable: bad arms, weights, coverage or key."""


class EventError(InvalidInputError):
    """One event is unusable; ``event_id`` names it, and nothing of it was stored."""

    def __init__(self, event_id: str, reason: str) -> None:
        super().__init__(f"event {event_id!r}: {reason}")
        self.event_id = event_id
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.event_id, self.reason))


class NotEnoughDataError(InvalidInputError):
    """A statistical test cannot be computed yet (no variance, a zero baseline)."""
