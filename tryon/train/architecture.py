"""The network a training run starts from: fresh, `init:`'s, or grown from it.

A recipe's `network:` section gives the architecture. Without `init:` the run builds it
fresh. With `init:` the run starts from that component folder's weights, and a
`network:` that asks for more than `init:` has grows it: parts added to a trained network
start as no-ops (`add_refinement_stages`, `add_flow_stage`, `add_residual_blocks`,
`add_background_head`, `add_parse_refiner`; the parser's `input_scale` changes freely), so
the grown network begins where `init:` ended. Other changes are refused: they would not
keep `init:`'s weights.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from tryon.errors import InvalidInputError
from tryon.models.checkpoint import grown_copy
from tryon.models.gmm import add_flow_stage, add_refinement_stages
from tryon.models.parser import add_parse_refiner
from tryon.models.tom import add_background_head, add_residual_blocks
from tryon.train.config import (
    NETWORK_CLASSES,
    TrainingConfig,
    network_arguments,
    network_defaults,
    network_folder,
)

# How each growable `network:` key grows a trained network to a value: (network, value)
# -> the grown copy; ValueError where the value would drop trained parts.
GROWERS: dict[str, dict[str, Callable[[Any, Any], nn.Module]]] = {
    "parser": {
        "input_scale": lambda parser, scale: grown_copy(parser, (), input_scale=scale),
        "refiner_channels": add_parse_refiner,
    },
    "gmm": {
        "refinement_stages": add_refinement_stages,
        "flow_stage": lambda gmm, wanted: add_flow_stage(gmm) if wanted else _no_drop(),
    },
    "tom": {
        "residual_blocks": add_residual_blocks,
        "background": lambda tom, wanted: add_background_head(tom) if wanted else _no_drop(),
    },
}


def _no_drop() -> nn.Module:
    raise ValueError("a trained part cannot be removed")


def network_to_train(config: TrainingConfig, resuming: bool) -> nn.Module:
    """The network `config` trains, in training mode: built fresh from its `network:`
    (also when `resuming`, whose weights then come from the checkpoint), or `init:`'s
    grown to it. The config's `network:` becomes complete: every constructor argument
    the recipe may set, as the network has it."""
    cls = NETWORK_CLASSES[config.component]
    if config.init is None or resuming:
        network = _build(cls, network_arguments(config))
    else:
        init = network_folder(config.init, config.component)
        network = _grown(config.component, cls.from_pretrained(init), config.network, init)
    recipe_keys = network_defaults(config.component)
    config.network = {key: value for key, value in network.config.items() if key in recipe_keys}
    return network.train()


def _build(cls: type, arguments: dict[str, Any]) -> nn.Module:
    """`cls(**arguments)`; a recipe whose `network:` the constructor refuses (a value out
    of range) is refused with its reason."""
    try:
        return cls(**arguments)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(
            f"the recipe's network does not build a {cls.__name__}: {error}"
        ) from error


def _grown(component: str, network: nn.Module, wanted: dict[str, Any], init: Path) -> nn.Module:
    """`network` (loaded from `init`) grown to the `wanted` constructor arguments."""
    for key, value in wanted.items():
        have = network.config[key]
        if have == value or (isinstance(have, list) and list(value) == have):
            continue
        grow = GROWERS[component].get(key)
        refusal = (
            f"--init {init} has network.{key} {have!r}, the recipe asks for {value!r}: "
            f"leave network.{key} out to keep init's"
        )
        if grow is None:
            raise InvalidInputError(f"{refusal} (only {', '.join(GROWERS[component])} can grow)")
        try:
            network = grow(network, value)
        except ValueError as error:
            raise InvalidInputError(f"{refusal} ({error})") from error
    return network
