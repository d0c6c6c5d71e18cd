"""Alert rules, decided: what a report means for each rule, given where the rule stood.

Pure functions of a report, a rule's stored state and the time: no I/O, so
every transition is tested without a database or a receiver.
:mod:`atoll.monitor.alerting` stores and sends what is decided here.

The cooldown damps notifications, not only repeats: no notification of a rule
goes out sooner than its cooldown after the last one delivered. A rule that
fires again soon after its resolution (a flapping check) is *held*: it is
firing, recorded as suppressed, and sends its alert once the cooldown has
passed, if it is still firing then. A rule whose alert was never delivered
(held, or every attempt failed) that falls back below its level is *cleared*
without a resolution: nobody was told it fired.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from atoll._durations import format_duration
from atoll.monitor.status import LEVELS, NO_DATA
from atoll.monitor.summary import headline
from atoll.store.alerts import AlertState

if TYPE_CHECKING:
    from atoll.monitor.report import Report
    from atoll.spec_monitor import AlertRule

FIRE = "fire"
"""At or past the rule's level, not yet notified, the cooldown passed: send the alert."""
REPEAT = "repeat"
"""Still firing and the cooldown has passed since the last notification: notify again."""
SUPPRESS = "suppress"
"""At or past the level within the cooldown of the last notification: record, do not notify."""
RESOLVE = "resolve"
"""Was firing and notified, now below the level: send a resolution."""
CLEAR = "clear"
"""Was firing but never notified, now below the level: record, send nothing."""
NOTHING = "none"
"""Not firing and still below the level, or no data: nothing to do."""
TAKEN = "taken"
"""Another check has claimed the rule's notification and is sending it."""

SENDS = (FIRE, REPEAT, RESOLVE)
"""The actions that notify."""

EVENT_OF = {
    FIRE: "fired",
    REPEAT: "repeated",
    SUPPRESS: "suppressed",
    RESOLVE: "resolved",
    CLEAR: "cleared",
}
"""The stored event each recorded action leaves."""


@dataclass(frozen=True)
class Decision:
    """What one rule does after one report.

    Attributes:
        rule: the rule judged.
        status: its check's status in the report.
        action: one of :data:`FIRE`, :data:`REPEAT`, :data:`SUPPRESS`,
            :data:`RESOLVE`, :data:`CLEAR`, :data:`NOTHING`.
        reason: why, in words.
    """

    rule: AlertRule
    status: str
    action: str
    reason: str


def in_flight(state: AlertState, now: datetime, deadline: timedelta) -> bool:
    """Whether another check is sending the rule's notification.

    A claim older than ``deadline`` (the rule's delivery deadline, with a
    margin) belongs to a check that stopped: its notification is taken as
    undelivered, and this check decides afresh.
    """
    return state.pending_at is not None and now - state.pending_at < deadline


def decide(rule: AlertRule, report: Report, state: AlertState, now: datetime) -> Decision:
    """Judge ``rule`` on ``report``, from the state the rule was in.

    ``no_data`` neither fires nor resolves: an empty window (a quiet night, or
    labels not in yet for ``performance``) says nothing about whether the
    problem is over. Resolving on it would send a false all-clear, and the next
    window with traffic would fire again, so a firing rule stays firing.
    """
    status = _status(report, rule.check)
    if status == NO_DATA:
        held = "still firing" if state.firing else "not firing"
        return Decision(rule, status, NOTHING, f"no data in the window: {held}")
    at_level = LEVELS.index(status) >= LEVELS.index(rule.level)
    found = f"{rule.check} is {status} (fires at {rule.level})"
    if at_level and not state.firing:
        return _notify(rule, status, state, now, FIRE, found)
    if at_level and not notified(state):
        return _notify(rule, status, state, now, FIRE, f"still {status}; not delivered yet")
    if at_level:
        return _notify(rule, status, state, now, REPEAT, f"still {status}")
    if not state.firing:
        return Decision(rule, status, NOTHING, found)
    if notified(state):
        return Decision(rule, status, RESOLVE, f"{rule.check} is back to {status}")
    never = "its alert was never delivered, so no resolution is sent"
    return Decision(rule, status, CLEAR, f"{rule.check} is back to {status}; {never}")


def notified(state: AlertState) -> bool:
    """Whether a notification of the rule's current firing reached every receiver."""
    return (
        state.firing
        and state.since is not None
        and state.notified_at is not None
        and state.notified_at >= state.since
    )


def _notify(
    rule: AlertRule, status: str, state: AlertState, now: datetime, action: str, what: str
) -> Decision:
    """``action`` unless the last notification is within the cooldown (then held)."""
    cooldown = format_duration(rule.cooldown)
    if state.notified_at is None:
        return Decision(rule, status, action, what)
    if now - state.notified_at >= rule.cooldown:
        return Decision(rule, status, action, f"{what}; the {cooldown} cooldown passed")
    held = f"{what}; within the {cooldown} cooldown of the last notification"
    return Decision(rule, status, SUPPRESS, held)


def claimed(state: AlertState, decision: Decision, now: datetime, event_id: str) -> AlertState:
    """Where the rule stands while the decision's notification is sent (or at once, if none is).

    A notification in flight leaves the rule firing (a resolution included), so
    a check that dies while sending leaves it to be sent again.
    """
    since = state.since if state.firing and state.since is not None else now
    if decision.action == CLEAR:
        return AlertState(notified_at=state.notified_at)
    firing = replace(state, firing=True, since=since, pending_event=None, pending_at=None)
    if decision.action in SENDS:
        return replace(firing, pending_event=event_id, pending_at=now)
    return firing  # SUPPRESS: firing, held


def after(state: AlertState, decision: Decision, now: datetime, *, delivered: bool) -> AlertState:
    """Where the rule stands once the claimed notification was (or was not) delivered.

    A notification that failed is sent again at the next check: the rule keeps
    its earlier ``notified_at``, and a resolution that failed leaves it firing,
    so the next clean window resolves it again.
    """
    done = replace(state, pending_event=None, pending_at=None)
    if not delivered:
        return done
    if decision.action == RESOLVE:
        return AlertState(notified_at=now)
    return replace(done, notified_at=now)


def payload(
    decision: Decision, report: Report, ref: str, event_id: str, now: datetime
) -> dict[str, Any]:
    """The JSON body of a notification: what fired (or resolved), where, and the check's numbers.

    The check's numbers are those of the report, without the per-bin
    histograms the drift result carries for charts (dozens of numbers per column).
    """
    rule = decision.rule
    plain = report.to_dict()
    result = _without_histograms(rule.check, plain["checks"].get(rule.check, {}))
    return {
        "event_id": event_id,
        "alert": rule.name,
        "model": report.model,
        "ref": ref,
        "version": report.version,
        "check": rule.check,
        "status": decision.status,
        "level": rule.level,
        "state": "resolved" if decision.action == RESOLVE else "firing",
        "window": {"start": plain["window_start"], "end": plain["window_end"]},
        "rows": report.rows,
        "summary": summary(decision, report.model, report.version, result),
        "result": result,
        "timestamp": now.isoformat(),
    }


def _without_histograms(check: str, result: dict[str, Any]) -> dict[str, Any]:
    if check != "drift":
        return result
    columns = {
        name: {k: v for k, v in column.items() if k != "histogram"}
        for name, column in (result.get("columns") or {}).items()
    }
    lean = {**result, "columns": columns}
    if isinstance(result.get("prediction"), dict):
        lean["prediction"] = {k: v for k, v in result["prediction"].items() if k != "histogram"}
    return lean


def summary(decision: Decision, model: str, version: int, result: dict[str, Any]) -> str:
    """One line for people: the rule, why it acted, and what the check found."""
    found = f"; {headline(decision.rule.check, result)}" if result else ""
    return f"{model}@{version} {decision.rule.name}: {decision.reason}{found}"


def _status(report: Report, check: str) -> str:
    if report.rows == 0:
        return NO_DATA
    result = report.checks.get(check)
    return NO_DATA if result is None else str(result["status"])
