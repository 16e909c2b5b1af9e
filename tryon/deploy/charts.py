"""Drawing a simulated autoscaling run: load, replicas, try-ons in progress and latency."""

from __future__ import annotations

from pathlib import Path

from tryon.deploy.autoscaling import Figures, Timeline
from tryon.errors import TryOnError


def plot_timeline(timeline: Timeline, figures: Figures, path: Path, title: str = "") -> None:
    """Write a PNG of three stacked panels sharing the time axis (minutes)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise TryOnError("--plot needs matplotlib: pip install 'tryon[dev]'") from None
    minutes = [t / 60 for t in timeline.seconds]
    fig, (load, queue, latency) = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    load.plot(minutes, timeline.offered, color="tab:gray", label="offered try-ons/s")
    load.set_ylabel("try-ons/s")
    pods = load.twinx()
    pods.step(minutes, timeline.replicas, where="post", color="tab:blue", label="replicas")
    pods.step(minutes, timeline.ready, where="post", color="tab:green", label="ready")
    pods.set_ylabel("pods")
    load.legend(loc="upper left")
    pods.legend(loc="upper right")
    queue.plot(minutes, timeline.in_progress_per_pod, color="tab:orange")
    queue.axhline(figures.target_in_progress, color="tab:red", linestyle="--", label="HPA target")
    queue.set_ylabel("try-ons in progress / pod")
    queue.legend(loc="upper right")
    latency.plot(minutes, [s * 1e3 for s in timeline.latency_s], color="tab:purple")
    latency.set_ylabel("latency (ms)")
    latency.set_yscale("log")
    latency.set_xlabel("minutes")
    fig.suptitle(
        title
        or f"peak {figures.peak_replicas} pods, p95 {figures.p95_latency_s * 1e3:.0f} ms, "
        f"{figures.refused_fraction:.2%} refused"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
