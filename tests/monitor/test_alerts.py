"""Alert rules: the spec, every decision, the store's claims, and two checks at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from atoll.errors import SpecError
from atoll.monitor.alerting import CheckOutcome, run_check, webhook_targets
from atoll.monitor.alerts import (
    CLEAR,
    FIRE,
    NOTHING,
    REPEAT,
    RESOLVE,
    SUPPRESS,
    TAKEN,
    after,
    claimed,
    decide,
    in_flight,
    payload,
)
from atoll.monitor.report import CHECKS, Report
from atoll.monitor.webhooks import Sender
from atoll.spec import load_project_options
from atoll.spec_monitor import ALERT_CHECKS, SILENT_CHECKS, AlertRule
from atoll.store.alerts import ABANDONED, AlertEvent, AlertState, claim, list_events, load_states
from tests.monitor.receiver import Receiver, running_receiver, verify

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SECRET = "s3cret-of-the-hook-0123456789"
REF = "credit-risk@production"


def _report(status: str, rows: int = 500, check: str = "drift") -> Report:
    checks: dict[str, dict[str, Any]] = {name: {"status": "ok"} for name in CHECKS}
    checks["drift"] |= {"drifted": [], "warned": [], "columns": {}}
    checks[check] = {**checks[check], "status": status}
    if status == "alert" and check == "drift":
        checks["drift"]["drifted"] = ["income"]
    return Report(
        model="credit-risk",
        version=2,
        source="log",
        window_start=NOW - timedelta(hours=1),
        window_end=NOW,
        rows=rows,
        checks=checks,
    )


def _rule(**changes: Any) -> AlertRule:
    return AlertRule.model_validate({"name": "drift-alert", "check": "drift", **changes})


# -- the spec -------------------------------------------------------------------------------


def _problems(tmp_path: Path, alerts: Any) -> list[tuple[str, str]]:
    (tmp_path / "atoll.yaml").write_text(yaml.safe_dump({"monitor": {"alerts": alerts}}))
    with pytest.raises(SpecError) as caught:
        load_project_options(tmp_path / "atoll.yaml")
    return [(field, message) for field, _line, message in caught.value.problems]


def test_the_rule_checks_are_the_report_checks_that_can_fire() -> None:
    assert (*ALERT_CHECKS, *SILENT_CHECKS) == CHECKS


def test_a_valid_rule_reads_with_its_defaults(tmp_path: Path) -> None:
    hook = {"url": "https://hooks.example.com/atoll", "secret_env": "HOOK_SECRET"}
    alerts = [{"name": "drift", "check": "drift", "cooldown": "90m", "webhooks": [hook]}]
    (tmp_path / "atoll.yaml").write_text(yaml.safe_dump({"monitor": {"alerts": alerts}}))

    [rule] = load_project_options(tmp_path / "atoll.yaml").monitor.alerts

    assert rule.level == "alert" and rule.cooldown == timedelta(minutes=90)
    assert rule.webhooks[0].timeout_s == 5.0 and rule.webhooks[0].retries == 3
    assert rule.model_dump(mode="json")["cooldown"] == "90m"
    assert _rule().cooldown == timedelta(hours=6)


@pytest.mark.parametrize(
    ("rule", "field", "message"),
    [
        ({"check": "latency"}, "monitor.alerts[0].check", "Input should be 'drift'"),
        ({"cooldown": "-1h"}, "monitor.alerts[0].cooldown", "positive number and a unit"),
        ({"cooldown": "0s"}, "monitor.alerts[0].cooldown", "positive number and a unit"),
        ({"cooldown": 3600}, "monitor.alerts[0].cooldown", "a positive span"),
        ({"level": "ok"}, "monitor.alerts[0].level", "'warn' or 'alert'"),
        ({"name": "has space"}, "monitor.alerts[0].name", "should match pattern"),
        (
            {"check": "operational"},
            "monitor.alerts[0].check",
            "the operational check has no thresholds yet",
        ),
        (
            {"webhooks": [{"url": "ftp://example.com/x", "secret_env": "S"}]},
            "monitor.alerts[0].webhooks[0].url",
            "not an http:// or https:// URL",
        ),
        (
            {"webhooks": [{"url": "https://example.com:abc/x", "secret_env": "S"}]},
            "monitor.alerts[0].webhooks[0].url",
            "the port is not a number from 1 to 65535",
        ),
        (
            {"webhooks": [{"secret_env": "S"}]},
            "monitor.alerts[0].webhooks[0]",
            "give exactly one of 'url' or 'url_env'",
        ),
        (
            {"webhooks": [{"url": "https://example.com/", "url_env": "U", "secret_env": "S"}]},
            "monitor.alerts[0].webhooks[0]",
            "give exactly one of 'url' or 'url_env'",
        ),
        (
            {"webhooks": [{"url": "https://user:pw@example.com/", "secret_env": "S"}]},
            "monitor.alerts[0].webhooks[0].url",
            "holds credentials",
        ),
        (
            {"webhooks": [{"url": "https://example.com/", "secret_env": "S", "retries": 11}]},
            "monitor.alerts[0].webhooks[0].retries",
            "less than or equal to 10",
        ),
        (
            {"webhooks": [{"url": "https://example.com/", "secret_env": "S", "timeout_s": 0}]},
            "monitor.alerts[0].webhooks[0].timeout_s",
            "greater than 0",
        ),
        (
            {"webhooks": [{"url": "https://example.com/", "secret_env": "not a name"}]},
            "monitor.alerts[0].webhooks[0].secret_env",
            "should match pattern",
        ),
        (
            {"webhooks": [{"url": "https://example.com/", "secret": "abc", "secret_env": "S"}]},
            "monitor.alerts[0].webhooks[0].secret",
            "unknown key",
        ),
    ],
)
def test_nonsensical_rules_are_spec_errors_naming_the_field(
    tmp_path: Path, rule: dict[str, Any], field: str, message: str
) -> None:
    problems = _problems(tmp_path, [{"name": "r", "check": "drift", **rule}])

    assert any(f == field and message in m for f, m in problems), problems


def test_a_bare_on_key_is_refused_not_misread(tmp_path: Path) -> None:
    """YAML 1.1 reads ``on`` as ``true``: the key is ``level``, and ``on`` is an error."""
    text = "monitor:\n  alerts:\n    - name: r\n      check: drift\n      on: warn\n"
    (tmp_path / "atoll.yaml").write_text(text)

    with pytest.raises(SpecError) as caught:
        load_project_options(tmp_path / "atoll.yaml")

    [(field, _line, message)] = caught.value.problems
    assert field.startswith("monitor.alerts[0]") and message == "Keys should be strings"


def test_rule_names_are_unique(tmp_path: Path) -> None:
    alerts = [{"name": "r", "check": "drift"}, {"name": "r", "check": "quality"}]

    assert _problems(tmp_path, alerts) == [
        ("monitor.alerts", "two rules are named 'r': names must be unique")
    ]


def test_a_cooldown_must_be_whole_seconds() -> None:
    with pytest.raises(ValueError, match="positive span of whole seconds"):
        _rule(cooldown=timedelta(seconds=0.5))
    assert _rule(cooldown=timedelta(seconds=90)).model_dump(mode="json")["cooldown"] == "90s"


def test_a_missing_secret_names_the_field_and_the_variable() -> None:
    hook = {"url": "https://example.com/", "secret_env": "ATOLL_NO_SUCH_SECRET"}
    rules = [_rule(), _rule(name="second", webhooks=[hook])]

    with pytest.raises(SpecError, match="nothing was sent") as caught:
        webhook_targets(rules, {"OTHER": "x"}.get)

    assert caught.value.problems == [
        (
            "monitor.alerts[1].webhooks[0].secret_env",
            None,
            "environment variable ATOLL_NO_SUCH_SECRET is not set",
        )
    ]


def test_a_url_from_the_environment_is_read_and_never_quoted() -> None:
    hook = {"url_env": "HOOK_URL", "secret_env": "HOOK_SECRET"}
    rules = [_rule(webhooks=[hook])]
    url = "https://hooks.slack.com/services/T0/B0/t0ps3cret"

    [target] = webhook_targets(rules, {"HOOK_URL": url, "HOOK_SECRET": "k"}.get)["drift-alert"]
    assert target.url == url

    for environ, message in [
        ({"HOOK_SECRET": "k"}, "environment variable HOOK_URL is not set"),
        (
            {"HOOK_URL": "https://t0ps3cret@:x/", "HOOK_SECRET": "k"},
            "environment variable HOOK_URL holds no usable webhook URL",
        ),
    ]:
        with pytest.raises(SpecError) as caught:
            webhook_targets(rules, environ.get)
        [(field, _line, problem)] = caught.value.problems
        assert field == "monitor.alerts[0].webhooks[0].url_env" and problem.startswith(message)
        assert "t0ps3cret" not in str(caught.value)


# -- decisions --------------------------------------------------------------------------------

FIRING = AlertState(
    firing=True, since=NOW - timedelta(hours=3), notified_at=NOW - timedelta(hours=2)
)
"""Firing, and its alert delivered two hours ago."""
RESOLVED = AlertState(notified_at=NOW - timedelta(minutes=30))
"""Not firing: its resolution was delivered half an hour ago."""
HELD = AlertState(firing=True, since=NOW - timedelta(minutes=20), notified_at=RESOLVED.notified_at)
"""Fired again within the cooldown of that resolution: firing, never notified since."""
FAILED = AlertState(firing=True, since=NOW - timedelta(minutes=20))
"""Fired; every delivery of its alert failed."""


@pytest.mark.parametrize(
    ("status", "state", "rule", "action"),
    [
        ("alert", AlertState(), {}, FIRE),
        ("warn", AlertState(), {}, NOTHING),
        ("warn", AlertState(), {"level": "warn"}, FIRE),
        ("ok", AlertState(), {"level": "warn"}, NOTHING),
        ("alert", FIRING, {"cooldown": "6h"}, SUPPRESS),
        ("alert", FIRING, {"cooldown": "2h"}, REPEAT),  # exactly the cooldown since: re-send
        ("alert", FIRING, {"cooldown": "1h"}, REPEAT),
        ("warn", FIRING, {}, RESOLVE),
        ("ok", FIRING, {}, RESOLVE),
        ("warn", FIRING, {"level": "warn"}, SUPPRESS),
        ("no_data", FIRING, {}, NOTHING),
        ("no_data", AlertState(), {}, NOTHING),
        # flapping: a fire soon after a resolution is held until the cooldown has passed
        ("alert", RESOLVED, {"cooldown": "1h"}, SUPPRESS),
        ("alert", RESOLVED, {"cooldown": "30m"}, FIRE),
        ("alert", HELD, {"cooldown": "1h"}, SUPPRESS),
        ("alert", HELD, {"cooldown": "10m"}, FIRE),
        ("ok", HELD, {}, CLEAR),  # nobody was told it fired: no resolution
        # a failed alert is sent again at the next check, whatever the cooldown
        ("alert", FAILED, {"cooldown": "6h"}, FIRE),
        ("ok", FAILED, {}, CLEAR),
    ],
)
def test_what_a_rule_does(
    status: str, state: AlertState, rule: dict[str, Any], action: str
) -> None:
    assert decide(_rule(**rule), _report(status), state, NOW).action == action


def test_no_data_keeps_a_firing_rule_firing() -> None:
    decision = decide(_rule(), _report("alert", rows=0), FIRING, NOW)

    assert decision.action == NOTHING and "no data" in decision.reason


def test_a_rule_watches_only_its_check() -> None:
    report = _report("alert", check="quality")

    assert decide(_rule(), report, AlertState(), NOW).action == NOTHING
    assert decide(_rule(check="quality"), report, AlertState(), NOW).action == FIRE


def test_where_a_rule_stands_while_sending_and_after() -> None:
    fire = decide(_rule(), _report("alert"), AlertState(), NOW)
    sending = claimed(AlertState(), fire, NOW, "e1")
    assert sending == AlertState(True, NOW, None, "e1", NOW)
    assert after(sending, fire, NOW, delivered=True) == AlertState(True, NOW, NOW)
    # not delivered: firing, never notified, so the next check sends again
    assert after(sending, fire, NOW, delivered=False) == AlertState(True, NOW, None)

    repeat = decide(_rule(cooldown="1h"), _report("alert"), FIRING, NOW)
    assert after(claimed(FIRING, repeat, NOW, "e2"), repeat, NOW, delivered=True).since == (
        FIRING.since
    )

    resolve = decide(_rule(), _report("ok"), FIRING, NOW)
    resolving = claimed(FIRING, resolve, NOW, "e3")
    assert resolving.firing and resolving.pending_event == "e3"  # a crash leaves it to resend
    assert after(resolving, resolve, NOW, delivered=True) == AlertState(notified_at=NOW)
    assert after(resolving, resolve, NOW, delivered=False) == FIRING  # resolved again next time

    held = decide(_rule(cooldown="1h"), _report("alert"), RESOLVED, NOW)
    assert claimed(RESOLVED, held, NOW, "e4") == AlertState(True, NOW, RESOLVED.notified_at)
    clear = decide(_rule(), _report("ok"), HELD, NOW)
    assert claimed(HELD, clear, NOW, "e5") == RESOLVED


def test_a_claim_is_in_flight_until_its_deadline() -> None:
    sending = AlertState(True, NOW, None, "e1", NOW)
    deadline = timedelta(seconds=90)

    assert in_flight(sending, NOW + timedelta(seconds=89), deadline)
    assert not in_flight(sending, NOW + deadline, deadline)
    assert not in_flight(FIRING, NOW, deadline)


def test_the_payload_says_what_where_and_the_numbers_without_histograms() -> None:
    report = _report("alert")
    histogram = {"edges": [0.0, 1.0, 2.0], "reference": [0.5, 0.5], "current": [3, 4]}
    report.checks["drift"]["columns"] = {"income": {"status": "alert", "histogram": histogram}}
    report.checks["drift"]["prediction"] = {"status": "ok", "histogram": histogram}
    decision = decide(_rule(), report, AlertState(), NOW)

    body = payload(decision, report, REF, "e1", NOW)

    assert body["event_id"] == "e1" and body["alert"] == "drift-alert"
    assert (body["model"], body["ref"], body["version"]) == ("credit-risk", REF, 2)
    assert (body["check"], body["status"], body["state"]) == ("drift", "alert", "firing")
    assert body["window"] == {"start": "2026-05-01T11:00:00+00:00", "end": NOW.isoformat()}
    assert body["result"]["drifted"] == ["income"]
    assert body["result"]["columns"] == {"income": {"status": "alert"}}
    assert body["result"]["prediction"] == {"status": "ok"}
    assert "histogram" in report.to_dict()["checks"]["drift"]["columns"]["income"]
    assert "income" in body["summary"] and body["timestamp"] == NOW.isoformat()
    resolved = payload(decide(_rule(), _report("ok"), FIRING, NOW), report, REF, "e2", NOW)
    assert resolved["state"] == "resolved"


# -- the store: claims, and checks at once ----------------------------------------------------


def _event(event_id: str, *, ref: str = REF, delivery: str = "pending") -> AlertEvent:
    return AlertEvent(
        event_id=event_id,
        model="credit-risk",
        ref=ref,
        version=2,
        rule="drift-alert",
        check="drift",
        event="fired",
        status="alert",
        window_start=None,
        window_end=None,
        delivery=delivery,
        attempts=0,
        error=None,
        created_at=NOW,
    )


def test_only_one_of_two_claims_from_the_same_state_wins(engine: sa.Engine) -> None:
    new = AlertState(True, NOW, None, "e1", NOW)

    first = claim(engine, AlertState(), new, _event("e1"))
    second = claim(engine, AlertState(), new, _event("e2"))

    assert first is not None and first.revision == 1 and second is None
    moved = AlertState(False, None, NOW)
    assert claim(engine, first, moved, _event("e3", delivery="none")) is not None
    assert claim(engine, first, moved, _event("e4", delivery="none")) is None  # revision 1 is gone
    assert load_states(engine, "credit-risk", REF) == {
        "drift-alert": AlertState(False, None, NOW, None, None, 2)
    }
    # the claim that moved the rule on dropped e1 while it was pending: e1 is marked failed
    events = {e.event_id: e for e in list_events(engine, "credit-risk")}
    assert sorted(events) == ["e1", "e3"]
    assert (events["e1"].delivery, events["e1"].error) == ("failed", ABANDONED)
    assert load_states(engine, "credit-risk", "credit-risk@staging") == {}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def _targets(rule: AlertRule) -> dict[str, Any]:
    return webhook_targets([rule], {"HOOK": SECRET}.get)


def _hooked(receiver: Receiver, **changes: Any) -> AlertRule:
    return _rule(webhooks=[{"url": receiver.url, "secret_env": "HOOK", "retries": 0}], **changes)


class Clock:
    """A clock the test moves: the check reads it once per rule."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def _checks(
    engine: sa.Engine, rule: AlertRule, receiver: Receiver, steps: list[tuple[int, str]]
) -> list[str]:
    """Run a check at each ``(minutes after NOW, status)``; the actions taken."""
    clock, actions = Clock(), []
    for minutes, status in steps:
        clock.now = NOW + timedelta(minutes=minutes)
        outcome = run_check(engine, _report(status), REF, [rule], _targets(rule), clock=clock)
        actions.append(outcome.alerts[0].action)
    return actions


def test_a_flapping_check_notifies_at_most_once_per_cooldown(
    engine: sa.Engine, receiver: Receiver
) -> None:
    rule = _hooked(receiver, cooldown="1h")
    steps = [(0, "alert"), (10, "ok"), (20, "alert"), (30, "ok"), (40, "alert"), (80, "alert")]

    actions = _checks(engine, rule, receiver, steps)

    assert actions == [FIRE, RESOLVE, SUPPRESS, CLEAR, SUPPRESS, FIRE]
    assert [r.json()["state"] for r in receiver.requests] == ["firing", "resolved", "firing"]
    events = list_events(engine, "credit-risk", rule="drift-alert")
    assert [(e.event, e.delivery) for e in reversed(events)] == [
        ("fired", "delivered"),
        ("resolved", "delivered"),
        ("suppressed", "none"),
        ("cleared", "none"),
        ("suppressed", "none"),
        ("fired", "delivered"),
    ]


def test_an_alert_never_delivered_is_cleared_without_a_resolution(
    engine: sa.Engine, receiver: Receiver
) -> None:
    receiver.answers = [500]
    rule = _hooked(receiver)

    actions = _checks(engine, rule, receiver, [(0, "alert"), (5, "ok"), (10, "ok")])

    assert actions == [FIRE, CLEAR, NOTHING]
    assert len(receiver.requests) == 1  # the failed alert; no resolution follows it
    events = list_events(engine, "credit-risk", rule="drift-alert")
    assert [(e.event, e.delivery) for e in events] == [("cleared", "none"), ("fired", "failed")]


def test_each_reference_keeps_its_own_state(engine: sa.Engine, receiver: Receiver) -> None:
    rule = _hooked(receiver, cooldown="1h")
    targets = _targets(rule)

    staging = run_check(engine, _report("alert"), "credit-risk@staging", [rule], targets)
    production = run_check(engine, _report("ok"), REF, [rule], targets)
    again = run_check(engine, _report("alert"), "credit-risk@staging", [rule], targets)

    assert [o.alerts[0].action for o in (staging, production, again)] == [FIRE, NOTHING, SUPPRESS]
    assert staging.firing == ["drift-alert"] and production.firing == []
    assert [e.ref for e in list_events(engine, "credit-risk")] == ["credit-risk@staging"] * 2
    assert list_events(engine, "credit-risk", ref=REF) == []


def test_a_check_that_died_sending_is_sent_again_after_the_deadline(
    engine: sa.Engine, receiver: Receiver
) -> None:
    """A check claimed a notification and stopped: its event stays pending, then is redone."""
    rule = _hooked(receiver)
    fire = decide(rule, _report("alert"), AlertState(), NOW)
    assert claim(engine, AlertState(), claimed(AlertState(), fire, NOW, "died"), _event("died"))
    [pending] = list_events(engine, "credit-risk")
    assert pending.delivery == "pending"
    deadline = Sender().deadline_s(_targets(rule)["drift-alert"][0]) + 60

    def check(seconds: float) -> CheckOutcome:
        clock = Clock()
        clock.now = NOW + timedelta(seconds=seconds)
        return run_check(engine, _report("alert"), REF, [rule], _targets(rule), clock=clock)

    busy = check(deadline - 1)
    assert (busy.alerts[0].action, busy.firing) == (TAKEN, ["drift-alert"])
    assert receiver.requests == []
    resent = check(deadline)
    assert (resent.alerts[0].action, resent.alerts[0].delivery) == (FIRE, "delivered")
    assert len(receiver.requests) == 1
    events = {e.event_id: e for e in list_events(engine, "credit-risk")}
    assert (events["died"].delivery, events["died"].error) == ("failed", ABANDONED)
    assert events[resent.alerts[0].event_id].delivery == "delivered"


def test_two_checks_at_once_send_one_notification(engine: sa.Engine, receiver: Receiver) -> None:
    rules = [_hooked(receiver, cooldown="1h")]
    targets = _targets(rules[0])
    report = _report("alert")
    start = threading.Barrier(2)
    outcomes: list[CheckOutcome] = []

    def check() -> None:
        start.wait()
        outcomes.append(run_check(engine, report, REF, rules, targets, Sender(backoff_s=0.01)))

    threads = [threading.Thread(target=check) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # the second sees the first's claim in flight (taken) or, if the first is done
    # by then, its delivered alert within the cooldown (suppress): never a second fire
    first, second = sorted(o.alerts[0].action for o in outcomes)
    assert first == FIRE and second in (TAKEN, SUPPRESS)
    assert len(receiver.requests) == 1
    assert verify(SECRET.encode(), receiver.requests[0].headers, receiver.requests[0].body)
    assert all(o.firing == ["drift-alert"] for o in outcomes)
    fired = [e for e in list_events(engine, "credit-risk") if e.event == "fired"]
    assert len(fired) == 1 and fired[0].delivery == "delivered"
