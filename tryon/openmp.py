"""How long PyTorch's OpenMP threads spin between parallel regions, set before torch loads.

GNU OpenMP (which the torch wheels use) keeps an idle worker thread spinning for
`GOMP_SPINCOUNT` iterations (300,000 by default, about a millisecond) after each parallel
region, so that the next region starts at once. Inside a network the regions follow each
other within microseconds and spinning pays; but a try-on also runs work outside torch
(OpenCV resizes, NumPy, the OpenVINO parser with its own threads, JPEG encoding) between
the networks, and there the spinning worker takes a core, or on a 2-vCPU VM the other
half of the same physical core, from the work that runs. A shorter spin gave a new
photo's in-process time (`tryon bench --report` stages, AMD EPYC, 2 vCPUs) 71-95 ms
against 80-107 ms alternated with the default (docs/speed.md).

libgomp reads the variable once, when torch loads it: `limit_openmp_spinning` must run
before anything imports torch. A value already in the environment wins.
"""

from __future__ import annotations

import os
import sys

OPENMP_SPIN_COUNT = 30_000


def limit_openmp_spinning(spin_count: int = OPENMP_SPIN_COUNT) -> bool:
    """Set `GOMP_SPINCOUNT` to `spin_count` unless it is set already; False (and nothing
    done) when torch is imported already, and its OpenMP has read the environment."""
    if "torch" in sys.modules:
        return False
    os.environ.setdefault("GOMP_SPINCOUNT", str(spin_count))
    return True
