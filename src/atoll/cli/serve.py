"""``atoll serve`` (the prediction API) and ``atoll keys`` (who may call it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from atoll.cli._render import duration, emit_json, json_option, table
from atoll.cli.main import CliState, pass_state

if TYPE_CHECKING:
    from atoll.store.keys import ApiKey

SCOPES = ("predict", "feedback", "read", "admin")


@click.command()
@click.option(
    "--model",
    "-m",
    "refs",
    multiple=True,
    metavar="REF",
    help="A model to serve (name@alias or name@3); repeat for several. "
    "Default: every model with a production alias.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes sharing the port (numeric threads are limited to one per worker).",
)
@click.option(
    "--no-auth",
    is_flag=True,
    help="Accept requests without an API key (refused on a non-loopback --host).",
)
@pass_state
def serve(
    state: CliState, refs: tuple[str, ...], host: str, port: int, workers: int, no_auth: bool
) -> None:
    """Serve models over HTTP: /v1 (native), /v2 (KServe V2), /invocations (MLflow), /metrics.

    Every request needs an API key (create one with `atoll keys create`)
    unless --no-auth. Stop with Ctrl-C or SIGTERM: in-flight requests finish
    and the prediction log is flushed first.
    """
    from atoll.app import ServeRequest, check_request, serve

    request = ServeRequest(
        str(state.settings().project_dir), refs, host, port, workers, False if no_auth else None
    )
    names = check_request(request)
    click.echo(f"serving {', '.join(names)} on http://{_url_host(host)}:{port}", err=True)
    click.echo(f"  docs: http://{_url_host(host)}:{port}/docs", err=True)
    raise SystemExit(serve(request))


@click.group()
def keys() -> None:
    """API keys for the server: create (shown once), list, revoke."""


@keys.command("create")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(SCOPES),
    help="What the key may do; repeat for several (admin implies all).",
)
@click.option("--model", "models", multiple=True, help="Limit the key to these models.")
@click.option("--expires", default=None, metavar="DURATION", help="e.g. 30d, 12h, 90m.")
@click.option("--description", default="", help="A note for whoever lists the keys.")
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0),
    default=None,
    help="Requests per second for this key (0 = unlimited; default: the server's).",
)
@json_option
@pass_state
def create(
    state: CliState,
    scopes: tuple[str, ...],
    models: tuple[str, ...],
    expires: str | None,
    description: str,
    rate_limit: float | None,
    as_json: bool,
) -> None:
    """Create a key and print it once: only a salted hash is stored."""
    from atoll import api

    key, plaintext = api.create_key(
        scopes,
        models,
        expires_in=duration(expires),
        description=description,
        rate_per_s=rate_limit,
        settings=state.settings(),
    )
    if as_json:
        emit_json({"key": plaintext, **_key_view(key)})
        return
    click.echo(plaintext)
    click.echo(
        f"key {key.key_id}: scopes {', '.join(key.scopes)}"
        f"{'; models ' + ', '.join(key.models) if key.models else ''}"
        f"{'; expires ' + key.expires_at.isoformat() if key.expires_at else ''}"
        " — copy it now, it is not shown again",
        err=True,
    )


@keys.command("list")
@click.option("--active", is_flag=True, help="Hide revoked keys.")
@json_option
@pass_state
def list_(state: CliState, active: bool, as_json: bool) -> None:
    """Every key: id, scopes, models, expiry and revocation (never the key itself)."""
    from atoll import api

    found = api.list_keys(include_revoked=not active, settings=state.settings())
    if as_json:
        emit_json([_key_view(key) for key in found])
        return
    rows = [
        (
            k.key_id,
            ", ".join(k.scopes),
            ", ".join(k.models) or "all",
            k.description,
            k.created_at,
            k.expires_at,
            k.revoked_at,
        )
        for k in found
    ]
    headers = ("id", "scopes", "models", "description", "created", "expires", "revoked")
    table("API keys", headers, rows)


@keys.command("revoke")
@click.argument("key_id")
@json_option
@pass_state
def revoke(state: CliState, key_id: str, as_json: bool) -> None:
    """Revoke a key: servers refuse it within two seconds."""
    from atoll import api

    key = api.revoke_key(key_id, settings=state.settings())
    if as_json:
        emit_json(_key_view(key))
        return
    click.echo(f"revoked key {key.key_id}")


def _key_view(key: ApiKey) -> dict[str, object]:
    return {
        "key_id": key.key_id,
        "scopes": list(key.scopes),
        "models": list(key.models),
        "description": key.description,
        "rate_per_s": key.rate_per_s,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
    }


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


COMMANDS = (serve, keys)
