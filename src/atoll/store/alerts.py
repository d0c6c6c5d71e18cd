"""Alert rules' state per model reference, and the history of alert events.

A rule's state is kept per model, *reference* (``credit-risk@production``,
``credit-risk@3``: what ``monitor check`` was given, a bare name meaning its
``production`` alias) and rule name, so checks of two aliases never flip
each other's state.

Two ``atoll monitor check`` runs at once must not both notify. A run first
*claims* the change it means to make (:func:`claim`): an insert of the rule's
first state, or an update conditioned on the revision it read. On PostgreSQL
the second updater waits on the row lock and then finds the revision moved; on
SQLite writers queue on ``BEGIN IMMEDIATE``; a second insert hits the primary
key. The claim stores, in the same transaction, the event with delivery
``pending``, and marks the state as having that notification in flight. Only
the run whose claim changed a row sends, and it sends outside any transaction,
so no lock is held during HTTP; :func:`settle` then writes how delivery went
and where it left the rule. A check killed in between leaves the event
``pending`` and the state marked: once the in-flight mark is older than the
delivery deadline, the next check takes it as undelivered, marks the event
``failed`` and sends again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from atoll.store._history import newest
from atoll.store.db import run_transaction
from atoll.store.tables import alert_events, alert_states, utcnow
from atoll.types import check_model_name

EVENTS = ("fired", "repeated", "suppressed", "resolved", "cleared")
"""What an event records: a first notification, a re-send after the cooldown, a
notification held back by the cooldown, a resolution, and a rule that stopped
firing before its alert was ever delivered (so no resolution is sent)."""

DELIVERIES = ("pending", "delivered", "failed", "none")
"""``pending``: claimed and being sent; ``none``: nothing was to be sent."""

ABANDONED = "the check that claimed it stopped before it recorded the delivery"
"""The error of a pending event that a later check found past its delivery deadline."""

_MAX_ERROR = 2_000
"""Longer delivery errors are cut: the event names the failure, the log keeps the rest."""


@dataclass(frozen=True)
class AlertState:
    """Where one rule of one model reference stands.

    Attributes:
        firing: the check was at or past the rule's level when last judged.
        since: when it started firing (``None`` while not firing).
        notified_at: when the last notification (an alert or a resolution)
            reached every receiver (``None``: never).
        pending_event: the event whose notification is being sent (``None``: none is).
        pending_at: when that notification was claimed.
        revision: bumped by every change; 0 for a rule never stored.
    """

    firing: bool = False
    since: datetime | None = None
    notified_at: datetime | None = None
    pending_event: str | None = None
    pending_at: datetime | None = None
    revision: int = 0


@dataclass(frozen=True)
class AlertEvent:
    """One stored alert event.

    Attributes:
        event_id: uuid4 hex, also in the webhook body (receivers drop duplicates by it).
        ref: the model reference the check was given (``name@alias`` or ``name@3``).
        event: one of :data:`EVENTS`.
        status: the check's status that caused it.
        delivery: one of :data:`DELIVERIES`.
        attempts: HTTP requests made, over every webhook of the rule.
        error: the last delivery error, if any delivery failed.
    """

    event_id: str
    model: str
    ref: str
    version: int
    rule: str
    check: str
    event: str
    status: str
    window_start: datetime | None
    window_end: datetime | None
    delivery: str
    attempts: int
    error: str | None
    created_at: datetime


def load_states(engine: Engine, model: str, ref: str) -> dict[str, AlertState]:
    """Every stored rule state of one model reference, by rule name."""
    query = sa.select(alert_states).where(
        (alert_states.c.model == check_model_name(model)) & (alert_states.c.ref == ref)
    )

    def work(conn: Connection) -> dict[str, AlertState]:
        return {row.rule: _state(row._mapping) for row in conn.execute(query)}

    return run_transaction(engine, work, read_only=True)


def claim(
    engine: Engine, read: AlertState, new: AlertState, event: AlertEvent
) -> AlertState | None:
    """Move the event's rule from ``read`` to ``new`` and store ``event``, unless moved first.

    Another run may have moved the rule since it was read. A notification
    ``read`` had in flight that ``new`` does not carry on was abandoned: its
    event is marked ``failed`` (:data:`ABANDONED`).

    Returns:
        ``new`` with its stored revision, or ``None`` when the stored state is
        no longer ``read`` (another check claimed it: this one must not send).
    """
    claimed = replace(new, revision=read.revision + 1)
    values = _values(claimed)
    row = _event_row(event)
    abandoned = read.pending_event if read.pending_event != new.pending_event else None

    def work(conn: Connection) -> bool:
        if read.revision == 0:
            conn.execute(alert_states.insert().values(**_key(event), **values))
        elif not _update(conn, event, read.revision, values):
            return False
        conn.execute(alert_events.insert().values(**row))
        if abandoned is not None:
            _abandon(conn, abandoned)
        return True

    try:
        return claimed if run_transaction(engine, work) else None
    except sa.exc.IntegrityError:  # another run stored the rule's first state
        return None


def settle(
    engine: Engine,
    claimed: AlertState,
    final: AlertState,
    event: AlertEvent,
) -> None:
    """Record how the claimed event's delivery went, and where it left the rule.

    The event is updated whatever happened since (it says what was sent); the
    rule only if no other run moved it since the claim.
    """
    values = _values(replace(final, revision=claimed.revision + 1))
    error = event.error[:_MAX_ERROR] if event.error is not None else None
    outcome = {"delivery": event.delivery, "attempts": event.attempts, "error": error}

    def work(conn: Connection) -> None:
        where = alert_events.c.event_id == event.event_id
        conn.execute(alert_events.update().where(where).values(**outcome))
        _update(conn, event, claimed.revision, values)

    run_transaction(engine, work)


def list_events(
    engine: Engine,
    model: str,
    *,
    ref: str | None = None,
    rule: str | None = None,
    limit: int = 50,
) -> list[AlertEvent]:
    """A model's newest ``limit`` alert events (of one reference or rule, or all), newest first."""
    equal = {"ref": ref, "rule": rule}
    return [_event(row) for row in newest(engine, alert_events, model, limit=limit, equal=equal)]


def _abandon(conn: Connection, event_id: str) -> None:
    """Mark a notification that never settled as failed (unless it settled meanwhile)."""
    pending = (alert_events.c.event_id == event_id) & (alert_events.c.delivery == "pending")
    conn.execute(alert_events.update().where(pending).values(delivery="failed", error=ABANDONED))


def _key(event: AlertEvent) -> dict[str, str]:
    return {"model": event.model, "ref": event.ref, "rule": event.rule}


def _update(conn: Connection, event: AlertEvent, revision: int, values: dict[str, Any]) -> bool:
    """Write ``values`` to the event's rule only if its stored revision is still ``revision``."""
    where = sa.and_(
        *(alert_states.c[column] == value for column, value in _key(event).items()),
        alert_states.c.revision == revision,
    )
    return conn.execute(alert_states.update().where(where).values(**values)).rowcount == 1


def _values(state: AlertState) -> dict[str, Any]:
    return {
        "firing": state.firing,
        "since": state.since,
        "notified_at": state.notified_at,
        "pending_event": state.pending_event,
        "pending_at": state.pending_at,
        "revision": state.revision,
        "updated_at": utcnow(),
    }


def _state(row: Any) -> AlertState:
    return AlertState(
        firing=bool(row["firing"]),
        since=row["since"],
        notified_at=row["notified_at"],
        pending_event=row["pending_event"],
        pending_at=row["pending_at"],
        revision=int(row["revision"]),
    )


def _event_row(event: AlertEvent) -> dict[str, Any]:
    check_model_name(event.model)
    if event.event not in EVENTS:
        raise ValueError(f"unknown alert event {event.event!r}: use one of {list(EVENTS)}")
    if event.delivery not in DELIVERIES:
        raise ValueError(f"unknown delivery {event.delivery!r}: use one of {list(DELIVERIES)}")
    row = asdict(event)
    row["check_name"] = row.pop("check")
    row["error"] = event.error[:_MAX_ERROR] if event.error is not None else None
    return row


def _event(row: Any) -> AlertEvent:
    values = dict(row)
    del values["id"]
    values["check"] = values.pop("check_name")
    return AlertEvent(**values)
