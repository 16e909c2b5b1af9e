"""Simulated shoppers sent through the experiment service's gRPC API (`tryon ab simulate`,
`tryon demo`): each is assigned, then their orders and returns are recorded in batches."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from catalog.models import utcnow
from tryon.experiments.simulation import Shoppers, simulate_traffic

if TYPE_CHECKING:
    from tryon.client import ExperimentClient

EVENTS_PER_CALL = 500


def send_traffic(
    client: ExperimentClient,
    key: str,
    units: int,
    shoppers: Shoppers,
    effect: float,
    seed: int = 0,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, int]:
    """Assign `units` simulated shoppers to experiment `key` over gRPC, then send their
    events; the experiment's last arm gets the relative return-rate change `effect`.

    The simulated days start now. `on_progress(stage, done, total)` is told of each
    assignment ("assign") and each batch of events ("events"). Returns the counts:
    units, in_experiment, stored, duplicates.
    """
    counts = {"units": units, "in_experiment": 0, "stored": 0, "duplicates": 0}
    report = on_progress or (lambda stage, done, total: None)
    assigned = 0

    def arm_of(unit: str) -> str | None:
        nonlocal assigned
        answer = client.assign(key, unit)
        assigned += 1
        counts["in_experiment"] += answer.in_experiment
        report("assign", assigned, units)
        return answer.arm or None

    treated = client.results(key).arms[-1].name
    traffic = simulate_traffic(
        arm_of, units, start=utcnow(), shoppers=shoppers, effects={treated: effect}, seed=seed
    )
    for first in range(0, len(traffic.events), EVENTS_PER_CALL):
        batch = traffic.events[first : first + EVENTS_PER_CALL]
        answer = client.record_events(key, batch)
        counts["stored"] += answer.stored
        counts["duplicates"] += answer.duplicates
        report("events", first + len(batch), len(traffic.events))
    return counts
