"""Alembic migrations of the store; run them with :func:`atoll.store.db.migrate`."""
