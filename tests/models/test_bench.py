from __future__ import annotations

import pytest
from tiny_models import TINY_FACTORIES

from tryon.bench import benchmark_networks


def test_benchmark_times_each_network_and_the_chain(capsys: pytest.CaptureFixture[str]) -> None:
    parser, gmm, tom = (TINY_FACTORIES[name]() for name in ("parser", "gmm", "tom"))
    timings = benchmark_networks(
        parser, gmm, tom, height=64, width=48, repeats=2, warmup=1, threads=None
    )
    assert [t.name for t in timings] == ["parser", "gmm", "tom", "total"]
    assert all(t.median_ms > 0 and t.min_ms <= t.median_ms for t in timings)
    assert timings[-1].parameters == sum(t.parameters for t in timings[:-1])
    assert "median ms" in capsys.readouterr().out
