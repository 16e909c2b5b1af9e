"""`tryon eval` and `tryon curves`: score and plot trained networks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from tryon.cli.common import (
    DeviceOption,
    JsonOption,
    OutputOption,
    PrecisionOption,
    WeightsOption,
    check_precision,
    console,
    emit_json,
)
from tryon.errors import InvalidInputError


def evaluate_command(
    data: Annotated[Path, typer.Option(help="Paired dataset in the VITON layout.")],
    weights: WeightsOption = None,
    as_json: JsonOption = False,
    output: OutputOption = None,
    grid: Annotated[
        Path | None, typer.Option(help="Write a sheet of unpaired try-ons here.")
    ] = None,
    grid_caption: Annotated[
        str | None, typer.Option(help="Text under the sheet, e.g. the photos' source and licence.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Score only the first N pairs.")] = None,
    pairs: Annotated[
        str, typer.Option(help="Pairs file, inside --data or a path (e.g. a held-out split).")
    ] = "pairs.txt",
    batch: Annotated[int, typer.Option(help="Pairs per batch.")] = 8,
    device: DeviceOption = "cpu",
    precision: PrecisionOption = None,
    repaint_arms: Annotated[
        bool,
        typer.Option(
            "--repaint-arms",
            help="Repaint the shopper's arms too, where the new garment leaves them bare (the "
            "service keeps them from the photo): scores what the networks paint there.",
        ),
    ] = False,
) -> None:
    """Score the networks and the whole pipeline against ground truth, beside two baselines.

    Reports parse_miou, pck_0.1, warp_iou, warp_ssim, tryon_ssim, tryon_psnr,
    tryon_ssim_gt_parse, region_ssim, region_l1, the grey and affine baselines (whole
    image and region), per-label IoU, n_samples and seconds; the JSON also records the
    weights and the precision that ran. Metrics the dataset has no ground truth for are null.
    """
    from tryon.eval.runner import evaluate, unpaired_grid, write_grid
    from tryon.pipeline import TryOnPipeline
    from tryon.train.loop import resolve_device

    precision = precision or os.environ.get("TRYON_PRECISION") or "auto"
    check_precision(precision)
    pipeline = TryOnPipeline.from_pretrained(
        weights, device=resolve_device(device), precision=precision, keep_arms=not repaint_arms
    )
    with Progress(
        TextColumn("eval"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("eval", total=None)
        result = evaluate(
            pipeline,
            data,
            pairs,
            limit,
            batch,
            on_batch=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if grid is not None:
        write_grid(unpaired_grid(pipeline, data, pairs, caption=grid_caption), grid)
        console.print(f"unpaired sheet: {grid}")
    emit_json(result, print_it=as_json, output=output)
    if not as_json:
        _print_scores(result)


def _print_scores(result: dict) -> None:
    """The headline scores as `name value` lines (the JSON has every one)."""
    for name, value in result.items():
        if isinstance(value, float):
            console.print(f"{name:32s} {value:.4f}")
        elif isinstance(value, int | str) or value is None:
            console.print(f"{name:32s} {value}")


def curves(
    runs: Annotated[list[Path], typer.Argument(help="Training run folders (each has losses.csv).")],
    out: Annotated[Path, typer.Option(help="PNG to write.")] = Path("training_curves.png"),
) -> None:
    """Plot the loss curves of training runs side by side."""
    from tryon.train.curves import plot_runs

    missing = [str(run) for run in runs if not (run / "losses.csv").exists()]
    if missing:
        raise InvalidInputError(f"no losses.csv in {missing}; pass the folders given to --out")
    console.print(f"wrote {plot_runs(runs, out)}")
