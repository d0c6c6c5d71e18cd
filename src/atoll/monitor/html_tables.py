"""The tables of the HTML report: checks with their statuses, drift and quality per column."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from atoll.monitor.charts import esc, percent
from atoll.monitor.status import LEVELS
from atoll.monitor.summary import headline

UNSEEN_SHOWN = 5
"""Unseen categories named per column in the quality table (the JSON has them all)."""


def badge(status: str) -> str:
    return f'<span class="badge {esc(status)}">{esc(status)}</span>'


def when(moment: datetime | None) -> str:
    """A moment as people read it, in UTC to the minute."""
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def severity(status: str) -> int:
    """Sort key: ``alert`` first, then ``warn``, ``ok``, ``no_data``."""
    return -LEVELS.index(status) if status in LEVELS else 1


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()
) -> str:
    """A table of already escaped cells; ``numeric`` columns are right-aligned."""

    def cell(tag: str, i: int, content: str) -> str:
        kind = ' class="num"' if i in numeric else ""
        return f"<{tag}{kind}>{content}</{tag}>"

    head = "".join(cell("th", i, esc(h)) for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    rows_html = f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
    return f'<div class="scroll"><table>{rows_html}</table></div>'


def checks_table(checks: Mapping[str, Mapping[str, Any]]) -> str:
    rows = [
        [esc(name), badge(check["status"]), esc(headline(name, dict(check)))]
        for name, check in checks.items()
    ]
    return table(("check", "status", "summary"), rows)


def drift_table(drift: Mapping[str, Any]) -> str:
    """Every column, worst first then by PSI, and the predictions last."""
    columns = sorted(
        drift.get("columns", {}).items(),
        key=lambda item: (severity(item[1]["status"]), -(item[1].get("psi") or 0.0)),
    )
    rows = [_drift_row(esc(name), result) for name, result in columns]
    prediction = drift.get("prediction")
    if prediction is not None:
        rows.append(_drift_row("<em>prediction</em>", prediction))
    headers = ("column", "kind", "rows", "PSI", "KS / JS", "Wasserstein / sd", "p-value", "status")
    skipped = drift.get("skipped") or {}
    note = "".join(
        f'<p class="note">{esc(name)}: {esc(why)}</p>' for name, why in sorted(skipped.items())
    )
    return table(headers, rows, numeric=(2, 3, 4, 5, 6)) + note


def _drift_row(name: str, result: Mapping[str, Any]) -> list[str]:
    distance = result.get("ks", result.get("js"))
    p_value = result.get("ks_p_value", result.get("chi2_p_value"))
    status = badge(result["status"])
    if "reason" in result:
        status += f' <span class="note">{esc(result["reason"])}</span>'
    return [
        name,
        esc(result.get("kind") or _kind(result.get("histogram") or {})),
        esc(f"{result.get('rows', 0):,}"),
        esc(_fixed(result.get("psi"))),
        esc(_fixed(distance)),
        esc(_fixed(result.get("wasserstein_norm"))),
        esc(_p_value(p_value)),
        status,
    ]


def quality_table(quality: Mapping[str, Any]) -> str:
    columns = sorted(
        quality.get("columns", {}).items(), key=lambda item: (severity(item[1]["status"]), item[0])
    )
    rows = [_quality_row(name, result) for name, result in columns]
    rows += [
        [esc(name), "-", "-", "-", "-", "not in any row of the window", badge("alert")]
        for name in quality.get("absent_features", [])
    ]
    headers = ("column", "null rate", "reference", "below range", "above range", "unseen", "status")
    rejected = quality.get("rejected_rows")
    note = (
        ""
        if rejected is None
        else f'<p class="note">{esc(f"{rejected:,}")} rows rejected by schema validation.</p>'
    )
    return table(headers, rows, numeric=(1, 2, 3, 4)) + note


def _quality_row(name: str, result: Mapping[str, Any]) -> list[str]:
    return [
        esc(name),
        esc(percent(result["null_rate"])),
        esc(percent(result["reference_null_rate"])),
        esc(_count(result.get("below_range"))),
        esc(_count(result.get("above_range"))),
        _unseen(result),
        badge(result["status"]),
    ]


def _unseen(result: Mapping[str, Any]) -> str:
    """``12 values: <code>a</code> (10), <code>b</code> (2)``, or ``-`` for a numeric column."""
    if "unseen_values" not in result:
        return "-"
    values = int(result["unseen_values"])
    if values == 0:
        return "none"
    named = list((result.get("unseen_categories") or {}).items())
    shown = ", ".join(f"<code>{esc(n)}</code> ({c:,})" for n, c in named[:UNSEEN_SHOWN])
    more = len(named) - UNSEEN_SHOWN + (1 if result.get("unseen_unnamed") else 0)
    tail = f", and {more:,} more" if more > 0 else ""
    judged = "" if result.get("unseen_judged", True) else " (not judged: top categories only)"
    return f"{values:,} values{': ' + shown if shown else ''}{tail}{esc(judged)}"


def _kind(histogram: Mapping[str, Any]) -> str:
    """A column's kind when its statistics were not computed (too few rows)."""
    if not histogram:
        return "-"
    return "numeric" if "edges" in histogram else "categorical"


def _fixed(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _p_value(value: float | None) -> str:
    return "-" if value is None else ("< 1e-4" if value < 1e-4 else f"{value:.4f}")


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
