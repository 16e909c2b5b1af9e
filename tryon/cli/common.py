"""What every `tryon` command shares: the console, option types, checks and JSON output.

Exit codes of every command: 0 done, 1 a product error (bad data, missing weights, a
failed call: `TryOnError`), 2 a usage error (an unknown option, a malformed value).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

console = Console(stderr=True)

WeightsOption = Annotated[
    str | None,
    typer.Option(
        help="Bundled weights name (synthetic, viton) or a pipeline folder "
        "(env TRYON_WEIGHTS; default synthetic).",
        show_default=False,
    ),
]
PrecisionOption = Annotated[
    str | None,
    typer.Option(
        help="Networks in float32, bfloat16, or auto: bfloat16 on CPUs with bfloat16 dot "
        "products (AVX512-BF16, AMX), float32 elsewhere (env TRYON_PRECISION; default auto).",
        show_default=False,
    ),
]
DeviceOption = Annotated[
    str, typer.Option(help="Torch device: cpu, cuda, cuda:N, or auto (a GPU when there is one).")
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON to standard output.")
]
OutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Also write the result as JSON to this file."),
]


def parse_size(text: str) -> tuple[int, int]:
    """'256x192' -> (256, 192): height x width in pixels; a usage error otherwise."""
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not HEIGHTxWIDTH; write it like 256x192", param_hint="--size"
        ) from None
    return height, width


def check_precision(precision: str) -> None:
    """Refuse a precision name `resolve_precision` does not know, naming the choices."""
    from tryon.models.precision import PRECISIONS

    if precision not in PRECISIONS:
        raise typer.BadParameter(
            f"{precision!r}: choose one of {', '.join(PRECISIONS)}", param_hint="--precision"
        )


def emit_json(value: Any, *, print_it: bool, output: Path | None) -> None:
    """`--json` prints `value` as indented JSON to standard output; `--output FILE`
    writes the same JSON to FILE (its folder created)."""
    text = json.dumps(value, indent=2, default=str)
    if print_it:
        typer.echo(text)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n")
