"""Replaying the HorizontalPodAutoscaler over a traffic trace (`tryon k8s simulate`).

The controller part follows kube-controller-manager's HPA (pkg/controller/podautoscaler):
a sync every 15 s; per metric, the ratio of the pods' average to the target, left alone
within a 10% tolerance; pods still starting have no metric and count as 0 when scaling up
and as on target when scaling down; the largest proposal of all metrics wins; then the
stabilisation windows (the lowest recommendation of the scale-up window, the highest of
the scale-down window) and the rate policies, measured from the replica count at the
start of each policy's period.

The pods are a queueing model: each ready pod serves `capacity` try-ons per second
(`tryon bench --grpc`), traffic is spread evenly (client-side round robin), and the
try-ons in progress per pod are an M/D/1 queue's `rho + rho^2 / (2 (1 - rho))` (Poisson
arrivals, a nearly constant time per try-on) plus the backlog that builds while the
offered load exceeds the ready pods' capacity; a pod refuses what goes beyond
`max_queue`. Latency is `(in progress + 1) / capacity`: the wait for the try-ons ahead,
then its own.
The HPA sees each metric `metric_delay_s` late (scrape interval plus the adapter's window).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tryon.deploy.manifests import Manifest, ManifestError, parse_quantity
from tryon.errors import InvalidInputError

IN_PROGRESS_METRIC = "tryon_try_ons_in_progress"


@dataclass(frozen=True)
class ScalingPolicy:
    """At most `value` pods ("Pods") or percent ("Percent") of change per `period_s`."""

    kind: str
    value: int
    period_s: float


@dataclass(frozen=True)
class ScalingRules:
    """One direction of an HPA's `behavior`."""

    stabilization_s: float
    select: str
    policies: tuple[ScalingPolicy, ...]

    @classmethod
    def from_manifest(cls, rules: dict | None, default: ScalingRules) -> ScalingRules:
        """`behavior.scaleUp` or `behavior.scaleDown`; Kubernetes' defaults where absent."""
        if not rules:
            return default
        policies = tuple(
            ScalingPolicy(p["type"], int(p["value"]), float(p["periodSeconds"]))
            for p in rules.get("policies", [])
        )
        return cls(
            float(rules.get("stabilizationWindowSeconds", default.stabilization_s)),
            rules.get("selectPolicy", "Max"),
            policies or default.policies,
        )


# Kubernetes' defaults (autoscaling/v2 HorizontalPodAutoscalerBehavior).
DEFAULT_SCALE_UP = ScalingRules(
    0.0, "Max", (ScalingPolicy("Percent", 100, 15), ScalingPolicy("Pods", 4, 15))
)
DEFAULT_SCALE_DOWN = ScalingRules(300.0, "Max", (ScalingPolicy("Percent", 100, 15),))


@dataclass(frozen=True)
class HpaSpec:
    """What the simulation needs of a HorizontalPodAutoscaler.

    target_in_progress: the Pods metric's AverageValue (try-ons in progress per pod);
    target_cpu: the CPU Utilization target as a fraction of the request (None: no CPU).
    """

    min_replicas: int
    max_replicas: int
    target_in_progress: float
    target_cpu: float | None
    scale_up: ScalingRules = DEFAULT_SCALE_UP
    scale_down: ScalingRules = DEFAULT_SCALE_DOWN

    @classmethod
    def from_manifest(cls, hpa: Manifest) -> HpaSpec:
        """Read an autoscaling/v2 HorizontalPodAutoscaler scaling on `tryon_try_ons_in_progress`."""
        spec = hpa["spec"]
        target_in_progress = None
        target_cpu = None
        for metric in spec.get("metrics", []):
            if metric["type"] == "Pods" and metric["pods"]["metric"]["name"] == IN_PROGRESS_METRIC:
                target_in_progress = parse_quantity(metric["pods"]["target"]["averageValue"])
            elif metric["type"] == "Resource" and metric["resource"]["name"] == "cpu":
                target_cpu = metric["resource"]["target"]["averageUtilization"] / 100
        if target_in_progress is None:
            raise ManifestError(
                f"the HPA {hpa['metadata']['name']} has no Pods metric {IN_PROGRESS_METRIC}; "
                "the simulation replays that metric"
            )
        behavior = spec.get("behavior", {})
        return cls(
            int(spec.get("minReplicas", 1)),
            int(spec["maxReplicas"]),
            target_in_progress,
            target_cpu,
            ScalingRules.from_manifest(behavior.get("scaleUp"), DEFAULT_SCALE_UP),
            ScalingRules.from_manifest(behavior.get("scaleDown"), DEFAULT_SCALE_DOWN),
        )


@dataclass(frozen=True)
class PodModel:
    """One replica: `capacity` try-ons/s flat out, ready `startup_s` after it is created
    (scheduling, image pull, the server's time to SERVING, the readiness probe), refusing
    beyond `max_queue` try-ons; its CPU use is `cpu_at_capacity` of the request flat out."""

    capacity: float
    startup_s: float = 30.0
    max_queue: int = 32
    cpu_at_capacity: float = 0.95

    def __post_init__(self) -> None:
        if self.capacity <= 0:
            raise InvalidInputError(f"capacity must be positive try-ons/s, not {self.capacity}")
        if self.startup_s < 0 or self.max_queue < 1:
            raise InvalidInputError("startup_s must not be negative and max_queue at least 1")


@dataclass(frozen=True)
class ControllerSettings:
    """The HPA controller's flags and the metric pipeline's delay."""

    sync_s: float = 15.0
    tolerance: float = 0.1
    metric_delay_s: float = 15.0
    step_s: float = 1.0


@dataclass(frozen=True)
class Trace:
    """Offered load over time: try-ons per second at `seconds`, linear in between."""

    seconds: tuple[float, ...]
    rates: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.seconds) < 2 or len(self.seconds) != len(self.rates):
            raise InvalidInputError("a trace needs at least two (seconds, try-ons/s) points")
        if any(b <= a for a, b in zip(self.seconds, self.seconds[1:], strict=False)):
            raise InvalidInputError("a trace's seconds must increase from row to row")
        if any(rate < 0 for rate in self.rates):
            raise InvalidInputError("a trace's try-ons/s must not be negative")

    @property
    def duration_s(self) -> float:
        return self.seconds[-1] - self.seconds[0]

    def rate(self, t: float) -> float:
        """Try-ons per second at `t` seconds after the trace's start."""
        t += self.seconds[0]
        for (t0, r0), (t1, r1) in zip(
            zip(self.seconds, self.rates, strict=True),
            zip(self.seconds[1:], self.rates[1:], strict=True),
            strict=True,
        ):
            if t <= t1:
                return r0 + (r1 - r0) * max(0.0, t - t0) / (t1 - t0)
        return self.rates[-1]

    @classmethod
    def read_csv(cls, path: Path) -> Trace:
        """A CSV with the columns `seconds` and `try_ons_per_s` (a header row)."""
        try:
            with path.open(newline="") as file:
                rows = list(csv.DictReader(file))
            return cls(
                tuple(float(row["seconds"]) for row in rows),
                tuple(float(row["try_ons_per_s"]) for row in rows),
            )
        except FileNotFoundError:
            raise InvalidInputError(f"no trace at {path}") from None
        except (KeyError, ValueError, TypeError):
            raise InvalidInputError(
                f"{path} is not a trace: write a CSV with the header `seconds,try_ons_per_s` "
                "and one number pair per row"
            ) from None

    def write_csv(self, path: Path) -> None:
        """Write the trace as `read_csv` reads it."""
        with path.open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["seconds", "try_ons_per_s"])
            writer.writerows(zip(self.seconds, self.rates, strict=True))


def ramp_trace(
    base: float, factor: float, ramp_s: float, hold_s: float = 600, quiet_s: float = 300
) -> Trace:
    """Base load for `quiet_s`, a linear ramp to `factor` x base over `ramp_s`, `hold_s` at
    the peak, the same ramp down, then base load for 900 s (long enough to scale down)."""
    peak = base * factor
    t = [0.0, quiet_s, quiet_s + ramp_s, quiet_s + ramp_s + hold_s]
    t += [t[-1] + ramp_s, t[-1] + ramp_s + 900]
    return Trace(tuple(t), (base, base, peak, peak, base, base))


@dataclass
class Timeline:
    """One row per step: what the simulation saw."""

    seconds: list[float] = field(default_factory=list)
    offered: list[float] = field(default_factory=list)
    replicas: list[int] = field(default_factory=list)
    ready: list[int] = field(default_factory=list)
    in_progress_per_pod: list[float] = field(default_factory=list)
    latency_s: list[float] = field(default_factory=list)
    refused: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Figures:
    """The simulation's summary. "Above target" means beyond the HPA's tolerance band,
    `target x (1 + tolerance)`, within which it does not act."""

    target_in_progress: float
    peak_offered: float
    peak_replicas: int
    final_replicas: int
    max_in_progress_per_pod: float
    seconds_above_target: float
    longest_above_target_s: float
    refused_try_ons: float
    refused_fraction: float
    p50_latency_s: float
    p95_latency_s: float
    max_latency_s: float
    pod_hours: float
    scaled_down_to_min_after_s: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


@dataclass
class _Pod:
    created: float


def simulate(
    trace: Trace,
    hpa: HpaSpec,
    pods: PodModel,
    controller: ControllerSettings | None = None,
) -> tuple[Timeline, Figures]:
    """Replay `trace` against `hpa` with `pods`; start at `min_replicas` ready pods."""
    c = controller or ControllerSettings()
    replicas = [_Pod(-pods.startup_s) for _ in range(hpa.min_replicas)]
    timeline = Timeline()
    history: list[tuple[float, float, float]] = []  # (t, in progress per pod, cpu)
    recommendations: list[tuple[float, int]] = []
    events: list[tuple[float, int]] = []  # (t, replica change)
    backlog = 0.0
    next_sync = c.sync_s
    steps = int(trace.duration_s / c.step_s) + 1
    for step in range(steps):
        t = step * c.step_s
        offered = trace.rate(t)
        ready = sum(1 for pod in replicas if t - pod.created >= pods.startup_s)
        in_progress, latency, refused, rho, backlog = _serve(offered, ready, backlog, pods, c)
        history.append((t, in_progress, rho * pods.cpu_at_capacity))
        timeline.seconds.append(t)
        timeline.offered.append(offered)
        timeline.replicas.append(len(replicas))
        timeline.ready.append(ready)
        timeline.in_progress_per_pod.append(in_progress)
        timeline.latency_s.append(latency)
        timeline.refused.append(refused)
        if t + 1e-9 >= next_sync:
            next_sync += c.sync_s
            seen = _delayed(history, t - c.metric_delay_s)
            if seen is not None and ready > 0:
                desired = _desired(hpa, c, len(replicas), ready, *seen)
                new = _behave(hpa, t, len(replicas), desired, recommendations, events)
                if new != len(replicas):
                    events.append((t, new - len(replicas)))
                    replicas = _resize(replicas, new, t, pods.startup_s)
    return timeline, _figures(timeline, hpa, c)


def _serve(
    offered: float, ready: int, backlog: float, pods: PodModel, c: ControllerSettings
) -> tuple[float, float, float, float, float]:
    """One step of the ready pods: (in progress per pod, latency s, try-ons refused,
    utilisation, backlog after)."""
    arriving = offered * c.step_s
    if ready == 0:
        return float(pods.max_queue), math.inf, arriving + backlog, 1.0, 0.0
    capacity = ready * pods.capacity
    rho = offered / capacity
    served = min(backlog + arriving, capacity * c.step_s)
    backlog = backlog + arriving - served
    refused = 0.0
    limit = ready * pods.max_queue
    if backlog > limit:
        refused = backlog - limit
        backlog = limit
    # M/D/1 (a network's time per try-on hardly varies): rho + rho^2 / (2 (1 - rho)).
    steady = rho + rho * rho / (2 * (1 - rho)) if rho < 1 else float(pods.max_queue)
    in_progress = min(steady + backlog / ready, float(pods.max_queue))
    return in_progress, (in_progress + 1) / pods.capacity, refused, min(rho, 1.0), backlog


def _delayed(history: list[tuple[float, float, float]], at: float) -> tuple[float, float] | None:
    """The (in progress, cpu) the metrics pipeline reports at time `at`, if any yet."""
    if at < 0:
        return None
    for t, in_progress, cpu in reversed(history):
        if t <= at:
            return in_progress, cpu
    return None


def _desired(
    hpa: HpaSpec,
    c: ControllerSettings,
    current: int,
    ready: int,
    in_progress: float,
    cpu: float,
) -> int:
    """The replica count the metrics ask for: the largest of each metric's proposal."""
    proposals = [_proposal(in_progress / hpa.target_in_progress, current, ready, c.tolerance)]
    if hpa.target_cpu is not None:
        proposals.append(_proposal(cpu / hpa.target_cpu, current, ready, c.tolerance))
    return max(proposals)


def _proposal(ratio: float, current: int, ready: int, tolerance: float) -> int:
    """One metric's replica count (replica_calculator.go): the pods still starting have
    no metric: 0 when scaling up, on target when scaling down."""
    missing = current - ready
    if missing == 0:
        if abs(1 - ratio) <= tolerance:
            return current
        return math.ceil(ratio * ready)
    filled = ratio * ready + (0 if ratio > 1 else missing)
    new_ratio = filled / (ready + missing)
    if abs(1 - new_ratio) <= tolerance or (ratio < 1) != (new_ratio < 1):
        return current
    return math.ceil(new_ratio * (ready + missing))


def _behave(
    hpa: HpaSpec,
    t: float,
    current: int,
    desired: int,
    recommendations: list[tuple[float, int]],
    events: list[tuple[float, int]],
) -> int:
    """Stabilisation windows, then the rate policies and the replica bounds (horizontal.go:
    stabilizeRecommendationWithBehaviors, convertDesiredReplicasWithBehaviorRate)."""
    up_cut = t - hpa.scale_up.stabilization_s
    down_cut = t - hpa.scale_down.stabilization_s
    up = min([r for when, r in recommendations if when > up_cut] + [desired])
    down = max([r for when, r in recommendations if when > down_cut] + [desired])
    recommendations.append((t, desired))
    keep = max(hpa.scale_up.stabilization_s, hpa.scale_down.stabilization_s)
    recommendations[:] = [(when, r) for when, r in recommendations if when > t - keep]
    stable = min(max(current, up), down)
    if stable > current:
        limit = min(_up_limit(hpa.scale_up, current, t, events), hpa.max_replicas)
        return max(min(stable, limit), current)
    if stable < current:
        limit = max(_down_limit(hpa.scale_down, current, t, events), hpa.min_replicas)
        return min(max(stable, limit), current)
    return max(min(current, hpa.max_replicas), hpa.min_replicas)


def _up_limit(rules: ScalingRules, current: int, t: float, events: list[tuple[float, int]]) -> int:
    if rules.select == "Disabled":
        return current
    limits = []
    for policy in rules.policies:
        added = sum(d for when, d in events if d > 0 and when > t - policy.period_s)
        start = current - added
        if policy.kind == "Pods":
            limits.append(start + policy.value)
        else:
            limits.append(math.ceil(start * (1 + policy.value / 100)))
    return max(limits) if rules.select == "Max" else min(limits)


def _down_limit(
    rules: ScalingRules, current: int, t: float, events: list[tuple[float, int]]
) -> int:
    if rules.select == "Disabled":
        return current
    limits = []
    for policy in rules.policies:
        removed = -sum(d for when, d in events if d < 0 and when > t - policy.period_s)
        start = current + removed
        if policy.kind == "Pods":
            limits.append(start - policy.value)
        else:
            limits.append(int(start * (1 - policy.value / 100)))
    # Max: the policy allowing the most change, i.e. the fewest replicas.
    return min(limits) if rules.select == "Max" else max(limits)


def _resize(replicas: list[_Pod], count: int, t: float, startup_s: float) -> list[_Pod]:
    """Add pods created now, or remove the youngest first (not-ready ones are youngest)."""
    if count > len(replicas):
        return replicas + [_Pod(t) for _ in range(count - len(replicas))]
    return sorted(replicas, key=lambda pod: pod.created)[:count]


def _figures(timeline: Timeline, hpa: HpaSpec, c: ControllerSettings) -> Figures:
    target = hpa.target_in_progress
    # The HPA leaves the metric alone within its tolerance: above means beyond that band.
    above = [value > target * (1 + c.tolerance) for value in timeline.in_progress_per_pod]
    longest = run = 0
    for flag in above:
        run = run + 1 if flag else 0
        longest = max(longest, run)
    offered_total = sum(timeline.offered) * c.step_s
    refused_total = sum(timeline.refused)
    peak = max(timeline.offered)
    last_peak = max(i for i, value in enumerate(timeline.offered) if value >= peak)
    back = next(
        (
            timeline.seconds[i] - timeline.seconds[last_peak]
            for i in range(last_peak, len(timeline.seconds))
            if timeline.replicas[i] == hpa.min_replicas
        ),
        None,
    )
    return Figures(
        target_in_progress=target,
        peak_offered=peak,
        peak_replicas=max(timeline.replicas),
        final_replicas=timeline.replicas[-1],
        max_in_progress_per_pod=round(max(timeline.in_progress_per_pod), 3),
        seconds_above_target=sum(above) * c.step_s,
        longest_above_target_s=longest * c.step_s,
        refused_try_ons=round(refused_total, 1),
        refused_fraction=refused_total / offered_total if offered_total else 0.0,
        p50_latency_s=round(_weighted_quantile(timeline.latency_s, timeline.offered, 0.5), 4),
        p95_latency_s=round(_weighted_quantile(timeline.latency_s, timeline.offered, 0.95), 4),
        max_latency_s=round(max(timeline.latency_s), 4),
        pod_hours=round(sum(timeline.replicas) * c.step_s / 3600, 2),
        scaled_down_to_min_after_s=back,
    )


def _weighted_quantile(values: Sequence[float], weights: Sequence[float], q: float) -> float:
    """The `q` quantile of `values`, each counted `weights` times (try-ons at that latency)."""
    pairs = sorted(zip(values, weights, strict=True))
    total = sum(weights)
    if total == 0:
        return 0.0
    running = 0.0
    for value, weight in pairs:
        running += weight
        if running >= q * total:
            return value
    return pairs[-1][0]
