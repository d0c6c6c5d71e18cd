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
    """

    project_dir: Path
    db_url: str
    artifact_root: Path
    actor: str
    allow_imports: tuple[str, ...] = ()
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

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
    ) -> Settings:
        """Build settings, each value from the first that gives it.

        The order: an explicit ``db_url``, the ``ATOLL_*`` variables, the
        project spec's ``store.url`` (``spec_db_url``), the defaults. Trusted
        import prefixes add up: the spec's ``allow_imports`` and the
        comma-separated ``ATOLL_ALLOW_IMPORTS``.
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
        )


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
