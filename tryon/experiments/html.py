"""The experiment report as one self-contained HTML file, plots inline as SVG.

It shows the plain-language summary, the sample-ratio verdict, the arms' figures, each
comparison, the cumulative return rate of every arm with its interval over time, and the
return rate's relative lift against control over time. Matplotlib draws the plots; it is
imported only here, when a report is rendered.
"""

from __future__ import annotations

import io
from datetime import datetime
from html import escape
from typing import Any

from sqlalchemy.orm import Session

from tryon.experiments.aggregates import ArmStats, arm_stats_over_time
from tryon.experiments.errors import ExperimentError, NotEnoughDataError
from tryon.experiments.report import build_report, srm_verdict, summary
from tryon.experiments.stats import DEFAULT_ALPHA, interval, ratio_test
from tryon.experiments.store import get_experiment

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { padding: .3rem .7rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.summary { font-size: 1.2rem; }
.warning { color: #a40000; }
"""

Timeline = list[tuple[datetime, list[ArmStats]]]


def _figure_svg(draw) -> str:  # noqa: ANN001 (a function drawing on an Axes)
    try:
        from matplotlib import rc_context
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ExperimentError(
            "the HTML report draws its plots with matplotlib; install it (pip install matplotlib)"
        ) from error
    with rc_context({"svg.fonttype": "none"}):
        figure = Figure(figsize=(8, 3.2))
        axes = figure.add_subplot()
        draw(axes)
        figure.autofmt_xdate()
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]  # drop the XML prolog: the SVG sits inside the HTML


def _return_rate_plot(timeline: Timeline, alpha: float) -> str:
    def draw(axes) -> None:  # noqa: ANN001
        times = [t for t, _ in timeline]
        for index, arm in enumerate(timeline[0][1]):
            stats = [arms[index].return_rate for _, arms in timeline]
            bands = [interval(s, alpha) for s in stats]
            axes.plot(times, [s.mean * 100 for s in stats], label=arm.name)
            axes.fill_between(
                times, [b[0] * 100 for b in bands], [b[1] * 100 for b in bands], alpha=0.2
            )
        axes.set_ylabel("return rate, % of items")
        axes.set_title(f"Cumulative return rate per arm, {1 - alpha:.0%} interval")
        axes.legend()

    return _figure_svg(draw)


def _lift_plot(timeline: Timeline, alpha: float, sequential_tuning: float | None) -> str:
    def draw(axes) -> None:  # noqa: ANN001
        for index, arm in enumerate(timeline[0][1][1:], start=1):
            times, effects, lows, highs = [], [], [], []
            for time, arms in timeline:
                try:
                    result = ratio_test(
                        arms[0].return_rate,
                        arms[index].return_rate,
                        sequential_tuning=sequential_tuning,
                        alpha=alpha,
                    )
                except NotEnoughDataError:
                    continue
                times.append(time)
                effects.append(result.effect * 100)
                lows.append(result.ci_low * 100)
                highs.append(result.ci_high * 100)
            axes.plot(times, effects, label=arm.name)
            axes.fill_between(times, lows, highs, alpha=0.2)
        axes.axhline(0, color="black", linewidth=0.8)
        axes.set_ylabel("change vs control, %")
        axes.set_title(f"Relative change of the return rate, {1 - alpha:.0%} interval")
        axes.legend()

    return _figure_svg(draw)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _arms_table(report: dict[str, Any]) -> str:
    rows = [
        [
            a["name"],
            f"{a['units']:,}",
            f"{a['buyers']:,}",
            f"{a['items_bought']:,}",
            f"{a['items_returned']:,}",
            f"{a['return_rate']:.2%}",
            f"{a['conversion']:.2%}",
            f"{a['revenue_per_unit']:.2f}",
            f"{a['tryons']:,}",
        ]
        for a in report["arms"]
    ]
    headers = ["arm", "shoppers", "buyers", "items bought", "items returned"]
    headers += ["return rate", "conversion", "net revenue / shopper", "try-ons"]
    return _table(headers, rows)


def _comparisons_table(report: dict[str, Any]) -> str:
    def cell(result: dict[str, float] | None, scale: float, unit: str) -> list[str]:
        if result is None:
            return ["not enough data", "", ""]
        return [
            f"{result['effect'] * scale:+.2f}{unit}",
            f"{result['ci_low'] * scale:+.2f} to {result['ci_high'] * scale:+.2f}{unit}",
            f"{result['p_value']:.3g}",
        ]

    rows = []
    for c in report["comparisons"]:
        scale, unit = (100, " pts") if c["metric"] != "revenue_per_unit" else (1, "")
        rows.append([c["arm"], c["metric"], *cell(c["absolute"], scale, unit)])
        rows[-1] += cell(c["relative"], 100, "%")
    headers = ["arm", "metric", "change", "interval", "p", "relative", "interval", "p"]
    return _table(headers, rows)


def render_html(
    session: Session,
    key: str,
    alpha: float = DEFAULT_ALPHA,
    sequential_tuning: float | None = None,
    points: int = 30,
) -> str:
    """The report of experiment ``key`` as one HTML document (plots inline, no links out)."""
    experiment = get_experiment(session, key)
    report = build_report(session, key, alpha, sequential_tuning)
    timeline = arm_stats_over_time(session, experiment, points)
    srm = srm_verdict(report)
    parts = [
        f"<h1>Experiment {escape(experiment.key)}</h1>",
        f"<p>Status {escape(experiment.status.value)}; started "
        f"{escape(str(experiment.started_at or 'not yet'))}, stopped "
        f"{escape(str(experiment.stopped_at or 'not yet'))}.</p>",
        f'<p class="summary">{escape(summary(report, alpha))}</p>',
        f'<p class="{"warning" if report["srm_p_value"] < 0.001 else "srm"}">{escape(srm)}</p>',
        _arms_table(report),
        _comparisons_table(report),
    ]
    if report["unknown_skus"]:
        skus = ", ".join(report["unknown_skus"][:20])
        more = len(report["unknown_skus"]) - 20
        parts.append(
            f'<p class="warning">{len(report["unknown_skus"])} SKUs bought in this experiment '
            f"are not in the catalog: {escape(skus)}{f' and {more} more' if more > 0 else ''}."
            "</p>"
        )
    if timeline:
        parts += [
            _return_rate_plot(timeline, alpha),
            _lift_plot(timeline, alpha, sequential_tuning),
        ]
    else:
        parts.append("<p>No exposures or events yet, so nothing to plot.</p>")
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Experiment {escape(experiment.key)}</title><style>{_STYLE}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )
