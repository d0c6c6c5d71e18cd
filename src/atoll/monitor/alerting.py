"""``atoll monitor check``: every alert rule judged on a report, notified, and recorded.

For each rule: decide (:mod:`atoll.monitor.alerts`), claim the change in the
store with a ``pending`` event so a concurrent check cannot send it too, send
it (a log line on the ``atoll.monitor.alerts`` logger always, plus the rule's
webhooks), then record how delivery went. Webhook failures are recorded,
never raised.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from atoll.errors import SpecError
from atoll.monitor.alerts import (
    CLEAR,
    EVENT_OF,
    NOTHING,
    RESOLVE,
    SENDS,
    SUPPRESS,
    TAKEN,
    Decision,
    after,
    claimed,
    decide,
    in_flight,
    payload,
)
from atoll.monitor.webhooks import Delivery, Sender, Target
from atoll.spec_monitor import web_url_problem
from atoll.store.alerts import AlertEvent, AlertState, claim, load_states, settle

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from atoll.monitor.report import Report
    from atoll.spec_monitor import AlertRule

log = logging.getLogger("atoll.monitor.alerts")

SETTLE_MARGIN = timedelta(seconds=60)
"""Added to a rule's delivery deadline before a claim is taken as abandoned: time for the
store writes and the log line around the HTTP requests."""


@dataclass(frozen=True)
class AlertOutcome:
    """What one rule did in one check.

    Attributes:
        rule: the rule's name.
        check: the check it watches.
        status: that check's status in the report.
        action: ``fire``, ``repeat``, ``suppress``, ``resolve``, ``clear``, ``none`` or ``taken``.
        reason: why, in words.
        firing: whether the rule is firing after this check.
        event_id: the stored event's id (``None`` when nothing was recorded).
        deliveries: one per webhook the rule sent to.
    """

    rule: str
    check: str
    status: str
    action: str
    reason: str
    firing: bool
    event_id: str | None = None
    deliveries: tuple[Delivery, ...] = ()

    @property
    def delivery(self) -> str:
        """``delivered``, ``failed`` or ``none`` (nothing was sent)."""
        if self.event_id is None or self.action not in SENDS:
            return "none"
        return "delivered" if all(d.ok for d in self.deliveries) else "failed"


@dataclass(frozen=True)
class CheckOutcome:
    """A report, the reference it was checked as, and what each alert rule did with it."""

    report: Report
    ref: str
    alerts: tuple[AlertOutcome, ...] = field(default=())

    @property
    def firing(self) -> list[str]:
        """The rules firing after this check (including those held back by their cooldown)."""
        return [alert.rule for alert in self.alerts if alert.firing]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: the report, then each rule's outcome."""
        alerts = [{**asdict(a), "delivery": a.delivery} for a in self.alerts]
        return {
            "ref": self.ref,
            "report": self.report.to_dict(),
            "firing": self.firing,
            "alerts": alerts,
        }


def webhook_targets(
    rules: Sequence[AlertRule], variable: Callable[[str], str | None]
) -> dict[str, list[Target]]:
    """Each rule's webhooks with their URLs and secrets read, before anything is sent.

    Raises:
        SpecError: a ``secret_env`` or ``url_env`` names a variable that is not
            set (or is empty), or ``url_env``'s value is no usable URL; the
            message names the field and the variable, never a value.
    """
    targets: dict[str, list[Target]] = {}
    problems: list[tuple[str, int | None, str]] = []
    for i, rule in enumerate(rules):
        targets[rule.name] = []
        for j, hook in enumerate(rule.webhooks):
            where = f"monitor.alerts[{i}].webhooks[{j}]"
            url, url_problem = _url(hook.url, hook.url_env, variable)
            secret = variable(hook.secret_env)
            if url_problem is not None:
                problems.append((f"{where}.url_env", None, url_problem))
            if not secret:
                unset = f"environment variable {hook.secret_env} is not set"
                problems.append((f"{where}.secret_env", None, unset))
            if url is not None and secret:
                target = Target(url, secret.encode(), hook.timeout_s, hook.retries)
                targets[rule.name].append(target)
    if problems:
        message = "alert webhooks need their URLs and secrets: nothing was sent"
        raise SpecError(message, problems=problems)
    return targets


def _url(
    url: str | None, url_env: str | None, variable: Callable[[str], str | None]
) -> tuple[str | None, str | None]:
    """The webhook's URL, or why the variable holding it gives none (never quoting it)."""
    if url is not None or url_env is None:
        return url, None
    value = (variable(url_env) or "").strip()
    if not value:
        return None, f"environment variable {url_env} is not set"
    problem = web_url_problem(value)
    if problem is not None:
        return None, f"environment variable {url_env} holds no usable webhook URL: {problem}"
    return value, None


def run_check(
    engine: Engine,
    report: Report,
    ref: str,
    rules: Sequence[AlertRule],
    targets: Mapping[str, Sequence[Target]],
    sender: Sender | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> CheckOutcome:
    """Judge every rule on ``report``, notify where it says so, and store the events.

    ``ref`` is the model reference the check was given (``name@alias`` or
    ``name@3``, a bare name written ``name@production``): rule state is kept
    per reference. ``clock`` gives the time of each rule's decision, read
    afresh per rule: a rule whose webhooks are slow must not leave the next
    one judging by a stale time.
    """
    sender = sender or Sender()
    states = load_states(engine, report.model, ref)
    outcomes = []
    for rule in rules:
        hooks = targets.get(rule.name, ())
        state = states.get(rule.name, AlertState())
        outcomes.append(_one(engine, report, ref, rule, state, hooks, sender, clock()))
    return CheckOutcome(report, ref, tuple(outcomes))


def _one(
    engine: Engine,
    report: Report,
    ref: str,
    rule: AlertRule,
    state: AlertState,
    hooks: Sequence[Target],
    sender: Sender,
    now: datetime,
) -> AlertOutcome:
    deadline = timedelta(seconds=sum(sender.deadline_s(t) for t in hooks)) + SETTLE_MARGIN
    decision = decide(rule, report, state, now)
    if in_flight(state, now, deadline):
        busy = "another check claimed this rule's notification and is sending it"
        return AlertOutcome(rule.name, rule.check, decision.status, TAKEN, busy, state.firing)
    if decision.action == NOTHING:
        return _outcome(decision, state.firing)
    event_id = uuid.uuid4().hex
    sends = decision.action in SENDS
    event = _event(report, ref, decision, event_id, now, "pending" if sends else "none")
    hoped = claimed(state, decision, now, event_id)
    stored = claim(engine, state, hoped, event)
    if stored is None:  # the other check saw the same report: it leaves the rule as hoped
        taken = f"{decision.reason}; another check claimed it first"
        firing = after(hoped, decision, now, delivered=True).firing
        return AlertOutcome(rule.name, rule.check, decision.status, TAKEN, taken, firing)
    if not sends:
        _log(event, decision, ())
        return _outcome(decision, stored.firing, event_id)
    body = json.dumps(payload(decision, report, ref, event_id, now), allow_nan=False).encode()
    deliveries = tuple(sender.send(target, body, event_id) for target in hooks)
    final = after(stored, decision, now, delivered=all(d.ok for d in deliveries))
    settled = _delivered(event, deliveries)
    settle(engine, stored, final, settled)
    _log(settled, decision, deliveries)
    return _outcome(decision, final.firing, event_id, deliveries)


def _outcome(
    decision: Decision,
    firing: bool,
    event_id: str | None = None,
    deliveries: tuple[Delivery, ...] = (),
) -> AlertOutcome:
    rule = decision.rule
    return AlertOutcome(
        rule.name,
        rule.check,
        decision.status,
        decision.action,
        decision.reason,
        firing,
        event_id,
        deliveries,
    )


def _event(
    report: Report, ref: str, decision: Decision, event_id: str, now: datetime, delivery: str
) -> AlertEvent:
    return AlertEvent(
        event_id=event_id,
        model=report.model,
        ref=ref,
        version=report.version,
        rule=decision.rule.name,
        check=decision.rule.check,
        event=EVENT_OF[decision.action],
        status=decision.status,
        window_start=report.window_start,
        window_end=report.window_end,
        delivery=delivery,
        attempts=0,
        error=None,
        created_at=now,
    )


def _delivered(event: AlertEvent, deliveries: tuple[Delivery, ...]) -> AlertEvent:
    """The claimed event with how its delivery went."""
    failed = [d for d in deliveries if not d.ok]
    return replace(
        event,
        delivery="failed" if failed else "delivered",
        attempts=sum(d.attempts for d in deliveries),
        error=f"{failed[-1].url}: {failed[-1].error}" if failed else None,
    )


def _log(event: AlertEvent, decision: Decision, deliveries: tuple[Delivery, ...]) -> None:
    """One JSON line per event; webhooks shown by host and digest, never a secret."""
    failed = any(not d.ok for d in deliveries)
    loud = decision.action not in (SUPPRESS, RESOLVE, CLEAR) or failed
    line = {
        "event": event.event,
        "alert": event.rule,
        "model": event.model,
        "ref": event.ref,
        "version": event.version,
        "check": event.check,
        "status": event.status,
        "level": decision.rule.level,
        "reason": decision.reason,
        "window_start": event.window_start.isoformat() if event.window_start else None,
        "window_end": event.window_end.isoformat() if event.window_end else None,
        "event_id": event.event_id,
        "delivery": event.delivery,
        "deliveries": [asdict(d) for d in deliveries],
    }
    log.log(logging.WARNING if loud else logging.INFO, json.dumps(line))
