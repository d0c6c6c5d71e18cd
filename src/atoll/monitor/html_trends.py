"""Trends over consecutive windows, from stored results: statuses, drift, metrics, fairness."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any

from atoll._durations import format_duration
from atoll.monitor.charts import PALETTE, Series, esc, figure, lines, number
from atoll.monitor.html_tables import badge, when
from atoll.monitor.report import CHECKS
from atoll.monitor.status import LEVELS, NO_DATA

if TYPE_CHECKING:
    from atoll.monitor.history import Snapshot
    from atoll.spec_serve import MonitorSpec

MIN_LINES, MAX_LINES = 3, 6
"""Columns drawn in the drift trend: those that reached the PSI warn level, within these bounds."""

DEFAULT_PSI_WARN = 0.1


def trends_section(history: Sequence[Snapshot], spec: MonitorSpec | None, *, last: bool) -> str:
    """Statuses per window, PSI per column, task metrics, latency, rows and fairness gaps.

    ``last``: the report's own window is the last of ``history`` (a report
    of a data file has no place in it).
    """
    shown = list(history)
    if not shown:
        return ""
    labels = [s.moment.astimezone(UTC).strftime("%m-%d %H:%M") for s in shown]
    charts = [
        _drift(shown, labels, spec),
        *_performance(shown, labels),
        _latency(shown, labels),
        _rows(shown, labels),
        _fairness(shown, labels),
    ]
    cards = "".join(f'<div class="card">{c}</div>' for c in charts if c)
    length = _length(shown[-1])
    lead = f"{len(shown)} windows of {length} of the prediction log of version"
    lead += f" {shown[-1].version} (windows of other lengths are left out), oldest first,"
    lead += " from stored results"
    lead += "; this report's window is the last." if last else "."
    return (
        f'<section><h2>Over time</h2><p class="lead">{esc(lead)}</p>{_strip(shown)}'
        f'<div class="grid">{cards}</div></section>'
    )


def _length(snapshot: Snapshot) -> str:
    """The window's length as the CLI takes it (``24h``), else as Python shows it."""
    if snapshot.window_start is None or snapshot.window_end is None:
        return "unbounded length"
    span = snapshot.window_end - snapshot.window_start
    try:
        return format_duration(span)
    except ValueError:
        return str(span)


def _strip(shown: Sequence[Snapshot]) -> str:
    """A row of status cells per check, one column per window."""
    rows = []
    for check in CHECKS:
        cells = "".join(
            _cell(s.checks[check]["status"], f"{check} {_span(s)}: {s.checks[check]['status']}")
            if check in s.checks
            else "<td></td>"
            for s in shown
        )
        rows.append(f"<tr><th>{esc(check)}</th>{cells}</tr>")
    keys = " ".join(badge(status) for status in (*LEVELS, NO_DATA))
    return (
        f'<div class="scroll"><table class="strip">{"".join(rows)}</table></div>'
        f'<p class="keys">One cell per window, oldest left; hover for its span. {keys}</p>'
    )


def _cell(status: str, tip: str) -> str:
    return f'<td class="{esc(status)}" title="{esc(tip)}"></td>'


def _span(snapshot: Snapshot) -> str:
    start = when(snapshot.window_start) if snapshot.window_start else "start"
    return f"{start} to {when(snapshot.window_end) if snapshot.window_end else 'now'}"


def _values(shown: Sequence[Snapshot], *path: str) -> list[float | None]:
    """The number at ``path`` in each window's checks (``None`` where a window has none)."""
    values: list[float | None] = []
    for snapshot in shown:
        value: Any = snapshot.checks
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        values.append(float(value) if isinstance(value, int | float) else None)
    return values


def _drift(shown: Sequence[Snapshot], labels: list[str], spec: MonitorSpec | None) -> str:
    names: dict[str, None] = {}
    for snapshot in shown:
        names.update(dict.fromkeys(snapshot.checks.get("drift", {}).get("columns", {})))
    columns = {n: _values(shown, "drift", "columns", n, "psi") for n in names}
    peak = {n: max((v or 0.0 for v in row), default=0.0) for n, row in columns.items()}
    ranked = sorted(columns, key=lambda n: -peak[n])
    warn = DEFAULT_PSI_WARN if spec is None else spec.drift.psi.warn
    count = min(MAX_LINES, max(MIN_LINES, sum(peak[n] >= warn for n in ranked)))
    series: list[Series] = [
        (name, columns[name], color) for name, color in zip(ranked[:count], PALETTE, strict=False)
    ]
    if not any(v is not None for _, row, _ in series for v in row):
        return ""
    guides = (
        [] if spec is None else [(spec.drift.psi.warn, "warn"), (spec.drift.psi.alert, "alert")]
    )
    chart = lines("PSI per window", labels, series, guides=guides)
    caption = f"PSI per window of the {len(series)} columns that drifted most"
    caption += "" if spec is None else "; dashed: the warn and alert levels."
    legend = [(name, color) for name, _, color in series]
    return _titled("Drift (PSI)", figure(chart, caption, legend, trend="drift"))


METRIC_SCALES = (
    ("Task metrics", "performance", ("roc_auc", "accuracy", "f1", "macro_f1")),
    ("Log-loss", "log_loss", ("log_loss",)),
    ("Errors", "errors", ("rmse", "mae")),
    ("R²", "r2", ("r2",)),
)
"""Metrics drawn on one chart: scores in [0, 1] together, errors in the target's units
together, log-loss and R² (unbounded below) each alone; any other metric gets its own."""


def _performance(shown: Sequence[Snapshot], labels: list[str]) -> list[str]:
    metrics: dict[str, None] = {}
    for snapshot in shown:
        metrics.update(dict.fromkeys(snapshot.checks.get("performance", {}).get("metrics") or {}))
    present = [m for m in metrics if any(v is not None for v in _metric(shown, m))]
    if not present:
        return [_titled("Task metrics", '<p class="note">No window has labelled rows yet.</p>')]
    grouped = {name for _, _, names in METRIC_SCALES for name in names}
    scales = [*METRIC_SCALES, *((m, m, (m,)) for m in present if m not in grouped)]
    judged = shown[-1].checks.get("performance", {})
    return [
        _metrics_chart(shown, labels, title, trend, [m for m in names if m in present], judged)
        for title, trend, names in scales
        if any(m in present for m in names)
    ]


def _metric(shown: Sequence[Snapshot], name: str) -> list[float | None]:
    return _values(shown, "performance", "metrics", name)


def _metrics_chart(
    shown: Sequence[Snapshot],
    labels: list[str],
    title: str,
    trend: str,
    names: list[str],
    judged: dict[str, Any],
) -> str:
    """One chart of metrics on one scale, with the training value of the judged one."""
    series: list[Series] = [
        (m, _metric(shown, m), color) for m, color in zip(names, PALETTE, strict=False)
    ]
    metric = judged.get("judged_metric")
    baseline = (judged.get("baseline") or {}).get(metric) if metric in names else None
    guides = [] if baseline is None else [(float(baseline), f"training {metric}")]
    caption = "Metrics on the labelled rows of each window"
    caption += "." if baseline is None else f"; dashed: training {metric}."
    chart = lines(f"{title} per window", labels, series, guides=guides)
    legend = [(name, color) for name, _, color in series]
    return _titled(title, figure(chart, caption, legend, trend=trend))


def _latency(shown: Sequence[Snapshot], labels: list[str]) -> str:
    series: list[Series] = [
        (q, _values(shown, "operational", "latency_ms", q), color)
        for q, color in (("p50", PALETTE[0]), ("p99", PALETTE[1]))
    ]
    if not any(v is not None for _, row, _ in series for v in row):
        return ""
    chart = lines("latency per window", labels, series, value_label=lambda v: f"{number(v)} ms")
    legend = [(name, color) for name, _, color in series]
    caption = "Latency percentiles per window (ms, binned estimates)"
    return _titled("Latency", figure(chart, caption, legend, trend="latency"))


def _rows(shown: Sequence[Snapshot], labels: list[str]) -> str:
    counts = _values(shown, "operational", "rows")
    chart = lines("rows per window", labels, [("rows", counts, PALETTE[0])])
    return _titled("Rows", figure(chart, "Logged rows per window", trend="rows"))


def _fairness(shown: Sequence[Snapshot], labels: list[str]) -> str:
    columns: dict[str, None] = {}
    for snapshot in shown:
        columns.update(dict.fromkeys(snapshot.checks.get("fairness", {}).get("columns") or {}))
    metric = "demographic_parity_difference"
    series: list[Series] = [
        (c, _values(shown, "fairness", "columns", c, metric), color)
        for c, color in zip(columns, PALETTE, strict=False)
    ]
    series = [s for s in series if any(v is not None for v in s[1])]
    if not series:
        return ""
    limits = shown[-1].checks.get("fairness", {}).get("columns", {})
    guides = [
        (float(r["limits"][metric]), f"{c} limit")
        for c, r in limits.items()
        if metric in (r.get("limits") or {})
    ][:1]
    chart = lines("fairness per window", labels, series, guides=guides)
    legend = [(name, color) for name, _, color in series]
    caption = "Demographic parity difference per window" + (
        "; dashed: its limit." if guides else "."
    )
    return _titled("Fairness gap", figure(chart, caption, legend, trend="fairness"))


def _titled(title: str, content: str) -> str:
    return f"<h3>{esc(title)}</h3>{content}"
