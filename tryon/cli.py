"""The `tryon` command line: data generation now; training, evaluation and serving join it."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tryon.errors import InvalidInputError, TryOnError

if TYPE_CHECKING:
    from tryon.train.architecture import ArchitectureOptions
    from tryon.train.loop import TrainConfig
    from tryon.train.validation import Validator

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


@app.command()
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


COMPONENTS = ("parser", "gmm", "tom")
DEFAULT_LR = {"parser": 2e-3, "gmm": 1e-4, "tom": 4e-4}
VAL_EVERY = 500  # steps between held-out scores (--val-every)
VAL_SIZE = 64  # held-out pairs scored each time (--val-size)


@app.command()
def train(
    component: Annotated[str, typer.Argument(help="What to train: parser, gmm or tom.")],
    data: Annotated[Path, typer.Option(help="Training data in the VITON layout.")],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints, losses.csv, samples/.")],
    steps: Annotated[
        int, typer.Option(help="Optimisation steps in total (resumed runs included).")
    ] = 5000,
    max_minutes: Annotated[
        float | None,
        typer.Option(
            help="Also stop after this many minutes of training (resumed runs included), "
            "saving as at the end; the learning rate then decays over whichever of --steps "
            "and --max-minutes ends first."
        ),
    ] = None,
    batch: Annotated[int, typer.Option(help="Pairs per step.")] = 8,
    lr: Annotated[
        float | None,
        typer.Option(
            help="Peak learning rate (AdamW, warm-up then cosine); default parser 2e-3, "
            "gmm 1e-4, tom 4e-4."
        ),
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run already in --out.")] = False,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")] = "cpu",
    size: Annotated[str, typer.Option(help="Model resolution HEIGHTxWIDTH.")] = "256x192",
    pairs: Annotated[str, typer.Option(help="Pairs file, inside --data or a path.")] = "pairs.txt",
    gmm: Annotated[
        Path | None,
        typer.Option(help="tom only: the trained GMM folder whose warps TOM learns from."),
    ] = None,
    init: Annotated[
        Path | None,
        typer.Option(help="Start from these weights (a component folder) to fine-tune."),
    ] = None,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 250,
    sample_every: Annotated[int, typer.Option(help="Steps between sample grids.")] = 500,
    workers: Annotated[int, typer.Option(help="Data-loading processes.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed for initialisation and data order.")] = 0,
    balance_labels: Annotated[
        bool,
        typer.Option(help="parser only: weight rare parse labels up (ENet weights from the data)."),
    ] = False,
    input_scale: Annotated[
        float | None,
        typer.Option(
            help="parser only: share of the photo's size its network sees, in (0, 1] (default "
            "0.5, or what --init has); higher resolves thin and small parts (arms, shoes) at "
            "about its square in time."
        ),
    ] = None,
    dice_weight: Annotated[
        float | None,
        typer.Option(
            help="parser only: add this weight times a per-label Dice loss to the "
            "cross-entropy (default 0); it counts every label alike, as the mean IoU does, so "
            "small parts (shoes) weigh as much as large ones."
        ),
    ] = None,
    keypoint_weight: Annotated[
        float | None,
        typer.Option(
            help="parser only: weight of the keypoint heatmap loss against the parse's "
            "(default 1); raise it to place keypoints more precisely, which the GMM and TOM "
            "read the pose from."
        ),
    ] = None,
    parse_refiner: Annotated[
        bool,
        typer.Option(
            help="parser only: end the parser with a refiner that corrects its parse at the "
            "photo's full resolution from the photo (parts 2-3 pixels thick: shoes, the edges "
            "of arms); added untrained to --init's parser, parsing as it does."
        ),
    ] = False,
    adversarial_weight: Annotated[
        float | None,
        typer.Option(help="tom only: weight of the GAN loss against L1 + SSIM (default 0.1)."),
    ] = None,
    feature_weight: Annotated[
        float | None,
        typer.Option(
            help="tom only: weight of discriminator feature matching (default 1); with "
            "--adversarial-weight 0 too, no discriminator is trained."
        ),
    ] = None,
    ssim_weight: Annotated[
        float | None,
        typer.Option(
            help="tom only: weight of 1 - SSIM inside the try-on region against its L1 (default 1)."
        ),
    ] = None,
    tune_gmm: Annotated[
        float | None,
        typer.Option(
            help="tom only: fine-tune the GMM (from --gmm) beside the TOM, through the final "
            "image's losses plus this weight times its own warp loss (1 is usual); the run "
            "saves out/gmm beside out/tom, and `tryon pack` takes both."
        ),
    ] = None,
    parsed_by: Annotated[
        Path | None,
        typer.Option(
            help="gmm and tom: build the person representation from this parser's prediction "
            "on each photo (a parser folder, e.g. tryon/weights/synthetic/parser), as the "
            "pipeline does in production, instead of from the dataset's parse and keypoints; "
            "the targets stay the dataset's, so the networks learn to live with the parser's "
            "mistakes. Validation then scores the same way."
        ),
    ] = None,
    refinement_stages: Annotated[
        int | None,
        typer.Option(
            help="gmm only: refinement stages after the correlation regressor (default 0, or "
            "what --init has); stages --init lacks start untrained, warping as it does."
        ),
    ] = None,
    residual_blocks: Annotated[
        int | None,
        typer.Option(
            help="tom only: residual blocks at the U-Net's coarsest level (default 0, or what "
            "--init has); blocks --init lacks start as identities, rendering as it does."
        ),
    ] = None,
    shading: Annotated[
        bool,
        typer.Option(
            help="tom only: give the TOM a head that shades the warped garment (multiplies it "
            "by a predicted light map: the body's shadows, folds' roundness, the light's "
            "direction); added untrained to --init's TOM, rendering as it does."
        ),
    ] = False,
    show_background: Annotated[
        bool,
        typer.Option(
            help="tom only: give the TOM a head that shows the photo's own background "
            "(continued under the try-on region from the pixels around it) where the new "
            "garment and the arms leave it visible, instead of painting it; trained on the "
            "dataset's parse. Added to --init's TOM showing none of it."
        ),
    ] = False,
    flow_stage: Annotated[
        bool,
        typer.Option(
            help="gmm only: end the GMM with a dense flow stage that corrects the spline's "
            "warp locally (sleeves); added untrained to --init's GMM, warping as it does."
        ),
    ] = False,
    flow_corrections: Annotated[
        int | None,
        typer.Option(
            help="gmm only: flow stages after the flow stage, each correcting the flow so far "
            "from the garment as warped by it (default 0, or what --init has); corrections "
            "--init lacks start at zero flow, warping as it does. Needs a flow stage."
        ),
    ] = None,
    grid_weight: Annotated[
        float | None,
        typer.Option(
            help="gmm only: weight of CP-VTON+'s grid regulariser (default 0.1); higher keeps "
            "the warp closer to affine, lower lets sleeves bend further."
        ),
    ] = None,
    val_data: Annotated[
        Path | None,
        typer.Option(
            help="Held-out pairs (VITON layout) scored during training: parse mIoU, warp IoU "
            "or region SSIM; the best step is kept in OUT/best/."
        ),
    ] = None,
    val_pairs: Annotated[
        str | None,
        typer.Option(help="Pairs file of --val-data, inside it or a path (default pairs.txt)."),
    ] = None,
    val_every: Annotated[
        int | None, typer.Option(help=f"Steps between validations (default {VAL_EVERY}).")
    ] = None,
    val_size: Annotated[
        int | None,
        typer.Option(
            help=f"Held-out pairs scored each time, at most all there are (default {VAL_SIZE})."
        ),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="float32, bfloat16 or auto: bfloat16 runs the networks' convolutions in "
            "bfloat16 (losses stay float32), 1.6-2x as fast on CPUs with bfloat16 dot "
            "products (AVX512-BF16, AMX); auto picks it on such CPUs. Default: float32, "
            "or with --resume the precision the run trained in."
        ),
    ] = None,
) -> None:
    """Train one network on a VITON-layout dataset, with checkpoints and resumable runs.

    Order: parser and gmm (independent), then tom with --gmm pointing at the trained GMM
    (out/gmm of the gmm run), as in CP-VTON.
    """
    from tryon.data.viton import VitonDataset
    from tryon.train.architecture import ArchitectureOptions
    from tryon.train.loop import TrainConfig, resolve_device, run_training

    if component not in COMPONENTS:
        raise InvalidInputError(
            f"unknown component {component!r}, choose one of {list(COMPONENTS)}"
        )
    precision = _training_precision(precision, out if resume else None)
    config = TrainConfig(
        data=data,
        out=out,
        steps=steps,
        batch=batch,
        lr=lr or DEFAULT_LR[component],
        device=device,
        resume=resume,
        size=parse_size(size),
        seed=seed,
        workers=workers,
        checkpoint_every=checkpoint_every,
        sample_every=sample_every,
        max_minutes=max_minutes,
        val_every=VAL_EVERY if val_every is None else val_every,
        precision=precision,
    )
    if max_minutes is not None and max_minutes <= 0:
        raise InvalidInputError(f"--max-minutes {max_minutes}: give a positive number of minutes")
    tom_losses = {
        "adversarial_weight": adversarial_weight,
        "feature_weight": feature_weight,
        "ssim_weight": ssim_weight,
        "tune_gmm": tune_gmm,
    }
    parser_losses = {"dice_weight": dice_weight, "keypoint_weight": keypoint_weight}
    for losses, owner in ((tom_losses, "tom"), (parser_losses, "parser")):
        for setting, value in losses.items():
            _check_component_option("--" + setting.replace("_", "-"), value, component, owner)
    _check_component_option("--refinement-stages", refinement_stages, component, "gmm")
    _check_component_option("--residual-blocks", residual_blocks, component, "tom")
    _check_component_option("--input-scale", input_scale, component, "parser")
    if input_scale is not None and not 0 < input_scale <= 1:
        raise InvalidInputError(f"--input-scale {input_scale}: give a share in (0, 1]")
    _check_component_option("--flow-corrections", flow_corrections, component, "gmm")
    _check_component_option("--grid-weight", grid_weight, component, "gmm")
    if keypoint_weight is not None and keypoint_weight <= 0:
        raise InvalidInputError(
            f"--keypoint-weight {keypoint_weight}: give a positive weight (1 is the default)"
        )
    if parsed_by is not None and component == "parser":
        raise InvalidInputError("--parsed-by is a gmm and tom setting: use it with gmm or tom")
    if flow_stage and component != "gmm":
        raise InvalidInputError("--flow-stage is a gmm setting: use it with gmm")
    if parse_refiner and component != "parser":
        raise InvalidInputError("--parse-refiner is a parser setting: use it with parser")
    for flag, name in ((shading, "--shading"), (show_background, "--show-background")):
        if flag and component != "tom":
            raise InvalidInputError(f"{name} is a tom setting: use it with tom")
    if val_data is None and (val_pairs, val_every, val_size) != (None, None, None):
        raise InvalidInputError(
            "--val-pairs, --val-every and --val-size set up validation: add --val-data DIR"
        )
    if config.val_every < 1:
        raise InvalidInputError(f"--val-every {val_every}: give a positive number of steps")
    torch_device = resolve_device(device)
    dataset = VitonDataset(data, pairs=pairs, size=config.size)
    validator = (
        None
        if val_data is None
        else _build_validator(
            pairs,
            val_data,
            val_pairs or "pairs.txt",
            VAL_SIZE if val_size is None else val_size,
            config,
        )
    )
    label_weights = None
    if balance_labels:
        if component != "parser":
            raise InvalidInputError("--balance-labels weights parse labels: use it with parser")
        from tryon.labels import NUM_PARSE_LABELS
        from tryon.train.balance import balanced_label_weights, label_frequencies

        label_weights = balanced_label_weights(label_frequencies(dataset, NUM_PARSE_LABELS))
    trainer = _build_trainer(
        component,
        config,
        torch_device,
        gmm,
        init,
        label_weights,
        {
            name: value
            for name, value in {**tom_losses, **parser_losses}.items()
            if value is not None
        },
        grid_weight,
        ArchitectureOptions(
            input_scale=input_scale,
            parse_refiner=parse_refiner,
            refinement_stages=refinement_stages,
            flow_stage=flow_stage,
            flow_corrections=flow_corrections,
            residual_blocks=residual_blocks,
            shading=shading,
            show_background=show_background,
        ),
        parsed_by,
    )
    # A time-budgeted run usually ends long before --steps: show the time spent against
    # the budget rather than a remaining time computed from the steps.
    clock = (
        (TimeRemainingColumn(),)
        if max_minutes is None
        else (TimeElapsedColumn(), TextColumn(f"of {max_minutes:g} min"))
    )
    columns = (
        TextColumn(f"train {component}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[losses]}"),
        *clock,
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(component, total=steps, losses="")

        def show(step: int, losses: dict[str, float]) -> None:
            text = " ".join(f"{k}={v:.3f}" for k, v in sorted(losses.items())[:4])
            bar.update(task, completed=step, losses=text)

        result = run_training(
            trainer, dataset, config, torch_device, on_step=show, validator=validator
        )
    console.print(f"trained {component}: {result}")
    if validator is not None and validator.best is not None:
        best = validator.best
        console.print(
            f"best on --val-data: {best['metric']} {best['score']:.4f} at step {best['step']} "
            f"-> {validator.best_dir / component}"
        )


def _training_precision(given: str | None, resumed_run: Path | None) -> str:
    """--precision for `tryon train`: as given (checked), else the resumed run's own, else
    float32."""
    from tryon.train.loop import checkpoint_precision

    if given is not None:
        _check_precision(given)
        return given
    if resumed_run is None or not (resumed_run / "checkpoint.pt").exists():
        return "float32"
    recorded = checkpoint_precision(resumed_run / "checkpoint.pt")
    if recorded is None:
        console.print(
            "this run's checkpoint does not record its precision (written before checkpoints "
            "did): resuming in float32; pass --precision bfloat16 if it trained in bfloat16"
        )
        return "float32"
    console.print(f"resuming in {recorded}, as the run trained (--precision to change)")
    return recorded


def _check_precision(precision: str) -> None:
    """Refuse a precision name `resolve_precision` does not know, naming the choices."""
    from tryon.models import PRECISIONS

    if precision not in PRECISIONS:
        raise InvalidInputError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")


def _check_component_option(option: str, value: float | None, component: str, owner: str) -> None:
    """Refuse an option of one network (`owner`) given to another, or a negative value."""
    if value is not None and component != owner:
        raise InvalidInputError(f"{option} is a {owner} setting: use it with {owner}")
    if value is not None and value < 0:
        raise InvalidInputError(f"{option} {value}: give 0 or more")


def _build_validator(
    pairs: str, val_data: Path, val_pairs: str, val_size: int, config: TrainConfig
) -> Validator:
    """The held-out scorer for `tryon train --val-data`; refuses pairs that are also
    training pairs (same photo and garment in the same dataset folder)."""
    from tryon.data.viton import VitonDataset, read_pairs, resolve_pairs_path
    from tryon.train.validation import Validator

    val_pairs_file = resolve_pairs_path(val_data, val_pairs).resolve()
    if val_data.resolve() == config.data.resolve():
        training = set(read_pairs(resolve_pairs_path(config.data, pairs)))
        shared = training & set(read_pairs(val_pairs_file))
        if shared:
            raise InvalidInputError(
                f"{len(shared)} of the --val-data pairs are training pairs too (e.g. "
                f"{' '.join(sorted(shared)[0])}); validate on pairs held out from training: "
                "another folder, or the two files of a `tryon split`"
            )
    held_out = VitonDataset(val_data, pairs=val_pairs, size=config.size)
    return Validator(held_out, config.batch, val_size, config.out, str(val_pairs_file))


def _build_trainer(
    component: str,
    config,
    device,
    gmm_dir: Path | None,
    init: Path | None,
    label_weights=None,
    losses: dict[str, float] | None = None,
    grid_weight: float | None = None,
    architecture: ArchitectureOptions | None = None,
    parsed_by: Path | None = None,
):
    """The component's trainer, its network grown as `architecture` asks
    (`network_to_train`); `losses` are the component's loss weights, by keyword (the
    parser's `dice_weight` and `keypoint_weight`, the TOM's `ssim_weight` and others); with
    `parsed_by` (a parser folder) the GMM or TOM trains on that parser's representation of
    each photo."""
    from tryon.models import GeometricMatcher, resolve_precision
    from tryon.train.architecture import ArchitectureOptions, network_to_train
    from tryon.train.components import GmmTrainer, ParserTrainer, PersonAnalyst, TomTrainer

    if component == "tom" and gmm_dir is None:
        raise InvalidInputError(
            "training tom needs the trained GMM: pass --gmm RUN/gmm "
            "(the folder `tryon train gmm` wrote)"
        )
    resumed_run = config.out if config.resume else None
    precision = resolve_precision(config.precision, device)
    network = network_to_train(component, architecture or ArchitectureOptions(), init, resumed_run)
    if component == "parser":
        return ParserTrainer(config.lr, device, network, label_weights, precision, **(losses or {}))
    analyst = (
        PersonAnalyst(device)
        if parsed_by is None
        else PersonAnalyst.from_folder(parsed_by, device, precision)
    )
    if component == "gmm":
        return GmmTrainer(
            config.lr,
            device,
            network,
            **({} if grid_weight is None else {"grid_weight": grid_weight}),
            precision=precision,
            analyst=analyst,
        )
    return TomTrainer(
        config.lr,
        device,
        GeometricMatcher.from_pretrained(gmm_dir),
        network,
        **(losses or {}),
        precision=precision,
        analyst=analyst,
    )


@app.command("eval")
def evaluate_command(
    data: Annotated[Path, typer.Option(help="Paired dataset in the VITON layout.")],
    weights: Annotated[
        str | None,
        typer.Option(
            help="Bundled weights name (synthetic, viton) or a pipeline folder; "
            "default TRYON_WEIGHTS or synthetic."
        ),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the metrics here.")] = None,
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
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "cpu",
    precision: Annotated[
        str,
        typer.Option(
            help="Networks in float32, bfloat16, or auto (bfloat16 on CPUs with AVX512-BF16); the "
            "JSON records which ran."
        ),
    ] = "auto",
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

    Prints and writes parse_miou, pck_0.1, warp_iou, warp_ssim, tryon_ssim, tryon_psnr,
    tryon_ssim_gt_parse, region_ssim, region_l1, the grey and affine baselines (whole
    image and region), n_samples and seconds. Metrics the dataset has no ground truth for
    are null.
    """
    import json

    from tryon.eval.runner import evaluate, unpaired_grid, write_outputs
    from tryon.pipeline import TryOnPipeline
    from tryon.train.loop import resolve_device

    _check_precision(precision)
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
    sheet = unpaired_grid(pipeline, data, pairs, caption=grid_caption) if grid else None
    write_outputs(result, json_out, sheet, grid)
    typer.echo(json.dumps(result, indent=2))


@app.command()
def pack(
    parser: Annotated[Path, typer.Option(help="Trained parser folder (RUN/parser).")],
    gmm: Annotated[Path, typer.Option(help="Trained GMM folder (RUN/gmm).")],
    tom: Annotated[Path, typer.Option(help="Trained TOM folder (RUN/tom).")],
    out: Annotated[Path, typer.Option(help="Pipeline folder to write.")],
    name: Annotated[str, typer.Option(help="Short name of the weights, e.g. synthetic.")],
    licence: Annotated[str, typer.Option(help="What the weights may be used for.")],
    training_data: Annotated[str, typer.Option(help="What they were trained on.")],
    size: Annotated[str, typer.Option(help="Model resolution HEIGHTxWIDTH.")] = "256x192",
    fp16: Annotated[bool, typer.Option(help="Store half-precision weights (bundling).")] = True,
) -> None:
    """Assemble three trained networks into a pipeline folder (what --weights loads)."""
    from tryon.models import (
        GeometricMatcher,
        HumanParser,
        PipelineMeta,
        TryOnGenerator,
        save_pipeline,
    )

    meta = PipelineMeta(
        name=name, licence=licence, training_data=training_data, resolution=parse_size(size)
    )
    folder = save_pipeline(
        out,
        HumanParser.from_pretrained(parser),
        GeometricMatcher.from_pretrained(gmm),
        TryOnGenerator.from_pretrained(tom),
        meta,
        fp16=fp16,
    )
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    console.print(f"wrote {folder} ({total / 2**20:.1f} MiB)")


@app.command()
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


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="gRPC port [env TRYON_PORT, 50051].")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind [TRYON_HOST, [::]].")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Prometheus /metrics port, -1 off [TRYON_METRICS_PORT].")
    ] = None,
    weights: Annotated[
        str | None, typer.Option(help="Bundled weights name or pipeline folder [TRYON_WEIGHTS].")
    ] = None,
    db_url: Annotated[
        str | None, typer.Option(help="Catalog database URL [TRYON_DATABASE_URL, ./tryon.db].")
    ] = None,
    device: Annotated[str | None, typer.Option(help="Torch device [TRYON_DEVICE, cpu].")] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="Networks in float32, bfloat16, or auto: bfloat16 on CPUs with AVX512-BF16, "
            "1.2-1.5x as fast there at the same scores [TRYON_PRECISION, auto]."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Torch threads for model work, 0 all cores [TRYON_WORKERS].")
    ] = None,
    max_batch: Annotated[
        int | None, typer.Option(help="Most try-ons per model batch [TRYON_MAX_BATCH, 2].")
    ] = None,
    max_wait_ms: Annotated[
        float | None, typer.Option(help="Longest wait to fill a batch [TRYON_MAX_WAIT_MS, 2].")
    ] = None,
    max_queue: Annotated[
        int | None,
        typer.Option(help="Queued try-ons before RESOURCE_EXHAUSTED [TRYON_MAX_QUEUE, 64]."),
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option(help="Refuse persons below this confidence [TRYON_MIN_CONFIDENCE, 0.25]."),
    ] = None,
    drain_s: Annotated[
        float | None, typer.Option(help="Seconds served NOT_SERVING after SIGTERM [5].")
    ] = None,
    grace_s: Annotated[
        float | None, typer.Option(help="Then seconds running calls get to finish [20].")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING, ERROR.")] = None,
) -> None:
    """Run the gRPC try-on service until SIGTERM (then drain and stop).

    Every option also reads TRYON_<OPTION> from the environment; see docs/service.md for
    all settings (caches, limits, keepalive).
    """
    import asyncio

    from tryon.server.memory import skip_kernel_compiler

    skip_kernel_compiler()  # before the models' imports: ~80 MB less resident
    from tryon.server.app import serve as run_server
    from tryon.server.logs import configure_logging
    from tryon.server.settings import ServerSettings

    settings = ServerSettings.load(
        port=port,
        host=host,
        metrics_port=metrics_port,
        weights=weights,
        database_url=db_url,
        device=device,
        precision=precision,
        workers=workers,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_queue=max_queue,
        min_confidence=min_confidence,
        drain_s=drain_s,
        grace_s=grace_s,
        log_level=log_level,
    )
    configure_logging(settings.log_level)
    asyncio.run(run_server(settings))


@app.command("try-on")
def try_on_command(
    photo: Annotated[Path, typer.Option(help="The shopper photo (JPEG, PNG or WebP).")],
    sku: Annotated[list[str], typer.Option(help="Garment SKU; repeat for several.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the results.")] = Path("."),
    target: Annotated[
        str, typer.Option(envvar="TRYON_TARGET", help="The service, host:port.")
    ] = "localhost:50051",
    fmt: Annotated[str, typer.Option("--format", help="jpeg, png or webp.")] = "jpeg",
    quality: Annotated[int, typer.Option(help="JPEG/WebP quality 1-100.")] = 90,
    max_width: Annotated[int, typer.Option(help="Shrink results to this width (0: no).")] = 0,
    max_height: Annotated[int, typer.Option(help="Shrink results to this height (0: no).")] = 0,
    timeout: Annotated[float, typer.Option(help="Deadline in seconds.")] = 60.0,
) -> None:
    """Send a photo to a running service and save it dressed in each garment.

    A client only: start the service with `tryon serve` (or use `tryon demo`).
    """
    from tryon.client import OutputOptions, TryOnClient

    try:
        data = photo.read_bytes()
    except OSError as error:
        raise InvalidInputError(f"cannot read --photo {photo}: {error.strerror}") from None
    options = OutputOptions(fmt, quality, max_width, max_height)
    out.mkdir(parents=True, exist_ok=True)
    extension = {"jpeg": "jpg", "png": "png", "webp": "webp"}.get(fmt, fmt)
    start = time.perf_counter()
    with TryOnClient(target, timeout_s=timeout) as client:
        for response in client.try_on_many(data, list(sku), options):
            path = out / f"{photo.stem}-{response.garment_sku}.{extension}"
            path.write_bytes(response.image)
            ms = (time.perf_counter() - start) * 1e3
            console.print(
                f"{path}: {response.width}x{response.height}, confidence "
                f"{response.confidence:.2f}, {ms:.0f} ms since sending"
            )


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the catalog and the sheet.")] = Path("demo"),
    shoppers: Annotated[int, typer.Option(min=1, help="Shopper photos to send.")] = 3,
    garments: Annotated[int, typer.Option(min=1, help="Sample garments each tries on.")] = 4,
    weights: Annotated[
        str | None, typer.Option(help="Weights name or folder (default: the bundled ones).")
    ] = None,
) -> None:
    """The whole product in one command: catalog, server, gRPC calls, contact sheet.

    Writes OUT/catalog.db and OUT/tryon_sheet.png; needs no configuration.
    """
    from tryon.demo import run_demo

    run_demo(out, shoppers=shoppers, garments=garments, weights=weights, echo=console.print)


@app.command()
def bench(
    pipeline: Annotated[
        bool, typer.Option("--pipeline", help="Time the networks in process (tryon.bench).")
    ] = False,
    grpc: Annotated[
        bool, typer.Option("--grpc", help="Closed-loop load on the gRPC service.")
    ] = False,
    clients: Annotated[int, typer.Option(min=1, help="--grpc: concurrent clients.")] = 8,
    seconds: Annotated[float, typer.Option(help="--grpc: seconds of load.")] = 20.0,
    target: Annotated[
        str | None,
        typer.Option(help="--grpc: load this running service instead of starting one."),
    ] = None,
    weights: Annotated[str | None, typer.Option(help="Weights name or folder.")] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="Networks in float32, bfloat16, or auto (bfloat16 on CPUs with AVX512-BF16); "
            "--grpc passes it to the server it starts [TRYON_PRECISION, auto]."
        ),
    ] = None,
    max_batch: Annotated[
        int | None, typer.Option(help="--grpc: the started server's batch (default: serve's).")
    ] = None,
    compare: Annotated[
        bool, typer.Option(help="--grpc: also time the pipeline in process at that batch.")
    ] = False,
    seen_photos: Annotated[
        bool,
        typer.Option(help="--grpc: photos the server has analysed (a shopper's next garment)."),
    ] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
) -> None:
    """Measure speed: --pipeline (network timings) or --grpc (the service under load)."""
    if pipeline == grpc:
        raise InvalidInputError("choose one of --pipeline or --grpc")
    if precision is not None:
        _check_precision(precision)
        if target is not None:
            raise InvalidInputError(
                "--precision sets up the server bench starts; the service at --target runs "
                "at its own TRYON_PRECISION"
            )
    if pipeline:
        from tryon.bench import main as bench_networks
        from tryon.pipeline import weights_folder

        precision = precision or os.environ.get("TRYON_PRECISION") or "auto"
        _check_precision(precision)
        code = bench_networks(["--weights", str(weights_folder(weights)), "--precision", precision])
        raise typer.Exit(code)
    from tryon.bench_grpc import run_benchmark

    run_benchmark(
        clients=clients,
        seconds=seconds,
        target=target,
        weights=weights,
        precision=precision,
        max_batch=max_batch,
        compare=compare,
        seen_photos=seen_photos,
        json_out=json_out,
        echo=console.print,
    )


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
