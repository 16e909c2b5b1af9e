"""The CSV logs of a training run: `losses.csv` and `validation.csv`."""

from __future__ import annotations

import csv
from pathlib import Path


class CsvLog:
    """Appends rows of named values to a CSV (`losses.csv`, `validation.csv`): step,
    seconds, then the values, writing the header once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] | None = None
        if path.exists():
            with path.open() as handle:
                header = handle.readline().strip()
            self.columns = header.split(",")[2:] if header else None

    def write(self, step: int, seconds: float, losses: dict[str, float]) -> None:
        """Append one row: `step`, `seconds` and `losses` by column (NaN where missing)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = self.columns is None
        if new:
            self.columns = sorted(losses)
        with self.path.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["step", "seconds", *self.columns])
            writer.writerow(
                [
                    step,
                    f"{seconds:.1f}",
                    *(f"{losses.get(c, float('nan')):.5f}" for c in self.columns),
                ]
            )


def read_losses(path: Path) -> dict[str, list[float]]:
    """The columns of a `losses.csv` (or `validation.csv`) as lists, for plots and tests."""
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    return {key: [float(row[key]) for row in rows] for key in rows[0]} if rows else {}
