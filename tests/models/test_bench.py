from __future__ import annotations

import pytest
from tiny_models import TINY_FACTORIES
from typer.testing import CliRunner

from tryon.bench import benchmark_networks
from tryon.cli import app


def test_benchmark_times_each_network_and_the_chain(capsys: pytest.CaptureFixture[str]) -> None:
    parser, gmm, tom = (TINY_FACTORIES[name]() for name in ("parser", "gmm", "tom"))
    timings = benchmark_networks(
        parser, gmm, tom, height=64, width=48, repeats=2, warmup=1, threads=None
    )
    assert [t.name for t in timings] == ["parser", "gmm", "tom", "total"]
    assert all(t.median_ms > 0 and t.min_ms <= t.median_ms for t in timings)
    assert timings[-1].parameters == sum(t.parameters for t in timings[:-1])
    assert "median ms" in capsys.readouterr().out


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_benchmark_says_what_the_convolutions_ran_in(capsys, precision) -> None:
    parser, gmm, tom = (TINY_FACTORIES[name]() for name in ("parser", "gmm", "tom"))
    benchmark_networks(
        parser,
        gmm,
        tom,
        height=64,
        width=48,
        repeats=1,
        warmup=0,
        threads=None,
        precision=precision,
    )
    assert f"{precision} convolutions" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--pipeline", "--precision", "half"], "'half': choose one of"),
        (["--grpc", "--target", "localhost:1", "--precision", "float32"], "own TRYON_PRECISION"),
        (["--pipeline", "--grpc"], "choose one of --pipeline or --grpc"),
    ],
)
def test_bench_refuses_a_precision_it_cannot_apply_as_a_usage_error(arguments, message) -> None:
    result = CliRunner().invoke(app, ["bench", *arguments])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
