"""`tryon pack`: bundle three trained networks into a pipeline folder with its training
record; `tryon export-parser`: its parser's network for OpenVINO."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tryon.cli.common import JsonOption, OutputOption, console, emit_json, parse_size

if TYPE_CHECKING:
    from tryon.models.bundle import NetworkTraining

SECONDS_PER_HOUR = 3600.0


def pack(
    parser: Annotated[
        Path, typer.Option(help="Trained parser folder (RUN/parser or RUN/best/parser).")
    ],
    gmm: Annotated[Path, typer.Option(help="Trained GMM folder (RUN/gmm or RUN/best/gmm).")],
    tom: Annotated[Path, typer.Option(help="Trained TOM folder (RUN/tom or RUN/best/tom).")],
    out: Annotated[Path, typer.Option(help="Pipeline folder to write.")],
    name: Annotated[str, typer.Option(help="Short name of the weights, e.g. synthetic.")],
    licence: Annotated[str, typer.Option(help="What the weights may be used for.")],
    dataset: Annotated[str, typer.Option(help="The training data's name, e.g. synthetic, VITON.")],
    dataset_source: Annotated[
        str | None,
        typer.Option(help="Where the training data came from and under which terms."),
    ] = None,
    samples: Annotated[
        int | None, typer.Option(min=1, help="Training pairs the networks learned from.")
    ] = None,
    hardware: Annotated[
        str | None,
        typer.Option(help="What the runs trained on, e.g. 'NVIDIA H100', '16-core CPU'."),
    ] = None,
    size: Annotated[str, typer.Option(help="Model resolution HEIGHTxWIDTH.")] = "256x192",
    categories: Annotated[
        list[str] | None,
        typer.Option(
            "--categories",
            help="A garment category the networks can dress (top, dress, trousers, skirt, "
            "outerwear, jumpsuit); repeat for several. Unset: the server serves every one.",
        ),
    ] = None,
    fp16: Annotated[bool, typer.Option(help="Store half-precision weights (bundling).")] = True,
) -> None:
    """Assemble three trained networks into a pipeline folder (what --weights loads).

    `pipeline.json` records how each network was trained: its steps, training hours and
    precision from its run's checkpoint (none when the folder is not in a run), --hardware,
    and its recipe `configs/NAME/NETWORK.yaml` when that file is here; and the garment
    --categories the networks can dress, which the server refuses others by.
    """
    from catalog.models import Category
    from tryon.models import GeometricMatcher, HumanParser, TryOnGenerator
    from tryon.models.bundle import DatasetRecord, PipelineMeta, TrainingRecord, save_pipeline
    from tryon.models.openvino_parser import export_parser_network

    known = [category.value for category in Category]
    unknown = sorted(set(categories or ()) - set(known))
    if unknown:
        raise typer.BadParameter(
            f"unknown categories {unknown}; the catalog's are {known}", param_hint="--categories"
        )

    folders = {"parser": parser, "gmm": gmm, "tom": tom}
    record = TrainingRecord(
        dataset=DatasetRecord(name=dataset, source=dataset_source),
        samples=samples,
        networks={
            network: run_training(folder, hardware, Path("configs") / name / f"{network}.yaml")
            for network, folder in folders.items()
        },
    )
    meta = PipelineMeta(
        name=name,
        licence=licence,
        training_data=record,
        resolution=parse_size(size),
        categories=tuple(dict.fromkeys(categories)) if categories else None,
    )
    folder = save_pipeline(
        out,
        HumanParser.from_pretrained(parser),
        GeometricMatcher.from_pretrained(gmm),
        TryOnGenerator.from_pretrained(tom),
        meta,
        fp16=fp16,
    )
    export_parser_network(HumanParser.from_pretrained(folder / "parser"), folder / "parser")
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    console.print(f"wrote {folder} ({total / 2**20:.1f} MiB): {record.summary()}")


def export_parser(
    weights: Annotated[
        str,
        typer.Argument(help="Bundled weights name (synthetic, viton) or a pipeline folder."),
    ],
    json_output: JsonOption = False,
    output: OutputOption = None,
) -> None:
    """Export the parser's network for OpenVINO into the weights' parser/openvino/.

    Where the networks run in bfloat16 on the CPU, every command and `tryon serve` then
    run the parser's network with OpenVINO (TRYON_PARSER_RUNTIME: auto, openvino, torch),
    which made a new photo's try-on 5-12% faster (docs/speed.md). The export records the
    SHA-256 of parser/model.safetensors and is ignored once that file changes: run this
    again after replacing the parser (`tryon pack` exports it itself).
    """
    from tryon.models import HumanParser
    from tryon.models.openvino_parser import export_parser_network
    from tryon.pipeline import weights_folder

    parser_folder = weights_folder(weights) / "parser"
    folder = export_parser_network(HumanParser.from_pretrained(parser_folder), parser_folder)
    files = {f.name: f.stat().st_size for f in sorted(folder.iterdir()) if f.is_file()}
    result = {"folder": str(folder), "files": files}
    if json_output or output:
        emit_json(result, print_it=json_output, output=output)
    if not json_output:
        size = sum(files.values()) / 2**20
        console.print(f"wrote {folder} ({size:.1f} MiB)")


def run_training(component: Path, hardware: str | None, recipe: Path) -> NetworkTraining:
    """How the network in `component` was trained, as far as its run folder says.

    `RUN/<network>` is the run's last step: steps, seconds and precision from
    `RUN/checkpoint.pt`. `RUN/best/<network>` is its best validated step: the step from
    `best/score.json`, the seconds from that step's row of `RUN/validation.csv`. The batch,
    the loss weights and the weights it started from (`init`) come from the run's resolved recipe,
    `RUN/config.yaml`. A folder outside a run has none of these; they are None.
    """
    import torch
    import yaml

    from tryon.models.bundle import NetworkTraining

    run = component.parent
    best_step = None
    if run.name == "best" and (run / "score.json").is_file():
        best_step = int(json.loads((run / "score.json").read_text())["step"])
        run = run.parent
    step = seconds = precision = None
    if (run / "checkpoint.pt").is_file():
        state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True, mmap=True)
        step, seconds, precision = state["step"], state.get("seconds"), state.get("precision")
    if best_step is not None:
        step, seconds = best_step, _validation_seconds(run / "validation.csv", best_step)
    recipe_used = {}
    if (run / "config.yaml").is_file():
        recipe_used = yaml.safe_load((run / "config.yaml").read_text()) or {}
    return NetworkTraining(
        steps=step,
        batch=recipe_used.get("training", {}).get("batch"),
        hours=None if seconds is None else round(seconds / SECONDS_PER_HOUR, 3),
        hardware=hardware,
        precision=precision,
        init=recipe_used.get("init"),
        recipe=recipe.as_posix() if recipe.is_file() else None,
        losses=recipe_used.get("losses"),
    )


def _validation_seconds(log: Path, step: int) -> float | None:
    """The training seconds a run had spent when it validated `step`; None if not logged."""
    if not log.is_file():
        return None
    with log.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if int(row["step"]) == step]
    return float(rows[-1]["seconds"]) if rows else None
