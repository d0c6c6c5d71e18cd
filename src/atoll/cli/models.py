"""``atoll models``: the registry: list, show, compare, promote, rollback, tag, history."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from atoll._sizes import human_bytes
from atoll.cli._render import emit_json, json_option, table
from atoll.cli.main import CliState, pass_state

if TYPE_CHECKING:
    from atoll.store.registry import VersionInfo


@click.group()
def models() -> None:
    """Registered models, their versions and aliases."""


@models.command("list")
@json_option
@pass_state
def list_(state: CliState, as_json: bool) -> None:
    """Every registered model with its latest version and aliases."""
    from atoll import api

    found = api.list_models(settings=state.settings())
    if as_json:
        emit_json(found)
        return
    rows = [
        (
            m.name,
            m.latest_version,
            m.version_count,
            ", ".join(f"{a}→{v}" for a, v in sorted(m.aliases.items())),
            m.created_at,
        )
        for m in found
    ]
    table("models", ["name", "latest", "versions", "aliases", "created"], rows)


@models.command()
@click.argument("ref")
@json_option
@pass_state
def show(state: CliState, ref: str, as_json: bool) -> None:
    """Show REF: a model's versions (NAME) or one version (NAME@3, NAME@production)."""
    from atoll import api

    settings = state.settings()
    if "@" not in ref:
        versions = api.list_versions(ref, settings=settings)
        if as_json:
            emit_json(versions)
            return
        table(
            ref,
            ["version", "status", "aliases", "primary metrics", "size", "created", "by"],
            [
                (
                    v.version,
                    v.status,
                    ", ".join(v.aliases),
                    _headline(v),
                    human_bytes(v.size_bytes),
                    v.created_at,
                    v.created_by,
                )
                for v in versions
            ],
        )
        return
    version = api.show(ref, settings=settings)
    if as_json:
        emit_json(version)
        return
    _show_version(version)


def _headline(version: VersionInfo) -> str:
    from atoll.model.evaluate import headline

    return headline(version.summary.get("task", "binary"), version.summary.get("metrics", {}))


def _show_version(version: VersionInfo) -> None:
    summary = version.summary
    facts = [
        ("status", version.status),
        ("aliases", ", ".join(version.aliases) or "-"),
        ("estimator", summary.get("estimator")),
        ("created", version.created_at),
        ("by", version.created_by),
        ("package sha256", version.manifest_digest),
        ("package size", human_bytes(version.size_bytes)),
        ("rows", summary.get("rows")),
        ("tags", version.tags or "-"),
    ]
    table(f"{version.name}@{version.version}", ["", ""], facts)
    table("metrics", ["metric", "value"], sorted(summary.get("metrics", {}).items()))


@models.command()
@click.argument("refs", nargs=-1, required=True)
@json_option
@pass_state
def compare(state: CliState, refs: tuple[str, ...], as_json: bool) -> None:
    """Metrics of several versions side by side, e.g. credit-risk@1 credit-risk@2."""
    from atoll import api

    versions = api.compare(refs, settings=state.settings())
    if as_json:
        emit_json(versions)
        return
    names = sorted({k for v in versions for k in v.summary.get("metrics", {})})
    rows = [
        _compare_row(name, [v.summary.get("metrics", {}).get(name) for v in versions])
        for name in names
    ]
    rows.append(("status", *(v.status for v in versions)))
    table("comparison (* best)", ["metric", *(f"{v.name}@{v.version}" for v in versions)], rows)


def _compare_row(metric: str, values: list[float | None]) -> tuple[str, ...]:
    """Values of one metric across versions, the best one starred."""
    from atoll.model.evaluate import higher_is_better

    known = [v for v in values if v is not None]
    best = (max if higher_is_better(metric) else min)(known) if len(known) > 1 else None
    cells = ["-" if v is None else f"{v:.4f}{' *' if v == best else ''}" for v in values]
    return (metric, *cells)


@models.command()
@click.argument("ref")
@click.option("--alias", default="production", show_default=True, help="Alias to move.")
@click.option("--force", is_flag=True, help="Promote even a version that failed its gates.")
@json_option
@pass_state
def promote(state: CliState, ref: str, alias: str, force: bool, as_json: bool) -> None:
    """Point ALIAS at the version REF names (e.g. credit-risk@3)."""
    from atoll import api

    version = api.promote(ref, alias, force=force, settings=state.settings())
    _moved(version, alias, as_json)


def _moved(version: VersionInfo, alias: str, as_json: bool) -> None:
    if as_json:
        emit_json(version)
    else:
        click.echo(f"{version.name}@{alias} -> version {version.version}")


@models.command()
@click.argument("name")
@click.option("--alias", default="production", show_default=True, help="Alias to move back.")
@json_option
@pass_state
def rollback(state: CliState, name: str, alias: str, as_json: bool) -> None:
    """Move ALIAS of model NAME back to where it pointed before its last move."""
    from atoll import api

    _moved(api.rollback(name, alias, settings=state.settings()), alias, as_json)


@models.command()
@click.argument("ref")
@click.argument("pairs", nargs=-1)
@click.option("--remove", "remove", multiple=True, metavar="KEY", help="Remove this tag.")
@json_option
@pass_state
def tag(
    state: CliState, ref: str, pairs: tuple[str, ...], remove: tuple[str, ...], as_json: bool
) -> None:
    """Set tags KEY=VALUE on the version REF names (or --remove KEY)."""
    from atoll import api

    if not pairs and not remove:
        raise click.UsageError("give KEY=VALUE pairs to set, or --remove KEY")
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="PAIRS")
        tags[key] = value
    version = api.tag(ref, tags, remove=remove, settings=state.settings())
    if as_json:
        emit_json(version)
    else:
        click.echo(f"{version.name}@{version.version} tags: {version.tags}")


@models.command()
@click.argument("name", required=False)
@json_option
@pass_state
def history(state: CliState, name: str | None, as_json: bool) -> None:
    """The audit log: who registered, promoted, rolled back or tagged what, when."""
    from atoll import api

    entries = api.history(name, settings=state.settings())
    if as_json:
        emit_json(entries)
        return
    table(
        "audit log",
        ["at", "actor", "action", "model", "detail"],
        [(e.at, e.actor, e.action, e.model, e.detail) for e in entries],
    )
