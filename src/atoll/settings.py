"""Runtime settings: the only place that reads ``ATOLL_*`` environment variables.

Settings are built once at the edge (CLI, API entry points) and passed down;
nothing below reads the environment.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
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

    @classmethod
    def from_env(
        cls,
        project_dir: Path | None = None,
        environ: Mapping[str, str] | None = None,
        db_url: str | None = None,
        spec_db_url: str | None = None,
    ) -> Settings:
        """Build settings, each value from the first that gives it.

        The order: an explicit ``db_url``, the ``ATOLL_*`` variables, the
        project spec's ``store.url`` (``spec_db_url``), the defaults.
        """
        env = os.environ if environ is None else environ
        root = Path(project_dir or env.get("ATOLL_PROJECT_DIR") or Path.cwd()).resolve()
        state = root / STATE_DIR
        url = db_url or env.get("ATOLL_DB_URL") or spec_db_url or f"sqlite:///{state / 'atoll.db'}"
        artifacts = Path(env.get("ATOLL_ARTIFACT_ROOT") or state / "artifacts")
        actor = env.get("ATOLL_ACTOR") or env.get("USER") or _login_name()
        return cls(project_dir=root, db_url=url, artifact_root=artifacts, actor=actor)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
