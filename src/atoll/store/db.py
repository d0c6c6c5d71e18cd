"""The one database: engines from a URL, transactions that wait out locks, migrations.

SQLite is the embedded default and PostgreSQL the shared one; the same code runs
on both. Everything that touches the database goes through :func:`with_retry`, so
a locked or briefly unreachable database costs a short wait, and one that stays
so gives a :class:`~atoll.errors.StoreUnavailableError` naming the database (with
its password masked) instead of a driver stack trace.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

from atoll.errors import StoreUnavailableError

T = TypeVar("T")

VERSION_TABLE = "atoll_alembic_version"
"""Alembic's bookkeeping table; prefixed so atoll can share a database with other apps."""

_BEGIN_OPTION = "atoll_sqlite_begin"
_BEGIN_MODES = frozenset({"IMMEDIATE", "DEFERRED"})
_MIGRATION_LOCK_KEY = 0x61746F6C6C  # "atoll": one advisory lock id for all migrators


@dataclass(frozen=True, slots=True)
class Retry:
    """How long to wait out a locked or unreachable database before giving up.

    Attributes:
        budget_s: total time spent retrying; then the error is raised.
        first_delay_s: the first pause; each later pause doubles, up to ``max_delay_s``.
        max_delay_s: the longest single pause.
    """

    budget_s: float = 10.0
    first_delay_s: float = 0.05
    max_delay_s: float = 1.0


DEFAULT_RETRY = Retry()


def create_engine_for(
    url: str, *, busy_timeout_ms: int = 5000, connect_timeout_s: int = 10
) -> Engine:
    """Build the engine for a SQLite or PostgreSQL URL, tuned for many small writers.

    Args:
        url: ``sqlite:///path.db`` or ``postgresql[+psycopg]://...``.
        busy_timeout_ms: how long one SQLite statement waits for a lock before it
            reports ``database is locked`` (and :func:`with_retry` takes over).
        connect_timeout_s: how long one PostgreSQL connection attempt may take.

    Raises:
        StoreUnavailableError: the URL is not a SQLite or PostgreSQL URL.
    """
    parsed = _parse_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, busy_timeout_ms)
    if backend == "postgresql":
        return sa.create_engine(
            parsed,
            pool_pre_ping=True,
            connect_args={"connect_timeout": max(1, connect_timeout_s)},
        )
    raise StoreUnavailableError(
        f"unsupported database {masked_url(parsed)}: use sqlite:/// or postgresql://",
        url=masked_url(parsed),
    )


def masked_url(url: URL | Engine) -> str:
    """The URL as text with any password replaced by ``***``: safe for messages and logs."""
    parsed = url.url if isinstance(url, Engine) else url
    return parsed.render_as_string(hide_password=True)


@contextmanager
def transaction(engine: Engine, *, read_only: bool = False) -> Iterator[Connection]:
    """One transaction on one connection, committed on success, rolled back on error.

    On SQLite a writing transaction starts with ``BEGIN IMMEDIATE``, taking the
    write lock up front, so two writers queue on the busy timeout instead of
    deadlocking halfway through; ``read_only`` uses a plain deferred ``BEGIN``.
    """
    with engine.connect() as conn:
        if read_only:
            conn.execution_options(**{_BEGIN_OPTION: "DEFERRED"})
        with conn.begin():
            yield conn


def run_transaction(
    engine: Engine,
    work: Callable[[Connection], T],
    *,
    read_only: bool = False,
    retry: Retry = DEFAULT_RETRY,
) -> T:
    """Run ``work`` in one transaction, rerunning the whole of it on a transient failure."""

    def once() -> T:
        with transaction(engine, read_only=read_only) as conn:
            return work(conn)

    return with_retry(once, engine, retry)


def with_retry(fn: Callable[[], T], engine: Engine, retry: Retry = DEFAULT_RETRY) -> T:
    """Call ``fn``, retrying lock and connection errors with exponential backoff.

    ``fn`` must be safe to rerun: a whole transaction, not a part of one.

    Raises:
        StoreUnavailableError: the database stayed locked or unreachable for
            ``retry.budget_s`` seconds, or failed in a way retrying cannot fix.
    """
    started = time.monotonic()
    delay = retry.first_delay_s
    attempts = 0
    while True:
        attempts += 1
        try:
            return fn()
        except (exc.DBAPIError, exc.TimeoutError) as error:
            if not _is_store_failure(error):
                raise
            elapsed = time.monotonic() - started
            if not _is_transient(error, engine) or elapsed + delay > retry.budget_s:
                raise _unavailable(error, engine, elapsed, attempts) from error
        time.sleep(delay)
        delay = min(delay * 2, retry.max_delay_s)


def migrate(engine: Engine, retry: Retry = DEFAULT_RETRY) -> None:
    """Upgrade the schema to the newest migration; cheap when it is already there.

    Two processes may call this at once on a fresh database: a PostgreSQL
    advisory lock or, for SQLite, an exclusive ``flock`` on ``<dbfile>.lock``
    lets one migrate while the other waits and then finds nothing to do.
    """
    from alembic.script import ScriptDirectory

    config = _alembic_config()
    heads = set(ScriptDirectory.from_config(config).get_heads())
    if with_retry(lambda: _current_heads(engine), engine, retry) == heads:
        return
    with _sqlite_file_lock(engine):
        with_retry(lambda: _upgrade(engine, config), engine, retry)


_ALEMBIC_IN_USE = threading.Lock()
"""Alembic runs env.py through a module-global ``context``: one migration per process at once."""


def _upgrade(engine: Engine, config: Any) -> None:
    from alembic import command

    with _ALEMBIC_IN_USE, transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
            )
        config.attributes["connection"] = conn
        try:
            command.upgrade(config, "head")
        finally:
            config.attributes.pop("connection", None)


def _current_heads(engine: Engine) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    with transaction(engine, read_only=True) as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return set(context.get_current_heads())


def _alembic_config() -> Any:
    from alembic.config import Config

    location = resources.files("atoll.store") / "migrations"
    config = Config()
    # configparser interpolates '%': escape it so any install path works.
    config.set_main_option("script_location", str(location).replace("%", "%%"))
    return config


def _parse_url(url: str) -> URL:
    try:
        parsed = sa.make_url(url)
    except exc.ArgumentError:
        # The text may hold a password: never echo it back.
        raise StoreUnavailableError(
            "not a valid database URL: expected sqlite:///path or postgresql://..."
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_engine(url: URL, busy_timeout_ms: int) -> Engine:
    path = _sqlite_path(url)
    if path is None:
        engine = sa.create_engine(url)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Opening a SQLite file costs little, and without a pool no connection
        # outlives its transaction (none is left for dispose() to close under
        # another thread, or for the garbage collector to roll back later).
        engine = sa.create_engine(url, poolclass=NullPool)

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the driver so the "begin" hook below decides it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if path is not None:
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


class HeldConnection:
    """One connection that one thread reuses for all its transactions, reopened after a failure.

    Transactions otherwise open a connection each (SQLite has no pool): opening one
    and running its PRAGMAs costs ~0.4 ms of CPU, and closing the last connection to
    a WAL database checkpoints it and deletes the WAL, so a one-row commit cost ~0.9 ms
    against ~0.08 ms on a held connection (measured here). A writer that commits
    hundreds of times a second (the prediction log with strict durability) holds one.
    A SQLite file that was moved, deleted or replaced since the connection opened is
    not written through it: the next transaction reconnects to whatever the path holds.
    Not thread-safe: the thread that runs the transactions owns it, and closes it.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None
        self._path = _sqlite_path(engine.url) if engine.dialect.name == "sqlite" else None
        self._file: tuple[int, int] | None = None

    def run(self, work: Callable[[Connection], T], retry: Retry = DEFAULT_RETRY) -> T:
        """:func:`run_transaction` on the held connection (a new one after any failure)."""

        def once() -> T:
            conn = self._connection()
            try:
                with conn.begin():
                    return work(conn)
            except BaseException:
                self.close()  # whatever broke, the next attempt starts on a fresh connection
                raise

        return with_retry(once, self.engine, retry)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(Exception):  # a connection that broke may fail to close too
                conn.close()

    def _connection(self) -> Connection:
        if self._path is not None:
            now = self._identity()
            if self._conn is not None and (now is None or now != self._file):
                self.close()
            if self._conn is None:  # read before connecting: a file replaced in between
                self._file = now  # fails the next check, and costs one more connection
        if self._conn is None:
            self._conn = self.engine.connect()
        return self._conn

    def _identity(self) -> tuple[int, int] | None:
        """The SQLite file now at the path (device, inode), or None when there is none."""
        assert self._path is not None
        try:
            stat = self._path.stat()
        except OSError:
            return None
        return stat.st_dev, stat.st_ino


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
    if mode not in _BEGIN_MODES:
        raise ValueError(f"unknown SQLite BEGIN mode {mode!r}")
    conn.exec_driver_sql(f"BEGIN {mode}")


def _sqlite_path(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _sqlite_file_lock(engine: Engine) -> Any:
    path = _sqlite_path(engine.url) if engine.dialect.name == "sqlite" else None
    if path is None or sys.platform == "win32":
        return nullcontext()
    return _flock(path.with_name(path.name + ".lock"))


@contextmanager
def _flock(path: Path) -> Iterator[None]:
    import fcntl  # POSIX only; _sqlite_file_lock skips Windows

    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _is_store_failure(error: Exception) -> bool:
    """Lock, connection and timeout errors; anything else is a bug to surface as is."""
    if isinstance(error, exc.TimeoutError | exc.OperationalError | exc.InterfaceError):
        return True
    return isinstance(error, exc.DBAPIError) and error.connection_invalidated


def _is_transient(error: Exception, engine: Engine) -> bool:
    if isinstance(error, exc.TimeoutError) or not isinstance(error, exc.OperationalError):
        return True
    if engine.dialect.name == "sqlite":
        text = str(error.orig).lower()
        return "locked" in text or "busy" in text
    # PostgreSQL: refused or dropped connections, serialization failures and
    # deadlocks pass; a wrong password, role or database name never will.
    text = str(error.orig).lower()
    return not any(marker in text for marker in _PERMANENT_POSTGRES_ERRORS)


_PERMANENT_POSTGRES_ERRORS = (
    "password authentication failed",
    "authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
)


def _unavailable(
    error: Exception, engine: Engine, elapsed: float, attempts: int
) -> StoreUnavailableError:
    where = masked_url(engine)
    orig = getattr(error, "orig", None) or error
    reason = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    password = engine.url.password
    if password:
        reason = reason.replace(str(password), "***")
    return StoreUnavailableError(
        f"the database {where} is unavailable after {attempts} attempt(s) "
        f"in {elapsed:.1f} s: {reason}",
        url=where,
    )
