"""`tryon synth` and `tryon split`: make datasets and hold out validation pairs."""

from __future__ import annotations

import time
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

from tryon.cli.common import console, parse_size


def synth(
    out: Annotated[Path, typer.Option(help="Folder to write the dataset to (VITON layout).")],
    n: Annotated[int, typer.Option(help="Number of samples (person + garment pairs).")] = 1000,
    seed: Annotated[
        int, typer.Option(help="Dataset seed; sample i depends only on seed and i.")
    ] = 0,
    size: Annotated[
        str, typer.Option(help="Output size HEIGHTxWIDTH, multiples of 16.")
    ] = "256x192",
    workers: Annotated[int, typer.Option(help="Processes rendering in parallel.")] = 2,
    preview: Annotated[
        Path | None, typer.Option(help="Also write a PNG sheet of the first 16 samples here.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a dataset already in --out.")] = False,
) -> None:
    """Generate synthetic shoppers and garments with exact ground truth.

    Writes image/, cloth/, cloth-mask/, image-parse/ (LIP palette PNGs), openpose_json/
    (COCO-18), warp-gt/ and warp-gt-mask/ (the true warped garment), pairs.txt and
    pairs_unpaired.txt.
    """
    from tryon.data.synth.writer import check_request, write_dataset

    dims = parse_size(size)
    check_request(out, n, dims, overwrite)
    start = time.perf_counter()
    columns = (TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("samples", total=n)
        write_dataset(out, n, seed, dims, workers, overwrite, lambda _: bar.advance(task))
    seconds = time.perf_counter() - start
    console.print(f"wrote {n} samples to {out} in {seconds:.1f} s ({n / seconds:.1f} samples/s)")
    if preview is not None:
        _write_preview(preview, seed, dims, min(n, 16))
        console.print(f"preview sheet: {preview}")


def split(
    data: Annotated[Path, typer.Option(help="Paired dataset in the VITON layout.")],
    out: Annotated[Path, typer.Option(help="Folder for train_pairs.txt and val_pairs.txt.")],
    pairs: Annotated[
        str, typer.Option(help="Pairs file to split, inside --data or a path.")
    ] = "pairs.txt",
    validation: Annotated[
        float, typer.Option(help="Fraction of the pairs to hold out for validation.")
    ] = 0.1,
    block: Annotated[int, typer.Option(help="Consecutive photo ids held out together.")] = 500,
    gap: Annotated[int, typer.Option(help="Ids unused on each side of a held-out block.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the choice of held-out blocks.")] = 0,
) -> None:
    """Hold out validation pairs by person: whole ranges of photo ids.

    Public datasets label no identities, but one model's photos have neighbouring ids;
    holding out id blocks (with a gap on each side) keeps each person on one side. Pass
    the files to `tryon train --pairs` and `tryon eval --pairs`.
    """
    from tryon.data.split import split_by_id_blocks, write_pairs
    from tryon.data.viton import read_pairs, resolve_pairs_path

    result = split_by_id_blocks(
        read_pairs(resolve_pairs_path(data, pairs)),
        validation_fraction=validation,
        block=block,
        gap=gap,
        seed=seed,
    )
    write_pairs(out / "train_pairs.txt", result.train)
    write_pairs(out / "val_pairs.txt", result.validation)
    console.print(
        f"{len(result.train)} training pairs -> {out / 'train_pairs.txt'}, "
        f"{len(result.validation)} validation pairs -> {out / 'val_pairs.txt'}, "
        f"{len(result.dropped)} left out in the gaps"
    )


def _write_preview(path: Path, seed: int, size: tuple[int, int], count: int) -> None:
    from PIL import Image

    from tryon.data.synth import generate_sample
    from tryon.data.synth.preview import preview_sheet

    sheet = preview_sheet([generate_sample(seed, i, size) for i in range(count)])
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(path, optimize=True)
