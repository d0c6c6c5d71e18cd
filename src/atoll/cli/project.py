"""Project commands: init, validate, train, predict (in :mod:`atoll.cli.predict`), demo."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from atoll.cli._render import StageReporter, emit_json, fail, json_option, table
from atoll.cli.main import CliState, pass_state
from atoll.cli.predict import predict

if TYPE_CHECKING:
    from atoll.api import TrainOutcome
    from atoll.schema import Mode

spec_option = click.option(
    "--spec",
    type=click.Path(path_type=Path),
    default=None,
    help="Path to atoll.yaml (default: the project's).",
)


@click.command()
@click.option("--demo", is_flag=True, help="Also write generated credit-risk data and its spec.")
@click.option("--rows", default=50_000, show_default=True, help="Demo rows to generate.")
@click.option("--seed", default=0, show_default=True, help="Seed of the demo data.")
@pass_state
def init(state: CliState, demo: bool, rows: int, seed: int) -> None:
    """Create atoll.yaml in the project directory (and demo data with --demo)."""
    from atoll import api

    path = api.init_project(state.settings().project_dir, demo=demo, rows=rows, seed=seed)
    click.echo(f"wrote {path}")
    click.echo("next: edit it, then run: atoll train" if demo else "next: atoll schema infer FILE")


@click.command()
@click.argument("data", type=click.Path(path_type=Path))
@spec_option
@click.option(
    "--for-predict",
    "for_predict",
    is_flag=True,
    help="DATA is for scoring: only the feature columns are required (no target).",
)
@json_option
@pass_state
def validate(
    state: CliState, data: Path, spec: Path | None, for_predict: bool, as_json: bool
) -> None:
    """Check DATA (CSV or Parquet) against the spec's columns; exit 1 on violations."""
    from atoll import api

    mode: Mode = "predict" if for_predict else "train"
    report = api.validate(data, spec, mode=mode, settings=state.settings(spec))
    if as_json:
        emit_json(report.to_dict())
    elif report.ok:
        click.echo(f"{data}: {report.summary()}")
    else:
        rows = [
            (v.column, v.rule, v.count, ", ".join(map(str, v.rows)), v.message)
            for v in report.violations
        ]
        table(
            f"{data}: {report.n_rows} rows, {report.n_invalid_rows} invalid",
            ["column", "rule", "rows", "first rows (0-based)", "message"],
            rows,
        )
    if not report.ok:
        raise SystemExit(1)


@click.command()
@spec_option
@json_option
@pass_state
def train(state: CliState, spec: Path | None, as_json: bool) -> None:
    """Validate, train, evaluate, package and register a new model version.

    Exits 1 when the new version fails a gate (it is registered, marked
    gate_failed, and cannot be promoted).
    """
    from atoll import api

    outcome = api.train(
        spec, settings=state.settings(spec), reporter=None if as_json else StageReporter()
    )
    if as_json:
        emit_json(_outcome_json(outcome))
    else:
        show_outcome(outcome)
    if not outcome.result.passed_gates:
        fail(f"{outcome.version.name}@{outcome.version.version} failed its gates; not promotable")


def _outcome_json(outcome: TrainOutcome) -> dict[str, Any]:
    return {
        "model": outcome.version.name,
        "version": outcome.version.version,
        "status": outcome.version.status,
        "metrics": outcome.result.evaluation["metrics"],
        "fairness": outcome.result.evaluation.get("fairness"),
        "gates": [g.to_dict() for g in outcome.result.gates],
        "timings": outcome.result.manifest["lineage"]["timings"],
    }


def show_outcome(outcome: TrainOutcome) -> None:
    """Metrics, fairness and gates of a training run, as tables."""
    version, evaluation = outcome.version, outcome.result.evaluation
    click.echo(f"\nregistered {version.name}@{version.version} ({version.status})")
    table("held-out metrics", ["metric", "value"], sorted(evaluation["metrics"].items()))
    for column, report in evaluation.get("fairness", {}).get("columns", {}).items():
        _fairness_table(column, report)
    if outcome.result.gates:
        table(
            "gates",
            ["gate", "verdict"],
            [(g.describe(), "pass" if g.passed else "FAIL") for g in outcome.result.gates],
        )


def _fairness_table(column: str, report: dict[str, Any]) -> None:
    """Per-group rows with whatever the task measures (rates, accuracy or MAE)."""
    summary = ", ".join(
        f"{k} {v:.3f}" for k, v in report.items() if k != "groups" and isinstance(v, float)
    )
    groups = report["groups"]
    measures = list(next(iter(groups.values()), {}))
    rows = [(group, *(values.get(m) for m in measures)) for group, values in groups.items()]
    table(f"fairness by {column}: {summary}", ["group", *measures], rows)


@click.command()
@click.option(
    "--dir",
    "directory",
    default="atoll-demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Demo project directory.",
)
@click.option("--rows", default=50_000, show_default=True, help="Rows of generated data.")
@click.option("--seed", default=0, show_default=True, help="Seed of the generated data.")
@click.option(
    "--serve/--no-serve",
    default=True,
    show_default=True,
    help="End by serving the model on 127.0.0.1 (Ctrl-C to stop).",
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def demo(directory: Path, rows: int, seed: int, serve: bool, port: int) -> None:
    """Generate credit-risk data, train, register, promote, score, then serve, end to end."""
    from atoll import api

    click.echo(f"atoll demo in {directory}/")
    outcome = api.demo(directory, rows=rows, seed=seed, reporter=StageReporter())
    show_outcome(outcome.trained)
    if outcome.promoted is not None:
        click.echo(f"promoted {outcome.promoted.name}@{outcome.promoted.version} to production")
    click.echo(f"scored {outcome.scored_rows:,} new applications -> {outcome.predictions}")
    if not serve or outcome.promoted is None:
        click.echo(f"\nnext: atoll -C {directory} models list")
        return
    _serve_demo(outcome.project_dir, outcome.promoted.name, port)


def _serve_demo(project_dir: Path, name: str, port: int) -> None:
    """Print a key and a curl command that works, then serve until Ctrl-C."""
    import json
    import shlex

    from atoll import api
    from atoll.app import ServeRequest, serve

    settings = api.project_settings(project_dir)
    _, key = api.create_key(
        ["predict", "read"], [name], description="atoll demo", settings=settings
    )
    body = json.dumps({"instances": api.demo_request_rows(project_dir)})
    url = f"http://127.0.0.1:{port}"
    click.echo(f"\nserving {name}@production on {url} (docs: {url}/docs); Ctrl-C to stop")
    click.echo(f"API key (shown once): {key}\n")
    click.echo(
        f"curl -s {url}/v1/models/{name}/predict -H 'Authorization: Bearer {key}' "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}\n"
    )
    raise SystemExit(serve(ServeRequest(str(project_dir), (f"{name}@production",), port=port)))


COMMANDS = (init, validate, train, predict, demo)
