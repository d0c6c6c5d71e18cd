"""``atoll gc``: retire old versions and free the artifact store of what nothing references."""

from __future__ import annotations

import click

from atoll._sizes import human_bytes
from atoll.cli._render import emit_json, json_option
from atoll.cli.main import CliState, pass_state

MIN_GRACE_S = 60.0
"""The shortest ``--grace`` the CLI takes: a registration stores its blobs before it
commits its version, and a gc that does not wait for it removes them."""


def _check_grace(_ctx: click.Context, _param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not value >= MIN_GRACE_S:  # NaN too
        raise click.BadParameter(
            f"{value:g} s is too short: give at least {MIN_GRACE_S:g} s. A registration stores "
            "its files before it records its version, so blobs younger than that may belong to "
            "one still in progress; removing them would leave its version without files."
        )
    return value


@click.command()
@click.option(
    "--keep-last",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Keep the newest N versions of each model (and every version an alias names); "
    "delete the files of older ones. Without it, no version is deleted.",
)
@click.option("--dry-run", is_flag=True, help="Change nothing; show what would be removed.")
@click.option(
    "--grace",
    type=float,
    default=None,
    callback=_check_grace,
    metavar="SECONDS",
    help="Leave blobs written in the last SECONDS (default 3600, at least 60): they may "
    "belong to a registration still in progress.",
)
@json_option
@pass_state
def gc(
    state: CliState, keep_last: int | None, dry_run: bool, grace: float | None, as_json: bool
) -> None:
    """Remove artifacts no version or alias references (never what an alias points to)."""
    from atoll import api

    report = api.gc(keep_last=keep_last, dry_run=dry_run, grace_s=grace, settings=state.settings())
    if as_json:
        emit_json(report)
        return
    verb = "would delete" if dry_run else "deleted"
    versions = ", ".join(report.deleted_versions) or "none"
    click.echo(f"{verb} versions: {versions}")
    removed = "would remove" if dry_run else "removed"
    click.echo(
        f"{removed} {report.blobs_removed} blobs ({human_bytes(report.bytes_freed)}), "
        f"{report.cache_copies_removed} cached copies, "
        f"{report.staging_files_removed} stale temp files"
    )


COMMANDS = (gc,)
