"""``atoll monitor``: how a served model's traffic compares with what it was trained on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from atoll.cli._render import duration, emit_json, json_option, table
from atoll.cli.main import CliState, pass_state

if TYPE_CHECKING:
    from atoll.monitor.alerting import CheckOutcome
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


def _html_target(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    """Refuse a path the report cannot be written to before any traffic is read."""
    if value is None:
        return None
    if value.is_dir():
        raise click.BadParameter(
            f"{value} is a directory: name a file, e.g. {value / 'report.html'}"
        )
    if not value.parent.is_dir():
        raise click.BadParameter(f"{value}: the folder {value.parent} does not exist")
    return value


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
@click.option(
    "--html",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_html_target,
    metavar="FILE",
    help="Also write a self-contained HTML report with charts to FILE.",
)
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
    html: Path | None,
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
    if html is not None:
        written = api.monitor_html(result, html, settings=state.settings())
        click.echo(f"wrote the HTML report to {written}", err=True)
    if as_json:
        emit_json(result.to_dict())
        return
    _show(result)


def _where(result: Report) -> str:
    """The data file, or the log window, a report read."""
    start = result.window_start.isoformat() if result.window_start else "start"
    end = result.window_end.isoformat() if result.window_end else "now"
    return result.source if result.source != "log" else f"log {start} .. {end}"


def _show(result: Report) -> None:
    from atoll.monitor.summary import headline  # not at import: it loads pydantic

    where = _where(result)
    title = f"{result.model}@{result.version}: {result.rows:,} rows from {where}: {result.status}"
    rows = [(name, check["status"], headline(name, check)) for name, check in result.checks.items()]
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


FIRING_EXIT = 3
"""``monitor check``'s exit code while some alert rule is firing (0: none is), for cron."""


@monitor.command()
@click.argument("model")
@click.option(
    "--window", default=None, metavar="SPAN", help="The last SPAN, e.g. 24h, 90m (default 24h)."
)
@click.option("--since", default=None, callback=_moment, help="Start of the window (ISO-8601).")
@click.option("--until", default=None, callback=_moment, help="End of the window (ISO-8601).")
@json_option
@pass_state
@click.pass_context
def check(
    ctx: click.Context,
    state: CliState,
    model: str,
    window: str | None,
    since: datetime | None,
    until: datetime | None,
    as_json: bool,
) -> None:
    """Report on MODEL's recent traffic and run the alert rules of monitor.alerts.

    Firing rules notify the log and their webhooks, at most once per cooldown;
    resolved ones send a resolution. Rule state is kept per reference: MODEL
    as given, a bare name meaning name@production. Exit code 0 when no rule
    is firing afterwards, 3 when some is (1 on errors), so a scheduler can act on it.
    """
    from atoll import api

    outcome = api.monitor_check(
        model, window=duration(window), since=since, until=until, settings=state.settings()
    )
    if as_json:
        emit_json(outcome.to_dict())
    else:
        _show_check(outcome)
    if outcome.firing:
        ctx.exit(FIRING_EXIT)


def _show_check(outcome: CheckOutcome) -> None:
    result = outcome.report
    firing = ", ".join(outcome.firing) or "none"
    title = (
        f"{outcome.ref} (version {result.version}): {result.rows:,} rows from {_where(result)}:"
        f" {result.status}; firing: {firing}"
    )
    if not outcome.alerts:
        title += " (no rules in monitor.alerts)"
    rows = [
        (a.rule, a.check, a.status, a.action, "yes" if a.firing else "no", a.delivery, a.reason)
        for a in outcome.alerts
    ]
    table(title, ("rule", "check", "status", "action", "firing", "delivery", "reason"), rows)


@monitor.command()
@click.argument("model")
@click.option("--rule", default=None, help="Only this rule's events.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@json_option
@pass_state
def alerts(state: CliState, model: str, rule: str | None, limit: int, as_json: bool) -> None:
    """MODEL's alert history, newest first: what fired, resolved or was held back, and delivery.

    A bare name lists the events of every reference checked (name@production,
    name@staging, ...); name@alias or name@3 only those of checks given it.
    """
    from atoll import api

    events = api.monitor_alerts(model, rule=rule, limit=limit, settings=state.settings())
    if as_json:
        emit_json(events)
        return
    headers = ("time", "ref", "version", "rule", "check", "event", "status", "delivery", "error")
    rows = [
        (e.created_at, e.ref, e.version, e.rule, e.check, e.event, e.status, e.delivery, e.error)
        for e in events
    ]
    table(f"alert events of {model}", headers, rows)


COMMANDS = (monitor,)
