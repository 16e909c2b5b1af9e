"""The network a `tryon train` run starts from: fresh, `--init`'s, or grown from it.

Architecture options change `--init`'s network before training: the parser's
`--input-scale` and `--parse-refiner`, the GMM's `--refinement-stages`, `--flow-stage` and
`--flow-corrections`, the TOM's `--residual-blocks`, `--shading` and `--show-background`.
Added parts start as no-ops, so a grown network begins where `--init` ended. A resumed run
keeps the architecture it started with (read from its own component folder; the weights
come from its checkpoint) and refuses options that would change it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tryon.errors import InvalidInputError
from tryon.models import GeometricMatcher, HumanParser, TryOnGenerator
from tryon.models.checkpoint import grown_copy
from tryon.models.gmm import add_flow_corrections, add_flow_stage, add_refinement_stages
from tryon.models.parser import REFINER_CHANNELS, add_parse_refiner
from tryon.models.tom import add_background_head, add_residual_blocks, add_shading
from tryon.representation import GMM_PERSON_CHANNELS, TOM_PERSON_CHANNELS


@dataclass(frozen=True, kw_only=True)
class ArchitectureOptions:
    """The architecture options of `tryon train`, by name; None and False leave the
    network as `--init` has it (or the defaults, without --init)."""

    input_scale: float | None = None  # parser
    parse_refiner: bool = False  # parser
    refinement_stages: int | None = None  # gmm
    flow_stage: bool = False  # gmm
    flow_corrections: int | None = None  # gmm
    residual_blocks: int | None = None  # tom
    shading: bool = False  # tom
    show_background: bool = False  # tom


def network_to_train(
    component: str, options: ArchitectureOptions, init: Path | None, resumed_run: Path | None
) -> HumanParser | GeometricMatcher | TryOnGenerator:
    """The network a `tryon train parser|gmm|tom` run trains, with the options that
    concern it (`parser_to_train`, `gmm_to_train`, `tom_to_train`)."""
    if component == "parser":
        return parser_to_train(options.input_scale, options.parse_refiner, init, resumed_run)
    if component == "gmm":
        return gmm_to_train(
            options.refinement_stages,
            options.flow_stage,
            options.flow_corrections,
            init,
            resumed_run,
        )
    return tom_to_train(
        options.residual_blocks, options.shading, options.show_background, init, resumed_run
    )


def parser_to_train(
    input_scale: float | None, refiner: bool, init: Path | None, resumed_run: Path | None
) -> HumanParser:
    """The parser `tryon train` starts from: `--init`'s (or a fresh one) at `input_scale`,
    or at the scale it has, with a `ParseRefiner` added if `refiner` asks for one it
    lacks; when resuming, the run's own scale and refiner (the weights come from the
    checkpoint)."""
    saved = None if resumed_run is None else resumed_run / "parser"
    if saved is not None and (saved / "config.json").exists():
        parser = HumanParser.from_pretrained(saved)
        if input_scale is not None and input_scale != parser.input_scale:
            raise InvalidInputError(
                f"this run trains a parser at --input-scale {parser.input_scale:g}: resume it "
                "with that scale or without the option"
            )
        if refiner and parser.refiner is None:
            raise InvalidInputError(
                "this run trains a parser without a refiner: resume it without --parse-refiner"
            )
        return parser
    if init is None:
        scale = {} if input_scale is None else {"input_scale": input_scale}
        return HumanParser(**scale, refiner_channels=REFINER_CHANNELS if refiner else 0)
    parser = HumanParser.from_pretrained(init)
    if input_scale is not None and input_scale != parser.input_scale:
        parser = grown_copy(parser, (), input_scale=input_scale)
    if refiner and parser.refiner is None:
        parser = add_parse_refiner(parser, REFINER_CHANNELS)
    return parser


@dataclass(frozen=True)
class _Growable:
    """A part of a network `tryon train` can grow: untrained blocks (counted by `count`,
    added by `grow`) up to the number `option` asks for."""

    component: str
    option: str
    blocks: str
    count: Callable[[Any], int]
    grow: Callable[[Any, int], Any]


@dataclass(frozen=True)
class _GrowableNetwork(_Growable):
    """A network whose growable part `_network_to_train` sets: `load` reads it from a
    component folder, `fresh(blocks)` builds a new one (no --init)."""

    load: Callable[[Path], Any]
    fresh: Callable[[int], Any]


_GMM_STAGES = _GrowableNetwork(
    component="gmm",
    option="--refinement-stages",
    blocks="refinement stage(s)",
    count=lambda gmm: len(gmm.refiners),
    grow=add_refinement_stages,
    load=GeometricMatcher.from_pretrained,
    fresh=lambda stages: GeometricMatcher(
        person_channels=GMM_PERSON_CHANNELS, refinement_stages=stages
    ),
)


_TOM_BLOCKS = _GrowableNetwork(
    component="tom",
    option="--residual-blocks",
    blocks="residual block(s)",
    count=lambda tom: len(tom.unet.bottleneck),
    grow=add_residual_blocks,
    load=TryOnGenerator.from_pretrained,
    fresh=lambda blocks: TryOnGenerator(
        person_channels=TOM_PERSON_CHANNELS, residual_blocks=blocks
    ),
)


def _grow_flow_corrections(gmm: GeometricMatcher, corrections: int) -> GeometricMatcher:
    if gmm.flow is None:
        raise InvalidInputError(
            "--flow-corrections correct a flow stage, and this GMM has none: add --flow-stage"
        )
    return add_flow_corrections(gmm, corrections)


_FLOW_CORRECTIONS = _Growable(
    component="gmm",
    option="--flow-corrections",
    blocks="flow correction(s)",
    count=lambda gmm: len(gmm.flow_corrections),
    grow=_grow_flow_corrections,
)


def _network_to_train(
    growable: _GrowableNetwork, wanted: int | None, init: Path | None, resumed_run: Path | None
):
    """The network `tryon train` starts from: `--init`'s, grown to `wanted` blocks, or a
    fresh one; when resuming, the run's own architecture (its weights come from the
    checkpoint)."""
    saved = None if resumed_run is None else resumed_run / growable.component
    if saved is not None and (saved / "config.json").exists():
        return _grown_to(growable, growable.load(saved), wanted, init, resuming=True)
    if init is None:
        return growable.fresh(wanted or 0)
    return _grown_to(growable, growable.load(init), wanted, init, resuming=False)


def _grown_to(
    growable: _Growable, network, wanted: int | None, init: Path | None, *, resuming: bool
):
    """`network` with `wanted` blocks of `growable` (None: as it has). A resumed run
    keeps the blocks it has, and trained blocks are never removed: asking for either is
    refused, naming the option to give."""
    option, blocks = growable.option, growable.blocks
    have = growable.count(network)
    if wanted is None or wanted == have:
        return network
    if resuming:
        raise InvalidInputError(
            f"this run trains a {growable.component} with {have} {blocks}: resume it "
            f"with {option} {have} or without the option"
        )
    if wanted < have:
        raise InvalidInputError(
            f"--init {init} has {have} trained {blocks}: give {option} {have} or more, "
            "or leave it out"
        )
    return growable.grow(network, wanted)


def gmm_to_train(
    refinement_stages: int | None,
    flow_stage: bool,
    flow_corrections: int | None,
    init: Path | None,
    resumed_run: Path | None,
) -> GeometricMatcher:
    """The GMM a run trains: `_network_to_train` for its refinement stages, then a flow
    stage added if `flow_stage` asks for one it lacks, then flow corrections grown to
    `flow_corrections` (None: as it has). A resumed run keeps its flow stages: asking it
    for others is refused."""
    gmm = _network_to_train(_GMM_STAGES, refinement_stages, init, resumed_run)
    if flow_stage and gmm.flow is None:
        if resumed_run is not None:
            raise InvalidInputError(
                "this run trains a GMM without a flow stage: resume it without --flow-stage"
            )
        gmm = add_flow_stage(gmm)
    return _grown_to(
        _FLOW_CORRECTIONS, gmm, flow_corrections, init, resuming=resumed_run is not None
    )


def tom_to_train(
    residual_blocks: int | None,
    shading: bool,
    show_background: bool,
    init: Path | None,
    resumed_run: Path | None,
) -> TryOnGenerator:
    """The TOM a run trains: `_network_to_train` for its residual blocks, then a shading
    head and a background head added if `shading` and `show_background` ask for ones it
    lacks. A resumed run keeps the heads it has (or lacks): asking it for one is refused."""
    tom = _network_to_train(_TOM_BLOCKS, residual_blocks, init, resumed_run)
    heads = (
        (shading, tom.shading_head, add_shading, "a shading head", "--shading"),
        (
            show_background,
            tom.background_head,
            add_background_head,
            "a background head",
            "--show-background",
        ),
    )
    for wanted, head, grow, what, option in heads:
        if wanted and head is None:
            if resumed_run is not None:
                raise InvalidInputError(
                    f"this run trains a TOM without {what}: resume it without {option}"
                )
            tom = grow(tom)
    return tom
