"""Output for people (rich tables, progress lines on stderr) and machines (``--json``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click

from atoll._durations import parse_duration

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")


def duration(text: str | None) -> dt.timedelta | None:
    """A span such as ``30d``, ``12h``, ``90m`` or ``45s``; ``None`` passes through.

    Raises:
        click.BadParameter: not a positive number followed by one of s, m, h, d.
    """
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def emit_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout (dataclasses and datetimes included)."""
    click.echo(json.dumps(value, indent=2, default=_default))


def _default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def table(title: str | None, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A rich table on stdout; every title, header and cell is shown as plain text.

    Rich reads ``[...]`` in strings as markup: a column named ``price[usd]``
    would lose its brackets, and a webhook error such as ``HTTP 500 [/x]``
    would stop the command. Text objects are never parsed.
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    view = Table(
        title=None if title is None else Text(title), title_justify="left", header_style="bold"
    )
    for header in headers:
        view.add_column(Text(header))
    for row in rows:
        view.add_row(*(Text(_cell(v)) for v in row))
    Console().print(view)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def _escaped(text: str) -> str:
    """``text`` with rich markup escaped, to print as it is inside a markup string."""
    from rich.markup import escape

    return escape(text)


class StageReporter:
    """Prints one line per finished stage, with a spinner while a stage runs (stderr)."""

    def __init__(self) -> None:
        from rich.console import Console

        self._console = Console(stderr=True)
        self._status: Any = None

    def started(self, stage: str) -> None:
        if self._console.is_terminal:
            self._status = self._console.status(f"{stage}...")
            self._status.start()

    def finished(self, stage: str, seconds: float, note: str) -> None:
        self._stop_spinner()
        line = f"{stage:<9} {seconds:7.2f}s  {note}"
        self._console.print(f"[green]✓[/] {_escaped(line)}", highlight=False)

    def failed(self, stage: str) -> None:
        self._stop_spinner()
        self._console.print(f"[red]✗[/] {_escaped(stage)}", highlight=False)

    def _stop_spinner(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def fail(message: str) -> None:
    """Print a failure line on stderr and exit 1 (for verdicts that are not errors)."""
    click.secho(message, err=True, fg="red")
    sys.exit(1)
