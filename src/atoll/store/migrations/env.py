"""Alembic environment: runs the migrations on the connection ``migrate()`` hands over.

There is no alembic.ini and no URL here: :func:`atoll.store.db.migrate` opens
the transaction (and takes the migration lock), then passes its connection in
``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from atoll.store.db import VERSION_TABLE
from atoll.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run atoll migrations through atoll.store.db.migrate(engine)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite can only ALTER a table by copying it
)
with context.begin_transaction():
    context.run_migrations()
