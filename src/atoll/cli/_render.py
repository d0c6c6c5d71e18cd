"""Output for people (rich tables, progress lines on stderr) and machines (``--json``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str | None) -> dt.timedelta | None:
    """A span such as ``30d``, ``12h``, ``90m`` or ``45s``; ``None`` passes through.

    Raises:
        click.BadParameter: not a positive number followed by one of s, m, h, d.
    """
    if text is None:
        return None
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise click.BadParameter(f"{text!r}: use a positive number and a unit: 30d, 12h, 90m, 45s")
    return dt.timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


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
    """A rich table on stdout."""
    from rich.console import Console
    from rich.table import Table

    view = Table(title=title, title_justify="left", header_style="bold")
    for header in headers:
        view.add_column(header)
    for row in rows:
        view.add_row(*(_cell(v) for v in row))
    Console().print(view)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


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
        self._console.print(f"[green]✓[/] {stage:<9} {seconds:7.2f}s  {note}", highlight=False)

    def failed(self, stage: str) -> None:
        self._stop_spinner()
        self._console.print(f"[red]✗[/] {stage}", highlight=False)

    def _stop_spinner(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def fail(message: str) -> None:
    """Print a failure line on stderr and exit 1 (for verdicts that are not errors)."""
    click.secho(message, err=True, fg="red")
    sys.exit(1)
