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

from tryon.cli.common import JsonOption, console, emit_json, parse_size


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
    by: Annotated[
        str,
        typer.Option(
            help="What no validation pair may share with a training pair, comma-separated: "
            "id-block (blocks of neighbouring photo ids), person and garment (near-duplicate "
            "photos by perceptual hash)."
        ),
    ] = "id-block",
    block: Annotated[int, typer.Option(help="Consecutive photo ids held out together.")] = 500,
    gap: Annotated[int, typer.Option(help="Ids unused on each side of a held-out block.")] = 20,
    phash_distance: Annotated[
        int,
        typer.Option(
            min=0,
            max=64,
            help="Photos whose 64-bit hashes differ in at most this many bits "
            "are near-duplicates (--by person, garment).",
        ),
    ] = 6,
    seed: Annotated[int, typer.Option(help="Seed of the choice of held-out pairs.")] = 0,
    json_output: JsonOption = False,
) -> None:
    """Hold out validation pairs by person (id blocks) or by person and garment (hashes).

    Public datasets label no identities, but one model's photos have neighbouring ids;
    --by id-block holds out id blocks (with a gap on each side). --by person,garment
    groups near-duplicate person photos and garment photos by a DCT perceptual hash: no
    validation pair shares its person's or its garment's group with a training pair
    (pairs that would are dropped). Pass the files to `tryon train` and `tryon eval
    --pairs`.
    """
    from tryon.data.split import GROUP_KINDS, split_by_id_blocks, split_pairs_by, write_pairs
    from tryon.data.viton import read_pairs, resolve_pairs_path

    kinds = [kind.strip() for kind in by.split(",") if kind.strip()]
    unknown = sorted(set(kinds) - set(GROUP_KINDS))
    if unknown or not kinds:
        raise typer.BadParameter(
            f"{by!r}: choose from {', '.join(GROUP_KINDS)}, comma-separated", param_hint="--by"
        )
    pair_list = read_pairs(resolve_pairs_path(data, pairs))
    summary: dict = {"by": kinds}
    if kinds == ["id-block"]:
        result = split_by_id_blocks(
            pair_list, validation_fraction=validation, block=block, gap=gap, seed=seed
        )
    else:
        photos = sum(
            len({pair[index] for pair in pair_list})
            for index, kind in enumerate(("person", "garment"))
            if kind in kinds
        )
        columns = (TextColumn("hashing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("photos", total=photos)
            grouped = split_pairs_by(
                data,
                pair_list,
                kinds,
                validation_fraction=validation,
                seed=seed,
                block=block,
                gap=gap,
                phash_distance=phash_distance,
                on_hashed=lambda: bar.advance(task),
            )
        result = grouped.split
        summary |= {
            "phash_distance": phash_distance,
            "groups": {kind: vars(groups) for kind, groups in grouped.groups.items()},
            "linked_components": grouped.components,
            "largest_component": grouped.largest_component,
            "cut_component": grouped.cut,
        }
        for kind, groups in grouped.groups.items():
            console.print(
                f"{kind} photos: {groups.photos}, {groups.duplicate_groups} near-duplicate "
                f"groups holding {groups.duplicated_photos} photos (largest {groups.largest})"
            )
    write_pairs(out / "train_pairs.txt", result.train)
    write_pairs(out / "val_pairs.txt", result.validation)
    summary |= {
        "pairs": len(pair_list),
        "train": len(result.train),
        "validation": len(result.validation),
        "dropped": len(result.dropped),
        "train_pairs": str(out / "train_pairs.txt"),
        "val_pairs": str(out / "val_pairs.txt"),
    }
    why = "in the gaps" if kinds == ["id-block"] else "that would share a group across sides"
    console.print(
        f"{len(result.train)} training pairs -> {out / 'train_pairs.txt'}, "
        f"{len(result.validation)} validation pairs -> {out / 'val_pairs.txt'}, "
        f"{len(result.dropped)} left out {why}"
    )
    emit_json(summary, print_it=json_output, output=None)


def _write_preview(path: Path, seed: int, size: tuple[int, int], count: int) -> None:
    from PIL import Image

    from tryon.data.synth import generate_sample
    from tryon.data.synth.preview import preview_sheet

    sheet = preview_sheet([generate_sample(seed, i, size) for i in range(count)])
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(path, optimize=True)
