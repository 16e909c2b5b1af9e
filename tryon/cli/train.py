"""`tryon train`: train one network on a VITON-layout dataset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tryon.cli.common import check_precision, console, parse_size
from tryon.errors import InvalidInputError

if TYPE_CHECKING:
    from tryon.train.architecture import ArchitectureOptions
    from tryon.train.loop import TrainConfig
    from tryon.train.validation import Validator


COMPONENTS = ("parser", "gmm", "tom")
DEFAULT_LR = {"parser": 2e-3, "gmm": 1e-4, "tom": 4e-4}
VAL_EVERY = 500  # steps between held-out scores (--val-every)
VAL_SIZE = 64  # held-out pairs scored each time (--val-size)


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
        check_precision(given)
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
