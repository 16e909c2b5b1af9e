"""Seconds per training step of the parser and the TOM, float32 against bfloat16.

One step (forward, an L1 loss in float32, backward, AdamW) at batch 8 on random inputs,
256x192, with the networks' default architectures; the median of 5 steps after one
warm-up, each precision timed twice, interleaved. Used for docs/training.md
("Time and hardware").

    python docs/scripts/time_training_step.py [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from tryon.models import HumanParser, TryOnGenerator, in_precision
from tryon.representation import TOM_PERSON_CHANNELS

BATCH, HEIGHT, WIDTH = 8, 256, 192


def seconds_per_step(network: torch.nn.Module, inputs: tuple, dtype: torch.dtype) -> float:
    run = in_precision(network, dtype)
    optimizer = torch.optim.AdamW(network.parameters(), 1e-4)
    timings = []
    for _ in range(6):
        start = time.perf_counter()
        output = run(*inputs)
        first = output[0] if isinstance(output, tuple) else output.composite
        loss = first.abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings[1:])


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--threads", type=int, default=1)
    torch.set_num_threads(arguments.parse_args().threads)
    shape = (BATCH, 3, HEIGHT, WIDTH)
    cases = {
        "parser": (HumanParser(input_scale=1.0), (torch.randn(shape),)),
        "tom": (
            TryOnGenerator(person_channels=TOM_PERSON_CHANNELS, residual_blocks=4),
            (
                torch.randn(BATCH, TOM_PERSON_CHANNELS, HEIGHT, WIDTH),
                torch.randn(shape),
                torch.rand(BATCH, 1, HEIGHT, WIDTH),
            ),
        ),
    }
    for name, (network, inputs) in cases.items():
        for _ in range(2):
            for dtype in (torch.float32, torch.bfloat16):
                seconds = seconds_per_step(network, inputs, dtype)
                print(f"{name:<7} {str(dtype).removeprefix('torch.'):<9} {seconds:.3f} s/step")


if __name__ == "__main__":
    main()
