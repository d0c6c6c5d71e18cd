"""Chart panels of the current window: each column's distribution, and fairness per group."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from atoll.monitor.charts import (
    CURRENT_COLOR,
    PALETTE,
    REFERENCE_COLOR,
    bars,
    esc,
    figure,
    number,
)
from atoll.monitor.html_tables import badge, severity

MAX_CATEGORIES = 12
"""Categories drawn per column: the largest in either distribution; the rest are summed."""

REST = "(the rest)"

MAX_GROUPS = 12
"""Groups drawn per sensitive column: the largest by rows (the JSON has every group)."""

RATES = (("selection_rate", "selection rate"), ("tpr", "TPR"), ("fpr", "FPR"))


def distributions_section(drift: Mapping[str, Any]) -> str:
    """One card per column (worst first), reference shares beside the window's, per bin."""
    columns = sorted(
        drift.get("columns", {}).items(),
        key=lambda item: (severity(item[1]["status"]), -(item[1].get("psi") or 0.0), item[0]),
    )
    prediction = drift.get("prediction")
    if prediction is not None:
        columns.append(("prediction", prediction))
    cards = [_distribution_card(name, result) for name, result in columns if "histogram" in result]
    if not cards:
        return ""
    lead = (
        "Share of rows per reference bin (numeric columns: the reference's quantile "
        "bins, the end bins open) or per category, in the reference and in this window."
    )
    return (
        f'<section><h2>Distributions: reference and window</h2><p class="lead">{esc(lead)}</p>'
        f'<div class="grid">{"".join(cards)}</div></section>'
    )


def _distribution_card(name: str, result: Mapping[str, Any]) -> str:
    histogram = result["histogram"]
    reference = [float(s) for s in histogram["reference"]]
    counts = [int(c) for c in histogram["current"]]
    if "edges" in histogram:
        labels = bin_labels([float(e) for e in histogram["edges"]])
    else:
        labels, reference, counts = top_categories(histogram["categories"], reference, counts)
    total = sum(counts)
    current: list[float | None] = [c / total if total else None for c in counts]
    colors = (REFERENCE_COLOR, CURRENT_COLOR)
    chart = bars(f"{name}: reference and window", labels, [reference, current], colors, _NAMES)
    psi = result.get("psi")
    caption = f"{total:,} rows in the window" + ("" if psi is None else f", PSI {psi:.3f}")
    legend = list(zip(_NAMES, (REFERENCE_COLOR, CURRENT_COLOR), strict=True))
    flagged = " flagged" if result["status"] == "alert" else ""
    drawn = figure(chart, caption, legend, column=name)
    return (
        f'<div class="card{flagged}"><header><h3>{esc(name)}</h3>{badge(result["status"])}'
        f"</header>{drawn}</div>"
    )


_NAMES = ("reference", "window")


def bin_labels(edges: Sequence[float]) -> list[str]:
    """``< a``, ``a to b`` (with an en dash), ..., ``≥ z``: end bins hold values past the range."""
    count = len(edges) - 1
    if count == 1:
        return ["all values"]
    labels = [f"{number(lo)}\u2013{number(hi)}" for lo, hi in itertools.pairwise(edges)]
    labels[0] = f"< {number(edges[1])}"
    labels[-1] = f"≥ {number(edges[-2])}"
    return labels


def top_categories(
    names: Sequence[str], reference: Sequence[float], counts: Sequence[int]
) -> tuple[list[str], list[float], list[int]]:
    """The largest categories in either distribution, in reference order, the rest summed."""
    if len(names) <= MAX_CATEGORIES:
        return list(names), list(reference), list(counts)
    total = sum(counts) or 1
    weight = [max(r, c / total) for r, c in zip(reference, counts, strict=True)]
    keep = sorted(sorted(range(len(names)), key=lambda i: -weight[i])[: MAX_CATEGORIES - 1])
    rest = [i for i in range(len(names)) if i not in set(keep)]
    return (
        [names[i] for i in keep] + [REST],
        [reference[i] for i in keep] + [sum(reference[i] for i in rest)],
        [counts[i] for i in keep] + [sum(counts[i] for i in rest)],
    )


def fairness_section(fairness: Mapping[str, Any]) -> str:
    """Per sensitive column: selection rate, TPR and FPR per group, and the disparities."""
    columns = fairness.get("columns") or {}
    if not columns:
        reason = fairness.get("reason", "no sensitive columns")
        return f'<section><h2>Fairness by group</h2><p class="note">{esc(reason)}</p></section>'
    cards = [_fairness_card(name, result) for name, result in columns.items()]
    return f'<section><h2>Fairness by group</h2><div class="grid">{"".join(cards)}</div></section>'


def _fairness_card(column: str, result: Mapping[str, Any]) -> str:
    head = f"<header><h3>{esc(column)}</h3>{badge(result['status'])}</header>"
    groups = result.get("groups") or {}
    if not groups:
        return f'<div class="card">{head}<p class="note">{esc(result.get("reason", ""))}</p></div>'
    labelled = result.get("labelled_groups") or {}
    names, left_out = largest_groups(groups)
    shown = [
        (label, [_rate(groups, labelled, g, key) for g in names], color)
        for (key, label), color in zip(RATES, PALETTE, strict=False)
    ]
    shown = [s for s in shown if any(v is not None for v in s[1])]
    chart = bars(
        f"{column}: rates per group",
        [f"{g} ({groups[g]['count']:,})" for g in names],
        [values for _, values, _ in shown],
        [color for _, _, color in shown],
        [label for label, _, _ in shown],
        top=1.0,
    )
    legend = [(label, color) for label, _, color in shown]
    flagged = " flagged" if result.get("flagged") else ""
    caption = _disparities(result)
    if left_out:
        caption += f" The {left_out:,} smallest groups are not drawn."
    drawn = figure(chart, caption, legend, fairness=column)
    return f'<div class="card{flagged}">{head}{drawn}</div>'


def largest_groups(groups: Mapping[str, Any]) -> tuple[list[str], int]:
    """The :data:`MAX_GROUPS` groups with the most rows, by name, and how many were left out."""
    ranked = sorted(groups, key=lambda g: (-int(groups[g].get("count") or 0), g))
    return sorted(ranked[:MAX_GROUPS]), max(0, len(ranked) - MAX_GROUPS)


def _rate(
    groups: Mapping[str, Any], labelled: Mapping[str, Any], group: str, key: str
) -> float | None:
    source = groups if key == "selection_rate" else labelled
    value = (source.get(group) or {}).get(key)
    return None if value is None else float(value)


def _disparities(result: Mapping[str, Any]) -> str:
    """``demographic parity difference 0.04 (limit 0.1), ...`` and what was flagged."""
    limits = result.get("limits") or {}
    parts = []
    for metric, limit in sorted(limits.items()):
        value = result.get(metric)
        shown = "-" if value is None else f"{value:.3f}"
        parts.append(f"{metric.replace('_', ' ')} {shown} (limit {limit:g})")
    flagged = result.get("flagged") or []
    tail = f"; past the limit: {', '.join(flagged)}" if flagged else ""
    return "; ".join(parts) + tail + ". Bars: rates per group (rows)."
