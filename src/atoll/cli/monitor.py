"""``atoll monitor``: how a served model's traffic compares with what it was trained on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from atoll.cli._render import duration, emit_json, json_option, table
from atoll.cli.main import CliState, pass_state

if TYPE_CHECKING:
    from atoll.monitor.report import Report


def _moment(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    """ISO-8601 text as an aware datetime; without a zone it is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: use ISO-8601, e.g. 2026-05-01T12:00Z") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@click.group()
def monitor() -> None:
    """Drift, data quality, performance, fairness and latency of a model's traffic."""


@monitor.command()
@click.argument("model")
@click.option("--window", default=None, metavar="SPAN", help="The last SPAN, e.g. 24h, 7d, 90m.")
@click.option("--since", default=None, callback=_moment, help="Start of the window (ISO-8601).")
@click.option("--until", default=None, callback=_moment, help="End of the window (ISO-8601).")
@click.option(
    "--data",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Check a CSV or Parquet file instead of the prediction log (no window).",
)
@click.option("--no-save", is_flag=True, help="Do not store the results in the database.")
@json_option
@pass_state
def report(
    state: CliState,
    model: str,
    window: str | None,
    since: datetime | None,
    until: datetime | None,
    data: Path | None,
    no_save: bool,
    as_json: bool,
) -> None:
    """Check MODEL's logged traffic (default: all of it) against its reference profile.

    MODEL is name, name@alias or name@3. Each check's result is stored so
    its history can be read later.
    """
    from atoll import api

    if data is not None and (window or since or until):
        raise click.UsageError("--data has no time window: drop --window, --since and --until")
    result = api.monitor_report(
        model,
        window=duration(window),
        since=since,
        until=until,
        data=data,
        save=not no_save,
        settings=state.settings(),
    )
    if as_json:
        emit_json(result.to_dict())
        return
    _show(result)


def _show(result: Report) -> None:
    start = result.window_start.isoformat() if result.window_start else "start"
    end = result.window_end.isoformat() if result.window_end else "now"
    where = result.source if result.source != "log" else f"log {start} .. {end}"
    title = f"{result.model}@{result.version}: {result.rows:,} rows from {where}: {result.status}"
    rows = [
        (name, check["status"], _headline(name, check)) for name, check in result.checks.items()
    ]
    table(title, ("check", "status", "summary"), rows)
    columns = result.checks["drift"].get("columns", {})
    if columns:
        table(
            "drift by column", ("column", "rows", "psi", "ks / js", "status"), _drift_rows(columns)
        )


def _drift_rows(columns: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (name, c["rows"], c.get("psi"), c.get("ks", c.get("js")), c["status"])
        for name, c in sorted(columns.items(), key=lambda item: -(item[1].get("psi") or 0.0))
    ]


def _headline(name: str, check: dict[str, Any]) -> str:
    if "reason" in check:
        return str(check["reason"])
    if name == "drift":
        alert, warn = ", ".join(check["drifted"]) or "none", ", ".join(check["warned"]) or "none"
        return f"alert: {alert}; warn: {warn}"
    if name == "quality":
        bad = [n for n, c in check["columns"].items() if c["status"] != "ok"]
        absent = [f"{n} (absent)" for n in check["absent_features"]]
        rejected = check.get("rejected_rows")
        line = f"columns with problems: {', '.join(bad + absent) or 'none'}"
        return line if rejected is None else f"{line}; {rejected:,} rows rejected by the schema"
    if name == "performance":
        shown = ", ".join(f"{m} {v:.4f}" for m, v in check["metrics"].items())
        drop = check["metric_drop"]
        versus = "" if drop is None else f" ({check['judged_metric']} {-drop:+.1%} vs training)"
        return f"{check['labelled_rows']:,} labelled rows: {shown}{versus}"
    if name == "fairness":
        flagged = [
            f"{c}: {', '.join(r['flagged'])}"
            for c, r in check["columns"].items()
            if r.get("flagged")
        ]
        return "; ".join(flagged) or "no disparity past its limit"
    latency = check.get("latency_ms", {})
    return f"p50 {latency.get('p50', 0):.1f} ms, p99 {latency.get('p99', 0):.1f} ms"


COMMANDS = (monitor,)
