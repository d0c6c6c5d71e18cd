"""``atoll compress``: a smaller serving artifact within an accuracy budget."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from atoll.cli._render import emit_json, json_option, table
from atoll.cli.main import AtollFailure, CliState, pass_state

if TYPE_CHECKING:
    from atoll.model.compress import CompressReport


@click.command()
@click.argument("ref")
@click.option(
    "--max-metric-drop",
    type=click.FloatRange(min=0.0),
    default=None,
    help="Largest loss of the metric allowed [default: spec compress.max_metric_drop, 0.001].",
)
@click.option("--metric", default=None, help="Metric to hold [default: the spec's first].")
@click.option(
    "--target",
    type=click.Choice(["serve", "archive"]),
    default=None,
    help="Size that counts: the files a server loads, or their zstd archive [default: serve].",
)
@click.option(
    "--data",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Rows with the target to evaluate on (needed when the package keeps no hold-out).",
)
@click.option("--dry-run", is_flag=True, help="Measure and pick, but register nothing.")
@json_option
@pass_state
def compress(
    state: CliState,
    ref: str,
    max_metric_drop: float | None,
    metric: str | None,
    target: str | None,
    data: Path | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Register the smallest representation of REF within the accuracy budget.

    Tries ONNX, fp16 and int8 weights (linear and neural models) and fewer
    trees (LightGBM) on the version's hold-out rows; the winner is registered
    as a new version whose parent is REF. When nothing qualifies, the table
    shows what each candidate cost and nothing is registered (exit 1).
    """
    from atoll import api
    from atoll.errors import CompressionError

    try:
        outcome = api.compress(
            ref,
            max_metric_drop=max_metric_drop,
            metric=metric,
            target=target,
            data=data,
            dry_run=dry_run,
            settings=state.settings(),
        )
    except CompressionError as exc:
        # the table goes to stdout as usual; the error line alone to stderr (exit 1)
        headline = exc.message.split("\n")[0]
        if as_json:
            emit_json({"registered": None, "error": headline, **_json(exc.report)})
        else:
            _table(exc.report)
        raise AtollFailure(headline) from exc
    if as_json:
        emit_json({"registered": outcome.version, **_json(outcome.report)})
        return
    _table(outcome.report)
    parent = f"{outcome.parent.name}@{outcome.parent.version}"
    if outcome.version is None:
        click.echo(f"dry run: {outcome.report.selected} would be registered (parent {parent})")
    else:
        version = outcome.version
        click.echo(
            f"registered {version.name}@{version.version} "
            f"({outcome.report.selected}, parent {parent})"
        )


def _table(report: CompressReport) -> None:
    from atoll.model.compress.report import HEADERS

    held = report.holdout
    title = (
        f"{report.metric} on {held['rows']:,} rows of {held['source']} "
        f"(budget {report.max_metric_drop:g}, tolerance {report.tolerance:g}, "
        f"size for {report.target})"
    )
    table(title, HEADERS, (row.cells() for row in report.rows))
    for note in report.notes():
        click.echo(f"  {note}")


def _json(report: CompressReport) -> dict[str, object]:
    out = report.to_dict()
    out.pop("package_dir", None)
    return out


COMMANDS = (compress,)
