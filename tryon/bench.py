"""How fast the three networks are: median milliseconds per network for one try-on.

Runs the parser on the shopper photo, the GMM on a person representation and a garment,
and the TOM on the GMM's warp, with random inputs at model resolution, batch 1, in the
pipeline's precision (`--precision`), under `torch.inference_mode`. Representation
building, decoding and paste-back are not networks and are not timed here.

    python -m tryon.bench [--weights DIR] [--height 256 --width 192] [--repeats 50]
        [--precision auto|float32|bfloat16]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tryon.models import (
    PRECISIONS,
    GeometricMatcher,
    GmmOutput,
    HumanParser,
    TryOnGenerator,
    fold_batch_norms,
)
from tryon.models.bundle import PipelineMeta, load_pipeline_components
from tryon.models.openvino_parser import OpenVinoNetwork
from tryon.pipeline import TryOnPipeline
from tryon.representation import push_pull_fill


@dataclass(frozen=True)
class NetworkTiming:
    """Timing of one network: parameters and milliseconds per call (median and fastest)."""

    name: str
    parameters: int
    median_ms: float
    min_ms: float


def _time_call(call: Callable[[], object], repeats: int, warmup: int) -> list[float]:
    with torch.inference_mode():
        for _ in range(warmup):
            call()
        timings = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            timings.append((time.perf_counter() - start) * 1000.0)
    return timings


def benchmark_networks(
    parser: HumanParser | None = None,
    gmm: GeometricMatcher | None = None,
    tom: TryOnGenerator | None = None,
    *,
    height: int = 256,
    width: int = 192,
    repeats: int = 50,
    warmup: int = 5,
    threads: int | None = 2,
    fold: bool = True,
    precision: str = "auto",
    openvino_parser: OpenVinoNetwork | None = None,
    seed: int = 0,
    echo: Callable[[str], None] = print,
) -> list[NetworkTiming]:
    """Time each network and the three in a row; print a table and return the timings.

    Args:
        parser, gmm, tom: the networks; default-configured ones (random weights) where
            None, which cost what trained ones of that configuration cost (the bundled
            GMM has a refinement stage the default lacks: time it with its weights).
        height, width: model resolution in pixels (divisible by 32).
        repeats: timed calls per network; warmup: untimed calls before them.
        threads: `torch.set_num_threads` value (None leaves it alone).
        fold: fold batch norms into convolutions first, as `TryOnPipeline.from_pretrained`
            does.
        precision: auto, float32 or bfloat16, as `TryOnPipeline` takes it.
        openvino_parser: `parser`'s network compiled by OpenVINO, to time in its place
            (`tryon.models.openvino_parser`).
        echo: where the table's lines go.

    The networks run inside a `TryOnPipeline` (its memory layout, precision and stored
    weights), so they cost here what they cost in the service.

    Returns:
        One entry per network and a final "total" entry for the chained three.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    networks: dict[str, nn.Module] = {
        "parser": parser if parser is not None else HumanParser(),
        "gmm": gmm if gmm is not None else GeometricMatcher(),
        "tom": tom if tom is not None else TryOnGenerator(),
    }
    if fold:
        networks = {name: fold_batch_norms(network) for name, network in networks.items()}
    pipeline = TryOnPipeline(
        *networks.values(),
        PipelineMeta(name="bench", licence="-", resolution=(height, width)),
        precision=precision,
        folded=fold,
        openvino_parser=openvino_parser,
    )
    run = {"parser": pipeline.parse, "gmm": pipeline.warp, "tom": pipeline.synthesize}

    generator = torch.Generator().manual_seed(seed)

    def random_input(
        channels: int, low: float = -1.0, layout: torch.memory_format = torch.contiguous_format
    ) -> torch.Tensor:
        # In the layouts the pipeline passes them in: photos and garments in the usual
        # (N, C, H, W) one, person representations in the networks' own
        # (`PersonRepresentation.gmm_input`), which is channels-last on the CPU.
        values = torch.rand(1, channels, height, width, generator=generator)
        return (low + (1.0 - low) * values).contiguous(memory_format=layout)

    photo = random_input(3)
    person_layout = pipeline.memory_format
    gmm_person = random_input(networks["gmm"].config["person_channels"], 0.0, person_layout)
    tom_person = random_input(networks["tom"].config["person_channels"], -1.0, person_layout)
    garment, garment_mask = random_input(3), random_input(1, low=0.0)
    agnostic, background_pixels = random_input(3), (random_input(1, low=0.0) > 0.5).float()
    with torch.inference_mode():
        warp = run["gmm"](gmm_person, garment, garment_mask)

    tom_shows_background = networks["tom"].shows_background

    def render(warped: GmmOutput) -> None:
        # A TOM that shows the background needs its fill, made for each call.
        fill = push_pull_fill(agnostic, background_pixels) if tom_shows_background else None
        run["tom"](tom_person, warped.warped_garment, warped.warped_mask, fill)

    def run_all() -> None:
        run["parser"](photo)
        render(run["gmm"](gmm_person, garment, garment_mask))

    calls: dict[str, Callable[[], object]] = {
        "parser": lambda: run["parser"](photo),
        "gmm": lambda: run["gmm"](gmm_person, garment, garment_mask),
        "tom": lambda: render(warp),
        "total": run_all,
    }
    results = []
    for name, call in calls.items():
        timings = _time_call(call, repeats, warmup)
        modules = networks.values() if name == "total" else [networks[name]]
        parameters = sum(p.numel() for module in modules for p in module.parameters())
        results.append(NetworkTiming(name, parameters, statistics.median(timings), min(timings)))
    folded = "batch norms folded" if fold else "batch norms kept"
    if not fold and openvino_parser is not None:
        folded += " (but the parser's, which OpenVINO folds)"
    convolutions = pipeline.precision_name
    echo(
        f"{height}x{width}, batch 1, {convolutions} convolutions, {folded}, parser in "
        f"{pipeline.parser_runtime_name}, {torch.get_num_threads()} threads, {repeats} runs"
    )
    echo(f"{'network':<8} {'params':>10} {'median ms':>10} {'min ms':>8}")
    for result in results:
        median, fastest = f"{result.median_ms:.1f}", f"{result.min_ms:.1f}"
        echo(f"{result.name:<8} {result.parameters:>10,} {median:>10} {fastest:>8}")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: `python -m tryon.bench --help`."""
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--weights", type=Path, help="pipeline folder (default: random weights)")
    arguments.add_argument("--height", type=int, default=256)
    arguments.add_argument("--width", type=int, default=192)
    arguments.add_argument("--repeats", type=int, default=50)
    arguments.add_argument("--threads", type=int, default=2)
    arguments.add_argument(
        "--no-fold",
        action="store_true",
        help="keep the batch norms (the pipeline folds them into the convolutions)",
    )
    arguments.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="what the convolutions run in (auto: bfloat16 on CPUs with AVX512-BF16)",
    )
    options = arguments.parse_args(argv)
    components = load_pipeline_components(options.weights) if options.weights else None
    benchmark_networks(
        components.parser if components else None,
        components.gmm if components else None,
        components.tom if components else None,
        height=options.height,
        width=options.width,
        repeats=options.repeats,
        threads=options.threads,
        fold=not options.no_fold,
        precision=options.precision,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
