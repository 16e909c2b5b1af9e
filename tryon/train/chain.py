"""Training the three networks in one resumable run: parser, then GMM, then TOM.

`tryon train all --recipes configs/viton --data DIR --out OUT --max-minutes N` trains each
network from its recipe (`RECIPES/parser.yaml`, `gmm.yaml`, `tom.yaml`) into its own run
folder, `OUT/parser/`, `OUT/gmm/`, `OUT/tom/`, exactly as `tryon train <network>` would,
and then draws `OUT/curves.png`. What it adds:

- **Chained networks**: a recipe's `parsed_by:` (GMM, TOM) or `gmm:` (TOM) that names
  bundled weights (`viton`, `synthetic`) is replaced by the network this run has just
  trained, `OUT/<network>/best/<network>` (the best held-out step) or, without
  validation, `OUT/<network>/<network>` (the last). A folder given there is an explicit
  choice and is kept; null stays null. `init:` is each network's own starting point and
  is kept.
- **One time budget**: `max_minutes` of training in all, shared 30/30/40 (`TIME_SHARES`).
  Each network gets its share of what is left when it starts, so time a network does
  not use (it ended on `steps`) and set-up time (reading the data, loading networks) are
  accounted for; the last network ends within the budget.
- **Resume**: `OUT/chain.json` records the networks finished; `--resume` skips them,
  continues the one that was stopped from its checkpoint, and starts the rest.
- **Precision**: bfloat16 on a GPU that supports it, `auto` on a CPU (bfloat16 where it
  multiplies bfloat16 natively), unless `precision` says otherwise.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from tryon.errors import InvalidInputError
from tryon.train.config import CONFIG_NAME, TrainingConfig, save_config
from tryon.train.loop import CHECKPOINT_NAME, resolve_device, run_training
from tryon.train.runs import prepare_run, resolve_recipe

NETWORKS = ("parser", "gmm", "tom")
TIME_SHARES = {"parser": 0.3, "gmm": 0.3, "tom": 0.4}
STATE_NAME = "chain.json"
CURVES_NAME = "curves.png"
# Which earlier network each recipe key names, per network trained.
CHAINED_KEYS = {"gmm": {"parsed_by": "parser"}, "tom": {"gmm": "gmm", "parsed_by": "parser"}}


@dataclass(kw_only=True)
class ChainRequest:
    """What `tryon train all` was asked: the recipes folder, the data, the run folder, the
    time budget in minutes and the per-run settings that override every recipe (None:
    as the recipe says; `val_data` None: the data folder when a recipe names held-out
    pairs of its own, else no validation)."""

    recipes: Path
    data: Path
    out: Path
    max_minutes: float
    device: str = "auto"
    resume: bool = False
    val_data: Path | None = None
    precision: str | None = None
    workers: int | None = None
    batch: int | None = None


@dataclass
class ChainResult:
    """The trained networks to pack (`tryon pack --parser ... --gmm ... --tom ...`), the
    training minutes each took and the curves drawn."""

    networks: dict[str, Path]
    minutes: dict[str, float]
    curves: Path
    skipped: list[str] = field(default_factory=list)


StartCallback = Callable[[str, TrainingConfig, bool], None]
StepCallback = Callable[[str, int, dict[str, float]], None]


def train_all(
    request: ChainRequest,
    on_start: StartCallback | None = None,
    on_step: StepCallback | None = None,
) -> ChainResult:
    """Train parser, GMM and TOM one after the other under one time budget (see the
    module's notes). `on_start(network, config, resuming)` is called as each network
    starts (its `config.training.max_minutes` is its budget, its own earlier time
    included), `on_step(network, step, losses)` after each step."""
    started = time.perf_counter()
    recipes = recipe_paths(request.recipes)
    state = _read_state(request)
    device = resolve_device(request.device)
    precision = request.precision or chain_precision(device)
    trained_now = 0.0  # training seconds of this invocation, to tell set-up time apart
    skipped = [network for network in NETWORKS if state["done"].get(network) is not None]
    for position, network in enumerate(NETWORKS):
        if network in skipped:
            continue
        run_out = request.out / network
        resuming = (run_out / CHECKPOINT_NAME).exists()
        overrides = {
            "data.path": request.data,
            "training.device": request.device,
            "training.precision": precision,
            "training.workers": request.workers,
            "training.batch": request.batch,
            **chained_references(network, recipes[network], request.out),
        }
        config = resolve_recipe(
            network, None if resuming else recipes[network], run_out, resuming, overrides
        )
        if config.validation.path is None:
            config.validation.path = _validation_folder(request, config)
        run = prepare_run(config, run_out, resuming)
        earlier = checkpoint_seconds(run_out) if resuming else 0.0
        setup = time.perf_counter() - started - trained_now
        left = 60.0 * request.max_minutes - sum(state["done"].values()) - setup - earlier
        if left <= 0:
            raise InvalidInputError(
                f"the budget of {request.max_minutes:g} minutes is spent before the {network} "
                f"could train; resume with a larger --max-minutes"
            )
        shares = [TIME_SHARES[n] for n in NETWORKS[position:]]
        config.training.max_minutes = (earlier + left * shares[0] / sum(shares)) / 60.0
        save_config(config, run_out / CONFIG_NAME, f"tryon train all --out {request.out}")
        if on_start is not None:
            on_start(network, config, resuming)
        run_training(
            run.trainer,
            run.dataset,
            config.training,
            run_out,
            run.device,
            resume=resuming,
            on_step=None if on_step is None else functools.partial(on_step, network),
            validator=run.validator,
        )
        seconds = checkpoint_seconds(run_out)
        trained_now += seconds - earlier
        state["done"][network] = seconds
        _write_state(request, state)
    from tryon.train.curves import plot_runs

    curves = plot_runs([request.out / n for n in NETWORKS], request.out / CURVES_NAME)
    networks = {n: trained_network(request.out, n) for n in NETWORKS}
    networks["gmm"] = _gmm_to_pack(request.out)
    minutes = {n: seconds / 60.0 for n, seconds in state["done"].items()}
    return ChainResult(networks=networks, minutes=minutes, curves=curves, skipped=skipped)


def recipe_paths(recipes: Path) -> dict[str, Path]:
    """`RECIPES/<network>.yaml` for each network; refuses a folder that lacks one."""
    paths = {network: recipes / f"{network}.yaml" for network in NETWORKS}
    missing = [path.name for path in paths.values() if not path.is_file()]
    if missing:
        raise InvalidInputError(
            f"{recipes} lacks {', '.join(missing)}: `tryon train all` needs a folder with "
            "parser.yaml, gmm.yaml and tom.yaml (as configs/viton)"
        )
    return paths


def chain_precision(device: torch.device) -> str:
    """bfloat16 on a GPU that computes in it, else `auto` (bfloat16 on a CPU with native
    bfloat16 dot products, float32 elsewhere)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bfloat16"
    return "auto"


def trained_network(out: Path, network: str) -> Path:
    """The network a chained run in `out` trained: its best held-out step
    (`OUT/<network>/best/<network>`) when validated, else its last."""
    best = out / network / "best" / network
    return best if best.is_dir() else out / network / network


def chained_references(network: str, recipe: Path, out: Path) -> dict[str, Path]:
    """The recipe keys of `network` that name bundled weights (`parsed_by: viton`) as
    overrides to the networks trained in `out` (see the module's notes)."""
    from tryon.train.config import load_config

    config = load_config(network, recipe)
    overrides = {}
    for key, source in CHAINED_KEYS.get(network, {}).items():
        value = getattr(config, key)
        names_bundled = value is not None and not value.is_dir() and len(value.parts) == 1
        if names_bundled:
            overrides[key] = trained_network(out, source)
    return overrides


def checkpoint_seconds(run: Path) -> float:
    """The training seconds a run folder's checkpoint records (0 without one)."""
    path = run / CHECKPOINT_NAME
    if not path.exists():
        return 0.0
    return float(torch.load(path, map_location="cpu", weights_only=True).get("seconds", 0.0))


def _validation_folder(request: ChainRequest, config: TrainingConfig) -> Path | None:
    """`--val-data`, else the data folder when the recipe names held-out pairs of another
    file than its training pairs (as configs/viton's splits), else None."""
    if request.val_data is not None:
        return request.val_data
    return request.data if config.validation.pairs != config.data.pairs else None


def _gmm_to_pack(out: Path) -> Path:
    """The GMM the TOM trained on: tuned beside it (`OUT/tom/.../gmm`) when it was."""
    tom = trained_network(out, "tom")
    tuned = tom.parent / "gmm"
    return tuned if tuned.is_dir() else trained_network(out, "gmm")


def _read_state(request: ChainRequest) -> dict:
    """The chain's record in OUT/chain.json: {"done": {network: training seconds}}.
    Refuses a run folder that holds a run unless resuming."""
    path = request.out / STATE_NAME
    holds_run = path.exists() or any(
        (request.out / network / CHECKPOINT_NAME).exists() for network in NETWORKS
    )
    if holds_run and not request.resume:
        raise InvalidInputError(
            f"{request.out} already holds a training run; pass --resume to continue it or "
            "choose another --out"
        )
    return json.loads(path.read_text()) if path.exists() else {"done": {}}


def _write_state(request: ChainRequest, state: dict) -> None:
    path = request.out / STATE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2) + "\n")
