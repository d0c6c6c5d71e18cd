"""What the HTML report draws: the windows it sets side by side, its scales, its group limit."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from atoll.monitor.charts import Plot, lines
from atoll.monitor.history import Snapshot, window_history
from atoll.monitor.html_panels import MAX_GROUPS, fairness_section, largest_groups
from atoll.monitor.html_trends import trends_section
from atoll.monitor.report import CHECKS, Report
from atoll.store.monitoring import save_results

START = datetime(2026, 5, 1, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def _checks(psi: float) -> dict[str, dict[str, Any]]:
    checks: dict[str, dict[str, Any]] = {name: {"status": "ok"} for name in CHECKS}
    checks["drift"] |= {"drifted": [], "warned": [], "columns": {"x": {"status": "ok", "psi": psi}}}
    return checks


def _save(
    engine: sa.Engine,
    start: datetime | None,
    length: timedelta | None,
    psi: float,
    version: int = 2,
) -> None:
    end = None if start is None or length is None else start + length
    source = "log" if start is not None else "data.csv"
    results = {name: ("ok", {**r, "source": source}) for name, r in _checks(psi).items()}
    save_results(engine, "m", version, (start, end), results)


def _report(start: datetime | None, length: timedelta | None, source: str = "log") -> Report:
    end = None if start is None or length is None else start + length
    return Report("m", 2, source, start, end, 100, _checks(0.9))


def test_only_log_windows_of_the_reports_length_and_version_are_drawn(engine: sa.Engine) -> None:
    for k in range(3):
        _save(engine, START + k * HOUR, HOUR, psi=0.01 * k)
    _save(engine, START + HOUR, HOUR, psi=0.05)  # the second hour checked again
    _save(engine, START, DAY, psi=0.5)  # a day: not beside hours
    _save(engine, None, None, psi=0.6)  # a data file: no place in time
    _save(engine, START, HOUR, psi=0.7, version=1)  # another version
    for k in range(12):  # newer rows of other lengths fill the first pages read back
        _save(engine, START + k * DAY, DAY, psi=0.5)

    drawn = window_history(engine, _report(START + 3 * HOUR, HOUR), windows=30)

    assert [s.window_start for s in drawn] == [START + k * HOUR for k in range(4)]
    assert {s.version for s in drawn} == {2}
    psi = [s.checks["drift"]["columns"]["x"]["psi"] for s in drawn]
    assert psi == [0.0, 0.05, 0.02, 0.9]  # a window checked twice: its latest results
    last_two = window_history(engine, _report(START + 3 * HOUR, HOUR), windows=2)
    assert [s.window_start for s in last_two] == [START + 2 * HOUR, START + 3 * HOUR]


def test_a_report_without_a_bounded_window_has_no_history(engine: sa.Engine) -> None:
    _save(engine, START, HOUR, psi=0.1)

    assert window_history(engine, _report(None, None, source="data.csv"), windows=30) == []
    assert window_history(engine, _report(None, None), windows=30) == []


def test_negative_values_are_drawn_below_zero_not_clamped() -> None:
    plot = Plot(top=1.0, bottom=-0.5)
    assert plot.y(-0.5) == plot.lower and plot.y(1.0) == plot.upper
    assert plot.y(-0.4) > plot.y(0.0)

    svg = lines("r2", ["a", "b"], [("r2", [0.3, -0.4], "#000")])

    assert ">-0.5</text>" in svg and ">0</text>" in svg  # the axis reaches below zero
    zero = float(re.findall(r'y1="([\d.]+)"', svg)[sorted_ticks(svg).index("0")])
    low = max(float(cy) for cy in re.findall(r'cy="([\d.]+)"', svg))
    assert low > zero


def sorted_ticks(svg: str) -> list[str]:
    """The y-axis labels, in the order their gridlines are drawn."""
    return re.findall(r'class="tick" x="[\d.]+" y="[\d.]+" text-anchor="end">([^<]*)<', svg)


def test_metrics_of_different_scales_get_separate_charts() -> None:
    metrics = [
        {"rmse": 1200.0, "mae": 900.0, "r2": 0.4},
        {"rmse": 1500.0, "mae": 1000.0, "r2": -0.2},
    ]
    shown = [
        Snapshot(
            1,
            START + k * HOUR,
            START + (k + 1) * HOUR,
            START,
            {"performance": {"status": "ok", "metrics": m}},
        )
        for k, m in enumerate(metrics)
    ]

    page = trends_section(shown, None, last=True)

    charts = re.findall(r'data-trend="([^"]+)"', page)
    assert "errors" in charts and "r2" in charts and "performance" not in charts
    errors = page[page.index('data-trend="errors"') : page.index('data-trend="r2"')]
    assert "rmse:" in errors and "mae:" in errors and "r2:" not in errors


def test_the_largest_groups_are_drawn_and_the_rest_counted() -> None:
    groups = {f"g{i:02d}": {"count": i + 1, "selection_rate": 0.5} for i in range(30)}

    names, left_out = largest_groups(groups)

    assert names == [f"g{i:02d}" for i in range(30 - MAX_GROUPS, 30)] and left_out == 18
    result = {"status": "ok", "groups": groups, "limits": {}}
    section = fairness_section({"columns": {"region": result}})
    assert section.count("<rect") == MAX_GROUPS
    assert "The 18 smallest groups are not drawn." in section
