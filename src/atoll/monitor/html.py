"""The HTML monitoring report: one self-contained page, readable offline in any browser.

Pure rendering from a :class:`~atoll.monitor.report.Report` and the stored
history of its version (:mod:`atoll.monitor.history`): inline CSS and inline
SVG charts, no script and no external resource, and a Content-Security-Policy
that forbids both. Every string from data is escaped. Writing the file is
the caller's job (``atoll.api.monitor_html``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from atoll.monitor.charts import esc
from atoll.monitor.html_panels import distributions_section, fairness_section
from atoll.monitor.html_tables import checks_table, drift_table, quality_table, when
from atoll.monitor.html_trends import trends_section

if TYPE_CHECKING:
    from atoll.monitor.history import Snapshot
    from atoll.monitor.report import Report
    from atoll.spec_serve import MonitorSpec

POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
"""Nothing may load or run; styles are inline."""

STYLE = """
:root { --ok:#2e7d32; --warn:#b26a00; --alert:#c62828; --no_data:#6b7280; --line:#e3e6ea;
  --ink:#1f2933; --soft:#5f6b7a; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color:var(--ink); background:#f6f7f9; }
main { max-width:1180px; margin:0 auto; padding:24px 28px 48px; }
header { display:flex; align-items:center; gap:14px; flex-wrap:wrap; }
h1 { font-size:24px; margin:0; }
h2 { font-size:18px; margin:32px 0 4px; }
h3 { font-size:14px; margin:0; overflow-wrap:anywhere; }
p.meta, p.note, figcaption, .lead { color:var(--soft); }
p.meta { margin:6px 0 0; } p.note { margin:4px 0 12px; }
.lead { margin:0 0 12px; }
.badge { display:inline-block; padding:1px 9px; border-radius:10px; color:#fff;
  font-size:12px; font-weight:600; white-space:nowrap; }
.badge.big { font-size:15px; padding:3px 14px; border-radius:14px; }
.ok { background:var(--ok); } .warn { background:var(--warn); }
.alert { background:var(--alert); } .no_data { background:var(--no_data); }
table { border-collapse:collapse; background:#fff; border:1px solid var(--line);
  width:100%; font-variant-numeric:tabular-nums; }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line);
  vertical-align:top; overflow-wrap:break-word; }
th { background:#eef1f4; font-weight:600; }
td.num, th.num { text-align:right; white-space:nowrap; }
tr.prediction td { background:#f7f9fc; font-style:italic; }
.scroll { overflow-x:auto; }
.grid { display:grid; grid-template-columns:repeat(auto-fill, minmax(330px, 1fr)); gap:14px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
.card.flagged { border-color:var(--alert); box-shadow:0 0 0 1px var(--alert) inset; }
.card header { justify-content:space-between; gap:8px; margin-bottom:4px; }
figure.chart { margin:0; }
figure.chart svg { display:block; width:100%; height:auto; }
figcaption { font-size:12px; margin-top:2px; }
.legend { display:flex; flex-wrap:wrap; gap:4px 14px; font-size:12px; margin-top:2px; }
.legend i { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:5px; }
svg text { font:10px system-ui, sans-serif; fill:#4b5563; }
svg .grid { stroke:#e5e7eb; } svg .guide { stroke:#9ca3af; stroke-dasharray:4 3; }
table.strip td { padding:0; width:22px; height:22px; border:2px solid #fff; }
table.strip th { font-weight:500; white-space:nowrap; background:#fff; border:none; }
table.strip { width:auto; border:none; background:transparent; margin-bottom:4px; }
.keys { display:flex; gap:6px; align-items:center; font-size:12px; color:var(--soft);
  margin:0 0 14px; flex-wrap:wrap; }
footer { margin-top:40px; color:var(--soft); font-size:12px; }
"""


def render(
    report: Report, history: Sequence[Snapshot] = (), spec: MonitorSpec | None = None
) -> str:
    """The whole page: summary, drift table and charts, trends over windows, fairness, quality.

    ``history``: the version's windows, oldest first, the report's own last
    (:func:`atoll.monitor.history.snapshots`). ``spec``: the thresholds to
    draw as guides.
    """
    checks = report.to_dict()["checks"]
    name = f"{report.model}@{report.version}"
    body = "".join(
        [
            _header(report, name),
            _section("Checks", checks_table(checks)),
            _section("Drift by column", drift_table(checks["drift"])),
            distributions_section(checks["drift"]),
            trends_section(history, spec, last=report.source == "log"),
            fairness_section(checks.get("fairness", {})),
            _section("Data quality by column", quality_table(checks["quality"])),
            f"<footer>atoll monitoring report of {esc(name)}, "
            f"computed {esc(when(report.created_at))}.</footer>",
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>atoll monitoring: {esc(name)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def _header(report: Report, name: str) -> str:
    if report.source == "log":
        start = when(report.window_start) if report.window_start else "the first logged row"
        end = when(report.window_end) if report.window_end else "now"
        where = f"prediction log, {start} to {end}"
    else:
        where = f"data file {report.source}"
    meta = f"{report.rows:,} rows from the {where}"
    return (
        f'<header><h1>{esc(name)}</h1><span class="badge big {esc(report.status)}">'
        f"{esc(report.status)}</span></header>"
        f'<p class="meta">{esc(meta)} &middot; computed {esc(when(report.created_at))}</p>'
    )


def _section(title: str, content: str) -> str:
    return f"<section><h2>{esc(title)}</h2>{content}</section>"
