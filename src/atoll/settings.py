"""Runtime settings: the only place that reads ``ATOLL_*`` environment variables.

Settings are built once at the edge (CLI, API entry points) and passed down;
nothing below reads the environment.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from atoll._sizes import parse_size
from atoll.errors import AtollError

STATE_DIR = ".atoll"
"""Where a project keeps its embedded database and artifacts."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Where the store lives.

    Attributes:
        project_dir: the directory holding ``atoll.yaml`` and ``.atoll/``.
        db_url: SQLAlchemy URL of the store; defaults to a SQLite file in ``.atoll/``.
        artifact_root: directory of the content-addressed artifact store.
        actor: who is acting, recorded in the audit log.
        allow_imports: module prefixes trusted beyond the built-ins.
        store_max_bytes: quota of the artifact store (``ATOLL_STORE_MAX_BYTES``,
            else the spec's ``store.max_bytes``); None means no quota.
        signing_key: the HMAC key of ``ATOLL_SIGNING_KEY``: packages are signed
            with it, and only packages signed with it load. Never shown in a repr.
    """

    project_dir: Path
    db_url: str
    artifact_root: Path
    actor: str
    allow_imports: tuple[str, ...] = ()
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    store_max_bytes: int | None = None
    signing_key: bytes | None = field(default=None, repr=False)

    def variable(self, name: str) -> str | None:
        """An environment variable named by the spec (e.g. ``data.sql.url_env``)."""
        return self.environ.get(name)

    @classmethod
    def from_env(
        cls,
        project_dir: Path | None = None,
        environ: Mapping[str, str] | None = None,
        db_url: str | None = None,
        spec_db_url: str | None = None,
        spec_allow_imports: Sequence[str] = (),
        spec_max_bytes: int | None = None,
    ) -> Settings:
        """Build settings, each value from the first that gives it.

        The order: an explicit ``db_url``, the ``ATOLL_*`` variables, the
        project spec's ``store.url`` (``spec_db_url``) and ``store.max_bytes``
        (``spec_max_bytes``), the defaults. Trusted import prefixes add up: the
        spec's ``allow_imports`` and the comma-separated ``ATOLL_ALLOW_IMPORTS``.

        Raises:
            AtollError: ``ATOLL_STORE_MAX_BYTES`` is not a size, or
                ``ATOLL_SIGNING_KEY`` is shorter than 16 bytes.
        """
        env = os.environ if environ is None else environ
        root = Path(project_dir or env.get("ATOLL_PROJECT_DIR") or Path.cwd()).resolve()
        state = root / STATE_DIR
        url = db_url or env.get("ATOLL_DB_URL") or spec_db_url or f"sqlite:///{state / 'atoll.db'}"
        artifacts = Path(env.get("ATOLL_ARTIFACT_ROOT") or state / "artifacts")
        actor = env.get("ATOLL_ACTOR") or env.get("USER") or _login_name()
        extra = [p.strip() for p in env.get("ATOLL_ALLOW_IMPORTS", "").split(",") if p.strip()]
        return cls(
            project_dir=root,
            db_url=url,
            artifact_root=artifacts,
            actor=actor,
            allow_imports=(*spec_allow_imports, *extra),
            environ=dict(env),
            store_max_bytes=_max_bytes(env.get("ATOLL_STORE_MAX_BYTES"), spec_max_bytes),
            signing_key=_signing_key(env.get("ATOLL_SIGNING_KEY")),
        )


MIN_SIGNING_KEY = 16
"""Bytes: a shorter HMAC key is guessable; ``secrets.token_hex(32)`` gives a good one."""


def _max_bytes(env_value: str | None, spec_value: int | None) -> int | None:
    if not env_value:
        return spec_value
    try:
        return parse_size(env_value)
    except ValueError as exc:
        raise AtollError(f"ATOLL_STORE_MAX_BYTES: {exc}") from None


def _signing_key(value: str | None) -> bytes | None:
    """The key's bytes; its value never enters a message."""
    if not value:
        return None
    key = value.encode()
    if len(key) < MIN_SIGNING_KEY:
        raise AtollError(
            f"ATOLL_SIGNING_KEY is too short: use at least {MIN_SIGNING_KEY} bytes, e.g. "
            "the output of: python -c 'import secrets; print(secrets.token_hex(32))'"
        )
    return key


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
