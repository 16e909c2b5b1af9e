"""The `tryon` command line: data generation now; training, evaluation and serving join it."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tryon.errors import InvalidInputError, TryOnError

app = typer.Typer(
    help="Virtual try-on: synthetic data, training, evaluation and the try-on service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


@app.callback()
def _commands() -> None:
    """Virtual try-on: synthetic data, training, evaluation and the try-on service."""


def parse_size(text: str) -> tuple[int, int]:
    """'256x192' -> (256, 192): height x width in pixels."""
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise InvalidInputError(
            f"--size {text!r} is not HEIGHTxWIDTH; write it like 256x192"
        ) from None
    return height, width


@app.command()
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


def _write_preview(path: Path, seed: int, size: tuple[int, int], count: int) -> None:
    from PIL import Image

    from tryon.data.synth import generate_sample
    from tryon.data.synth.preview import preview_sheet

    sheet = preview_sheet([generate_sample(seed, i, size) for i in range(count)])
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(path, optimize=True)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app and turn product errors into one clear line."""
    try:
        app(args=argv)
    except TryOnError as error:
        console.print(f"[red]error:[/red] {error}")
        sys.exit(2)


if __name__ == "__main__":
    main()
