"""``atoll schema``: draft and inspect column schemas."""

from __future__ import annotations

from pathlib import Path

import click

from atoll.cli._render import emit_json, json_option


@click.group()
def schema() -> None:
    """Draft the columns: section of atoll.yaml from data."""


@schema.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--target", default=None, help="Name of the target column.")
@json_option
def infer(data: Path, target: str | None, as_json: bool) -> None:
    """Print a draft columns: section inferred from DATA (CSV or Parquet).

    Review it: ranges are left out on purpose, and PII guesses are guesses.
    """
    import yaml

    from atoll import api

    columns = api.infer_schema(data, target)
    plain = {
        name: col.model_dump(mode="json", exclude_defaults=True) | {"type": col.type.value}
        for name, col in columns.items()
    }
    if as_json:
        emit_json(plain)
        return
    click.echo(f"# drafted from {data}: review before use")
    click.echo(
        yaml.safe_dump({"columns": plain}, sort_keys=False, default_flow_style=None).rstrip()
    )
