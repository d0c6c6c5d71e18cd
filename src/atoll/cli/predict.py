"""``atoll predict``: batch scoring, with a progress bar on a terminal and log lines elsewhere."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from atoll.cli._render import emit_json
from atoll.cli.main import CliState, pass_state

if TYPE_CHECKING:
    from rich.console import Console

    from atoll.batch.job import BatchSummary, Progress

LOG_EVERY_S = 5.0
"""Without a terminal, one progress line this often: enough for a log, not a flood."""


@click.command()
@click.option("--model", "ref", required=True, help="Model reference: name@alias or name@3.")
@click.option(
    "--input",
    "source",
    required=True,
    help="CSV or Parquet file, a glob of them (quoted), or sql:QUERY.",
)
@click.option(
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write predictions (.csv or .parquet).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "csv"]),
    default=None,
    help="Output format (default: from the output's suffix).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Processes scoring at once (with --engine dask and no --address: the LocalCluster's).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="local: processes on this machine; dask: a Dask cluster.",
)
@click.option(
    "--address",
    default=None,
    help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a LocalCluster of --workers).",
)
@click.option(
    "--chunk-rows",
    default=100_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows per chunk: memory grows with it and with --workers.",
)
@click.option(
    "--columns-passthrough",
    "passthrough",
    default=None,
    help="Comma-separated input columns to copy to the output (default: the id columns).",
)
@click.option("--fail-on-invalid", is_flag=True, help="Stop at the first invalid row.")
@click.option(
    "--log/--no-log",
    "log",
    default=None,
    help="Feed the prediction log for atoll monitor, or not "
    "(default: monitor.log.batch in atoll.yaml, else off).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_state
def predict(
    state: CliState,
    ref: str,
    source: str,
    output: Path,
    fmt: str | None,
    workers: int,
    engine: str,
    address: str | None,
    chunk_rows: int,
    passthrough: str | None,
    fail_on_invalid: bool,
    log: bool | None,
    as_json: bool,
) -> None:
    """Score a file, a glob or a SQL query with a registered model version, in chunks.

    Memory is bounded by --chunk-rows and --workers, not by the input's size.
    Each output row holds the passthrough columns, row (its 0-based number in
    the input), prediction, probability_<class> for classifiers, and
    model_version.

    Invalid rows do not stop the job: they go, with the column and the reason,
    to <output stem>.quarantine.<format> beside the output (--fail-on-invalid
    stops at the first one instead).

    With --log (or monitor.log.batch: true in atoll.yaml) the scored rows
    are also written to the prediction log, as the server logs its own, so
    atoll monitor can judge them; the output then has a prediction_id column,
    the id feedback names a row by.

    The output appears only when the job succeeds. Finished chunks are kept in
    <output>.partial/ meanwhile: if the job is killed, run the same command
    again and it resumes where it stopped; with other arguments or another
    input it starts over. A SQL input is known by its URL and query text
    only: resume it only if the query returns the same rows in the same
    order (an ORDER BY on a key, over data that did not change); a query
    without ORDER BY gets no guarantee, and old and new rows may mix.
    """
    from atoll import api

    columns = [c.strip() for c in passthrough.split(",") if c.strip()] if passthrough else None
    reporter = None if as_json else BatchReporter()
    try:
        summary = api.predict_batch(
            ref,
            source,
            output,
            format=fmt,
            workers=workers,
            engine=engine,
            address=address,
            chunk_rows=chunk_rows,
            passthrough=columns,
            fail_on_invalid=fail_on_invalid,
            log=log,
            reporter=reporter,
            settings=state.settings(),
        )
    finally:
        if reporter is not None:
            reporter.close()
    if as_json:
        emit_json({**dataclasses.asdict(summary), "rows_per_s": round(summary.rows_per_s, 1)})
    else:
        _show(summary, ref)


def _show(summary: BatchSummary, ref: str) -> None:
    click.echo(
        f"scored {summary.rows_scored:,} rows with {ref} (version {summary.version}) "
        f"-> {summary.output} in {summary.seconds:.1f}s ({summary.rows_per_s:,.0f} rows/s)"
    )
    if summary.chunks_resumed:
        click.echo(f"resumed: {summary.rows_resumed:,} rows were scored by an earlier run")
    if summary.rows_logged is not None:
        click.echo(f"logged {summary.rows_logged:,} rows to the prediction log")
    if summary.quarantine is not None:
        click.secho(
            f"quarantined {summary.rows_quarantined:,} invalid rows -> {summary.quarantine}",
            err=True,
            fg="yellow",
        )


class BatchReporter:
    """A rich progress bar (rows, rows/s, ETA) on a terminal; a line every few seconds otherwise."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console

        self._console = console or Console(stderr=True)
        self._bar: Any = None
        self._task: Any = None
        self._last_line = time.monotonic()

    def note(self, text: str) -> None:
        self._console.print(text, highlight=False)

    def progress(self, progress: Progress) -> None:
        if self._console.is_terminal:
            self._draw(progress)
        elif time.monotonic() - self._last_line >= LOG_EVERY_S:
            self._last_line = time.monotonic()
            self._console.print(progress_line(progress), highlight=False)

    def _draw(self, progress: Progress) -> None:
        if self._bar is None:
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("scoring"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.completed:,.0f} rows  {task.fields[rate]}"),
                TimeRemainingColumn(),
                console=self._console,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("scoring", total=progress.rows_total, rate="")
        rate = f"{progress.rows_per_s:,.0f} rows/s"
        self._bar.update(self._task, completed=progress.rows_done, rate=rate)
        if progress.rows_total is not None and progress.rows_done >= progress.rows_total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def progress_line(progress: Progress) -> str:
    """One plain progress line, for logs."""
    total = f"/{progress.rows_total:,}" if progress.rows_total else ""
    text = f"scored {progress.rows_done:,}{total} rows, {progress.rows_per_s:,.0f} rows/s"
    if progress.rows_total and progress.rows_per_s > 0:
        left = (progress.rows_total - progress.rows_done) / progress.rows_per_s
        text += f", about {left:,.0f}s left"
    return text
