"""`tryon train parser|gmm|tom|all`: train networks from recipes (YAML configs).

Each network's command reads its recipe (`--config`, e.g. configs/synthetic/tom.yaml; see
`tryon.train.config` for the keys) and takes the few settings people change per run on
the command line; the resolved recipe is written to OUT/config.yaml, and `--resume`
continues the run with it. `tryon train all` trains the three in one resumable run
under one time budget (`tryon.train.chain`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tryon.cli.common import check_precision, console

app = typer.Typer(
    help="Train one network from a recipe (--config YAML); order: parser and gmm, then tom "
    "on the trained GMM (--gmm), as in CP-VTON. `all` trains the three in one run.",
    no_args_is_help=True,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="The recipe, a YAML file (configs/<weights>/<network>.yaml); default: the "
        "network's defaults, or with --resume the run's own OUT/config.yaml.",
        show_default=False,
    ),
]
DataOption = Annotated[
    Path | None,
    typer.Option(
        help="Training data in the VITON layout (the recipe's data.path).", show_default=False
    ),
]
OutOption = Annotated[
    Path, typer.Option(help="Run folder: config.yaml, checkpoints, losses.csv, samples/.")
]
StepsOption = Annotated[
    int | None,
    typer.Option(
        min=1, help="Optimisation steps in all, resumed runs included.", show_default=False
    ),
]
MinutesOption = Annotated[
    float | None,
    typer.Option(
        min=0.001,
        help="Also stop after this many minutes of training (resumed runs included), saving "
        "as at the end; the learning rate decays over whichever budget ends first.",
        show_default=False,
    ),
]
TrainDeviceOption = Annotated[
    str | None,
    typer.Option(
        help="Torch device: cpu, cuda, cuda:N, or auto (the recipe's training.device).",
        show_default=False,
    ),
]
ResumeOption = Annotated[bool, typer.Option(help="Continue the run in --out with its own recipe.")]
InitOption = Annotated[
    Path | None,
    typer.Option(
        help="Start from these weights (a component folder) to fine-tune; the recipe's "
        "network grows from them (the recipe's init).",
        show_default=False,
    ),
]
ValDataOption = Annotated[
    Path | None,
    typer.Option(
        help="Held-out pairs (VITON layout) scored during training; the best step is kept "
        "in OUT/best/ (the recipe's validation.path).",
        show_default=False,
    ),
]
TrainPrecisionOption = Annotated[
    str | None,
    typer.Option(
        help="float32, bfloat16 or auto: bfloat16 runs the convolutions in bfloat16 (losses "
        "stay float32), faster on CPUs with bfloat16 dot products (the recipe's "
        "training.precision).",
        show_default=False,
    ),
]
GmmOption = Annotated[
    Path | None,
    typer.Option(
        help="The trained GMM folder whose warps the TOM learns from (the recipe's gmm).",
        show_default=False,
    ),
]


@app.command()
def parser(
    out: OutOption,
    config: ConfigOption = None,
    data: DataOption = None,
    steps: StepsOption = None,
    max_minutes: MinutesOption = None,
    device: TrainDeviceOption = None,
    resume: ResumeOption = False,
    init: InitOption = None,
    val_data: ValDataOption = None,
    precision: TrainPrecisionOption = None,
) -> None:
    """Train the human parser (parse map and keypoints from the photo)."""
    _train("parser", **locals())


@app.command()
def gmm(
    out: OutOption,
    config: ConfigOption = None,
    data: DataOption = None,
    steps: StepsOption = None,
    max_minutes: MinutesOption = None,
    device: TrainDeviceOption = None,
    resume: ResumeOption = False,
    init: InitOption = None,
    val_data: ValDataOption = None,
    precision: TrainPrecisionOption = None,
) -> None:
    """Train the geometric matching module (warps the garment onto the person)."""
    _train("gmm", **locals())


@app.command()
def tom(
    out: OutOption,
    config: ConfigOption = None,
    data: DataOption = None,
    steps: StepsOption = None,
    max_minutes: MinutesOption = None,
    device: TrainDeviceOption = None,
    resume: ResumeOption = False,
    init: InitOption = None,
    gmm: GmmOption = None,
    val_data: ValDataOption = None,
    precision: TrainPrecisionOption = None,
) -> None:
    """Train the try-on module (renders the person in the garment a trained GMM warps)."""
    _train("tom", **locals())


@app.command("all")
def all_networks(
    recipes: Annotated[
        Path,
        typer.Option(help="Folder of the three recipes: parser.yaml, gmm.yaml, tom.yaml."),
    ],
    data: Annotated[Path, typer.Option(help="Training data in the VITON layout.")],
    out: Annotated[
        Path,
        typer.Option(help="Run folder: OUT/parser, OUT/gmm, OUT/tom, OUT/curves.png."),
    ],
    max_minutes: Annotated[
        float,
        typer.Option(
            min=0.01,
            help="Training minutes for the three networks together (resumed runs included), "
            "shared 30/30/40 of what is left as each starts.",
        ),
    ],
    device: Annotated[
        str,
        typer.Option(help="Torch device: cpu, cuda, cuda:N, or auto (a GPU when there is one)."),
    ] = "auto",
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out: finished networks are kept.")
    ] = False,
    val_data: ValDataOption = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="float32, bfloat16 or auto; default bfloat16 on a GPU that supports it, auto "
            "on a CPU.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Data-loading processes (the recipes' training.workers).",
            show_default=False,
        ),
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option(min=1, help="Batch size (the recipes' training.batch).", show_default=False),
    ] = None,
) -> None:
    """Train parser, then GMM, then TOM in one resumable run under one time budget.

    Recipes whose parsed_by: or gmm: name bundled weights (viton, synthetic) get the
    networks this run has just trained instead (OUT/<network>/best/<network>).
    """
    from tryon.train.chain import ChainRequest, train_all

    if precision is not None:
        check_precision(precision)
    request = ChainRequest(
        recipes=recipes,
        data=data,
        out=out,
        max_minutes=max_minutes,
        device=device,
        resume=resume,
        val_data=val_data,
        precision=precision,
        workers=workers,
        batch=batch,
    )
    columns = (
        TextColumn("train {task.description}"),
        BarColumn(),
        TextColumn("step {task.fields[step]}"),
        TextColumn("{task.fields[losses]}"),
        TimeElapsedColumn(),
        TextColumn("of {task.fields[minutes]:.1f} min"),
    )
    with Progress(*columns, console=console) as bar:
        tasks: dict[str, Any] = {}
        started: dict[str, float] = {}

        def start(network: str, config: Any, resuming: bool) -> None:
            minutes = config.training.max_minutes
            if resuming:
                console.print(f"resuming {out / network}")
            tasks[network] = bar.add_task(
                network, total=60 * minutes, step=0, losses="", minutes=minutes
            )
            started[network] = time.perf_counter()

        def step(network: str, done: int, losses: dict[str, float]) -> None:
            text = " ".join(f"{k}={v:.3f}" for k, v in sorted(losses.items())[:3])
            spent = time.perf_counter() - started[network]
            bar.update(tasks[network], completed=spent, step=done, losses=text)

        result = train_all(request, on_start=start, on_step=step)
    for network in result.skipped:
        console.print(f"{network}: finished earlier, kept")
    for network, minutes in result.minutes.items():
        console.print(f"{network}: {minutes:.1f} training minutes")
    networks = result.networks
    console.print(f"curves: {result.curves}")
    console.print(
        f"pack with: tryon pack --parser {networks['parser']} --gmm {networks['gmm']} "
        f"--tom {networks['tom']} --out weights/NAME ..."
    )


# Command-line options -> the recipe keys they override.
OVERRIDES = {
    "data": "data.path",
    "steps": "training.steps",
    "max_minutes": "training.max_minutes",
    "device": "training.device",
    "precision": "training.precision",
    "init": "init",
    "gmm": "gmm",
    "val_data": "validation.path",
}


def _train(component: str, *, config: Path | None, out: Path, resume: bool, **options: Any) -> None:
    """Resolve the recipe `config` (`options`: the command line's overrides, by option
    name; None leaves the recipe's value), prepare the run and train it with a progress
    bar."""
    from tryon.train.loop import run_training
    from tryon.train.runs import prepare_run, resolve_recipe

    if options["precision"] is not None:
        check_precision(options["precision"])
    overrides = {key: options.get(option) for option, key in OVERRIDES.items()}
    recipe = resolve_recipe(component, config, out, resume, overrides)
    run = prepare_run(recipe, out, resume)
    if run.resuming:
        console.print(f"resuming {out} with its recipe ({out / 'config.yaml'})")
    schedule = recipe.training
    with _progress(component, schedule.max_minutes) as bar:
        task = bar.add_task(component, total=schedule.steps, losses="")

        def show(step: int, losses: dict[str, float]) -> None:
            text = " ".join(f"{k}={v:.3f}" for k, v in sorted(losses.items())[:4])
            bar.update(task, completed=step, losses=text)

        result = run_training(
            run.trainer,
            run.dataset,
            schedule,
            out,
            run.device,
            resume=resume,
            on_step=show,
            validator=run.validator,
        )
    console.print(f"trained {component}: {result}")
    validator = run.validator
    if validator is not None and validator.best is not None:
        best = validator.best
        console.print(
            f"best on the held-out pairs: {best['metric']} {best['score']:.4f} at step "
            f"{best['step']} -> {validator.best_dir / component}"
        )


def _progress(component: str, max_minutes: float | None) -> Progress:
    """The progress bar of a run: steps done, the first losses, and the time left or,
    for a time-budgeted run (which usually ends long before its steps), the time spent
    against the budget."""
    clock = (
        (TimeRemainingColumn(),)
        if max_minutes is None
        else (TimeElapsedColumn(), TextColumn(f"of {max_minutes:g} min"))
    )
    return Progress(
        TextColumn(f"train {component}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[losses]}"),
        *clock,
        console=console,
    )
