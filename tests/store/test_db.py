from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from atoll.errors import StoreUnavailableError
from atoll.store.db import (
    VERSION_TABLE,
    HeldConnection,
    Retry,
    create_engine_for,
    migrate,
    run_transaction,
    transaction,
)
from atoll.store.registry import Registry
from atoll.store.tables import metadata
from tests.conftest import POSTGRES_ENV

TABLES = {
    "models",
    "versions",
    "aliases",
    "tags",
    "audit",
    "api_keys",
    "prediction_log",
    "feedback",
    "batch_jobs",
}
QUICK = Retry(budget_s=0.6, first_delay_s=0.02, max_delay_s=0.1)


@contextmanager
def engine_for(url: str) -> Iterator[sa.Engine]:
    engine = create_engine_for(url)
    try:
        yield engine
    finally:
        engine.dispose()


def test_sqlite_engine_creates_the_folder_and_sets_its_pragmas(sqlite_url: str) -> None:
    with engine_for(sqlite_url) as engine, engine.connect() as conn:
        assert Path(engine.url.database or "").parent.is_dir()
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000


def test_postgresql_urls_use_psycopg() -> None:
    engine = create_engine_for("postgresql://u:pw@127.0.0.1:1/db")
    try:
        assert engine.url.drivername == "postgresql+psycopg"
    finally:
        engine.dispose()


@pytest.mark.parametrize("url", ["mysql://u:hunter2@host/db", "not a url"])
def test_unsupported_or_malformed_urls_are_refused_without_echoing_passwords(url: str) -> None:
    with pytest.raises(StoreUnavailableError) as info:
        create_engine_for(url)
    assert "hunter2" not in str(info.value)


def test_migrate_creates_every_table_and_matches_tables_py(store_url: str) -> None:
    with engine_for(store_url) as engine:
        migrate(engine)
        names = set(sa.inspect(engine).get_table_names())
        assert TABLES | {VERSION_TABLE} <= names
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            diff = compare_metadata(context, metadata)
        assert diff == []


def test_migrate_is_idempotent(store_url: str) -> None:
    with engine_for(store_url) as engine:
        migrate(engine)
        migrate(engine)
        with engine.connect() as conn:
            heads = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
        assert [tuple(row) for row in heads] == [("0006",)]


def test_sqlite_foreign_keys_are_enforced(sqlite_url: str) -> None:
    with engine_for(sqlite_url) as engine:
        migrate(engine)
        with pytest.raises(sa.exc.IntegrityError), transaction(engine) as conn:
            conn.exec_driver_sql("INSERT INTO tags (version_id, key, value) VALUES (99, 'k', 'v')")


def test_read_transactions_do_not_take_the_write_lock(sqlite_url: str) -> None:
    with engine_for(sqlite_url) as engine:
        migrate(engine)
        with transaction(engine) as writer:
            writer.exec_driver_sql("SELECT 1")
            # A reader still gets in while a writer holds BEGIN IMMEDIATE (WAL).
            count = run_transaction(
                engine,
                lambda conn: conn.exec_driver_sql("SELECT count(*) FROM models").scalar(),
                read_only=True,
                retry=QUICK,
            )
        assert count == 0


def test_unreachable_postgres_is_store_unavailable_with_the_password_masked(
    tmp_path: Path,
) -> None:
    url = "postgresql://atoll:s3cret-pw@127.0.0.1:1/atoll"
    with pytest.raises(StoreUnavailableError) as info:
        Registry.open(url, tmp_path / "artifacts", retry=QUICK)
    message = str(info.value)
    assert "s3cret-pw" not in message
    assert "s3cret-pw" not in repr(info.value.context)
    assert "atoll:***@127.0.0.1:1/atoll" in message
    assert "Traceback" not in message


HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
conn.close()
"""


@contextmanager
def sqlite_locked(url: str, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another process holding BEGIN EXCLUSIVE on the database for ``seconds``."""
    path = sa.make_url(url).database or ""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, path, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout:
            holder.stdout.close()


def test_sqlite_held_locked_is_store_unavailable_after_the_retry_budget(
    sqlite_url: str, tmp_path: Path, make_package: Callable[..., Path]
) -> None:
    package = make_package()
    with Registry.open(sqlite_url, tmp_path / "artifacts", retry=QUICK) as registry:
        locked = pytest.raises(StoreUnavailableError, match="database is locked")
        with sqlite_locked(sqlite_url, seconds=60), locked as info:
            registry.register(package, "m")
        assert "atoll.db" in str(info.value)
        attempts = re.search(r"after (\d+) attempt", str(info.value))
        assert attempts is not None and int(attempts.group(1)) > 1  # it retried, then gave up
        assert registry.list_models() == []


def test_sqlite_lock_released_in_time_lets_the_write_through(
    sqlite_url: str, tmp_path: Path, make_package: Callable[..., Path]
) -> None:
    package = make_package()
    patient = Retry(budget_s=10.0, first_delay_s=0.05, max_delay_s=0.5)
    with Registry.open(sqlite_url, tmp_path / "artifacts", retry=patient) as registry:
        with sqlite_locked(sqlite_url, seconds=0.7):
            assert registry.register(package, "m").version == 1
        assert [v.version for v in registry.list_versions("m")] == [1]


def test_threads_migrating_different_databases_at_once(tmp_path: Path) -> None:
    """Alembic's env.py context is process-global: migrations must not interleave."""
    from concurrent.futures import ThreadPoolExecutor

    urls = [f"sqlite:///{tmp_path / f'db{i}.sqlite'}" for i in range(12)]

    def open_and_list(url: str) -> int:
        with Registry.open(url, tmp_path / "artifacts") as registry:
            return len(registry.list_models())

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(open_and_list, urls)) == [0] * len(urls)


def _note(text: str) -> Callable[[sa.Connection], object]:
    """A transaction that stores ``text`` and answers the DBAPI connection it ran on."""

    def work(conn: sa.Connection) -> object:
        conn.execute(sa.text("INSERT INTO notes (text) VALUES (:t)"), {"t": text})
        return conn.connection.dbapi_connection

    return work


def _notes(engine: sa.Engine) -> list[str]:
    with transaction(engine, read_only=True) as conn:
        return list(conn.execute(sa.text("SELECT text FROM notes ORDER BY text")).scalars())


@contextmanager
def held_on(url: str) -> Iterator[tuple[sa.Engine, HeldConnection]]:
    """A database with a ``notes`` table, and a held connection to it (closed afterwards)."""
    with engine_for(url) as engine:
        run_transaction(
            engine, lambda conn: conn.execute(sa.text("CREATE TABLE notes (text TEXT)"))
        )
        held = HeldConnection(engine)
        try:
            yield engine, held
        finally:
            held.close()


def test_held_connection_reuses_one_connection_and_commits_each_transaction(
    store_url: str,
) -> None:
    with held_on(store_url) as (engine, held):
        first, second = held.run(_note("a")), held.run(_note("b"))
        assert first is second  # one connection for both
        assert _notes(engine) == ["a", "b"]  # each committed: another connection sees it
        held.close()
    held.close()  # closing twice is harmless


def test_held_connection_starts_over_on_a_fresh_connection_after_a_failure(
    store_url: str,
) -> None:
    def fails(conn: sa.Connection) -> None:
        _note("lost")(conn)
        raise RuntimeError("the work failed halfway")

    with held_on(store_url) as (engine, held):
        held.run(_note("kept"))
        with pytest.raises(RuntimeError, match="halfway"):
            held.run(fails)
        held.run(_note("later"))
        assert _notes(engine) == ["kept", "later"]  # the failed one was rolled back


def test_held_connection_waits_out_another_process_holding_the_lock(sqlite_url: str) -> None:
    with held_on(sqlite_url) as (engine, held):
        held.run(_note("before"))
        patient = Retry(budget_s=10.0, first_delay_s=0.05, max_delay_s=0.5)
        with sqlite_locked(sqlite_url, seconds=0.7):
            held.run(_note("through"), patient)
        with sqlite_locked(sqlite_url, seconds=60), pytest.raises(StoreUnavailableError):
            held.run(_note("never"), QUICK)
        held.run(_note("after"))
        assert _notes(engine) == ["after", "before", "through"]


def test_held_connection_never_writes_to_a_sqlite_file_moved_away(sqlite_url: str) -> None:
    """A held connection would follow the file it opened; the path is what counts."""
    folder = Path(sa.make_url(sqlite_url).database or "").parent
    with held_on(sqlite_url) as (engine, held):
        held.run(_note("before"))
        away = folder.rename(folder.with_name("moved"))
        with pytest.raises(StoreUnavailableError, match="unable to open"):
            held.run(_note("lost"), QUICK)
        away.rename(folder)
        held.run(_note("after"))
        assert _notes(engine) == ["after", "before"]


@pytest.mark.postgres
def test_held_connection_reconnects_after_the_server_drops_it(postgres_url: str) -> None:
    with held_on(postgres_url) as (engine, held):
        first = held.run(_note("before"))
        with engine_for(os.environ[POSTGRES_ENV]) as admin, admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": engine.url.database},
            )
            conn.commit()
        assert held.run(_note("after"), QUICK) is not first
        assert _notes(engine) == ["after", "before"]


@pytest.mark.postgres
def test_a_database_that_does_not_exist_is_not_retried(tmp_path: Path, postgres_url: str) -> None:
    missing = sa.make_url(postgres_url).set(database="atoll_no_such_database")
    url = missing.render_as_string(hide_password=False)
    with pytest.raises(StoreUnavailableError, match=r"after 1 attempt\(s\).*does not exist"):
        Registry.open(url, tmp_path / "artifacts")
