"""The OpenMP spin setting `tryon serve` and `tryon bench` make before torch loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tryon.openmp import OPENMP_SPIN_COUNT

PROBE = (
    "import os, sys; from tryon.openmp import limit_openmp_spinning; "
    "first = limit_openmp_spinning(); import torch; "
    "print(first, limit_openmp_spinning(), os.environ.get('GOMP_SPINCOUNT'))"
)


@pytest.mark.parametrize(
    ("given", "expected"), [(None, str(OPENMP_SPIN_COUNT)), ("300000", "300000")]
)
def test_the_spin_count_is_set_before_torch_loads_unless_the_environment_says(given, expected):
    env = {name: value for name, value in os.environ.items() if name != "GOMP_SPINCOUNT"}
    if given is not None:
        env["GOMP_SPINCOUNT"] = given
    ran = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    # Once torch is loaded its OpenMP has read the environment: too late, and it says so.
    assert ran.stdout.split() == ["True", "False", expected]
