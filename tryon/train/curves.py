"""Training curves: one panel per run from its `losses.csv` and, where the run was
validated (`--val-data`), its held-out score from `validation.csv` (for docs/training.md)."""

from __future__ import annotations

from pathlib import Path

from tryon.train.logs import read_losses


def plot_runs(runs: list[Path], out: Path) -> Path:
    """Plot every loss column of each run's `losses.csv` against steps into one PNG, with
    the held-out score on a second axis where the run has a `validation.csv`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(runs), figsize=(5.2 * len(runs), 3.4), squeeze=False)
    for axis, run in zip(axes[0], runs, strict=True):
        steps, columns = _series(run / "losses.csv")
        for name, values in sorted(columns.items()):
            axis.plot(steps, values, label=name, linewidth=1.2)
        axis.set_title(run.name)
        axis.set_xlabel("step")
        axis.set_yscale("log")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="upper left")
        if (run / "validation.csv").exists():
            _plot_validation(axis, run / "validation.csv")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def _plot_validation(axis, path: Path) -> None:
    """Each held-out score against steps, on a linear right-hand axis of its own (a parser
    logs `keypoint_error` in pixels beside its `parse_miou`)."""
    steps, columns = _series(path)
    for number, (metric, values) in enumerate(sorted(columns.items())):
        right = axis.twinx()
        if number:
            right.spines["right"].set_position(("axes", 1.0 + 0.3 * number))
        style = ("--", ".") if number == 0 else (":", "x")
        right.plot(
            steps,
            values,
            color="black",
            linestyle=style[0],
            marker=style[1],
            label=f"held-out {metric}",
        )
        right.set_ylabel(f"held-out {metric}")
        right.legend(fontsize=7, loc=("upper right", "lower right")[number % 2])


def _series(path: Path) -> tuple[list[float], dict[str, list[float]]]:
    """A run's CSV log as (steps, {column: values}) without its seconds column."""
    columns = read_losses(path)
    steps = columns.pop("step")
    columns.pop("seconds", None)
    return steps, columns
