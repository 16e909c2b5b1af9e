"""Training curves: one panel per run from its `losses.csv` (for docs/training.md)."""

from __future__ import annotations

from pathlib import Path

from tryon.train.loop import read_losses


def plot_runs(runs: list[Path], out: Path) -> Path:
    """Plot every loss column of each run's `losses.csv` against steps into one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 3.4), squeeze=False)
    for axis, run in zip(axes[0], runs, strict=True):
        columns = read_losses(run / "losses.csv")
        steps = columns.pop("step")
        columns.pop("seconds", None)
        for name, values in sorted(columns.items()):
            axis.plot(steps, values, label=name, linewidth=1.2)
        axis.set_title(run.name)
        axis.set_xlabel("step")
        axis.set_yscale("log")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out
