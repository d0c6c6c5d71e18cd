"""Alerts on a real trained model's logged traffic, with a real webhook receiver.

One drifted hour (income five times larger) and one clean hour are logged;
``monitor check`` on the drifted hour fires, on the clean one resolves. Each
test configures its own rules in ``atoll.yaml``: rule state is per reference and rule name.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from atoll import api
from atoll.cli.main import cli
from atoll.data.sources import read_frame
from atoll.errors import SpecError
from atoll.settings import Settings
from atoll.store.monitoring import list_results
from tests.conftest import write_demo_project
from tests.monitor.conftest import log_predictions
from tests.monitor.receiver import Receiver, running_receiver, verify

SECRET_ENV = "ATOLL_TEST_HOOK_SECRET"
SECRET = "4f1c0e6b9d2a8e73b5c1f0a9d8e7c6b5"
DRIFTED = (datetime(2026, 3, 1, 10, tzinfo=UTC), datetime(2026, 3, 1, 11, tzinfo=UTC))
CLEAN = (datetime(2026, 3, 1, 11, tzinfo=UTC), datetime(2026, 3, 1, 12, tzinfo=UTC))
ROWS = 600


@dataclass(frozen=True)
class Project:
    root: Path
    settings: Settings


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A trained, promoted demo model; a drifted hour and a clean hour of its traffic."""
    root = tmp_path_factory.mktemp("alerted")
    write_demo_project(root)
    settings = Settings.from_env(project_dir=root, environ={SECRET_ENV: SECRET})
    outcome = api.train(root / "atoll.yaml", settings=settings)
    api.promote(f"{outcome.version.name}@{outcome.version.version}", settings=settings)
    frame = read_frame("data/applications.csv", root).tail(ROWS).reset_index(drop=True)
    inputs = frame.drop(columns=["defaulted", "email"])
    drifted = inputs.assign(income=inputs["income"] * 5)
    log_predictions(settings, outcome.version, drifted, DRIFTED[0] + timedelta(minutes=30))
    log_predictions(settings, outcome.version, inputs, CLEAN[0] + timedelta(minutes=30))
    return Project(root, settings)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def _rules(project: Project, *rules: dict[str, Any]) -> None:
    """Set ``monitor.alerts`` of the project's spec to ``rules``."""
    path = project.root / "atoll.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["monitor"] = {"alerts": list(rules)}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))


def _hook(receiver: Receiver, **changes: Any) -> dict[str, Any]:
    return {"url": receiver.url, "secret_env": SECRET_ENV, **changes}


def _check(project: Project, window: tuple[datetime, datetime]) -> Any:
    return api.monitor_check(
        "credit-risk", since=window[0], until=window[1], settings=project.settings
    )


def test_a_signed_alert_is_sent_once_then_held_back_then_resolved(
    project: Project, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    rule = {"name": "income-drift", "check": "drift", "cooldown": "1h"}
    _rules(project, {**rule, "webhooks": [_hook(receiver)]})
    caplog.set_level(logging.INFO, logger="atoll.monitor.alerts")

    fired = _check(project, DRIFTED)
    held = _check(project, DRIFTED)
    resolved = _check(project, CLEAN)
    quiet = _check(project, CLEAN)

    assert [o.alerts[0].action for o in (fired, held, resolved, quiet)] == [
        "fire",
        "suppress",
        "resolve",
        "none",
    ]
    assert fired.firing == ["income-drift"] and held.firing == ["income-drift"]
    assert resolved.firing == [] and quiet.firing == []
    assert len(receiver.requests) == 2  # the alert once, then its resolution
    alert, resolution = (r.json() for r in receiver.requests)
    assert all(verify(SECRET.encode(), r.headers, r.body) for r in receiver.requests)
    assert alert["event_id"] == fired.alerts[0].event_id
    assert (alert["alert"], alert["model"], alert["check"]) == (
        "income-drift",
        "credit-risk",
        "drift",
    )
    assert (alert["state"], alert["status"], alert["rows"]) == ("firing", "alert", ROWS)
    assert alert["window"] == {"start": DRIFTED[0].isoformat(), "end": DRIFTED[1].isoformat()}
    assert "income" in alert["result"]["drifted"] and "income" in alert["summary"]
    assert resolution["state"] == "resolved" and resolution["status"] in ("ok", "warn")

    history = api.monitor_alerts("credit-risk", rule="income-drift", settings=project.settings)
    assert [(e.event, e.delivery, e.attempts) for e in history] == [
        ("resolved", "delivered", 1),
        ("suppressed", "none", 0),
        ("fired", "delivered", 1),
    ]
    assert history[-1].event_id == alert["event_id"] and history[-1].window_end == DRIFTED[1]
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "atoll.monitor.alerts"]
    assert [line["event"] for line in lines] == ["fired", "suppressed", "resolved"]
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    with api.open_registry(project.settings) as registry:  # the report was stored as well
        stored = list_results(registry.engine, "credit-risk", check="drift", limit=1)
    assert stored[0].window_end == CLEAN[1]


def test_a_failing_receiver_is_retried_recorded_and_sent_again_next_check(
    project: Project, receiver: Receiver
) -> None:
    _rules(project, {"name": "flaky", "check": "drift", "webhooks": [_hook(receiver, retries=1)]})
    receiver.answers, receiver.reason = [500, 500], "[/x] markup"

    failed = _check(project, DRIFTED)
    again = _check(project, DRIFTED)

    first, second = failed.alerts[0], again.alerts[0]
    assert (first.action, first.delivery, first.firing) == ("fire", "failed", True)
    assert first.deliveries[0].attempts == 2 and first.deliveries[0].http_status == 500
    assert (second.action, second.delivery) == ("fire", "delivered")  # not held by cooldown
    assert len(receiver.requests) == 3
    history = api.monitor_alerts("credit-risk", rule="flaky", settings=project.settings)
    assert [(e.event, e.delivery, e.attempts) for e in history] == [
        ("fired", "delivered", 1),
        ("fired", "failed", 2),
    ]
    assert history[1].error is not None and "HTTP 500 [/x] markup" in history[1].error
    assert "/hooks/atoll" not in history[1].error  # the URL's path is never stored

    # the error's brackets are text, not rich markup: the table shows them, and does not fail
    listed = CliRunner().invoke(
        cli,
        ["-C", str(project.root), "monitor", "alerts", "credit-risk", "--rule", "flaky"],
        env={"COLUMNS": "300"},
    )
    assert listed.exit_code == 0, listed.output
    assert "HTTP 500 [/x] markup" in listed.output


def test_alert_state_is_kept_per_model_reference(project: Project, receiver: Receiver) -> None:
    _rules(project, {"name": "per-ref", "check": "drift", "webhooks": [_hook(receiver)]})

    def check(model: str) -> str:
        outcome = api.monitor_check(
            model, since=DRIFTED[0], until=DRIFTED[1], settings=project.settings
        )
        return str(outcome.alerts[0].action)

    assert [check(m) for m in ("credit-risk", "credit-risk@1", "credit-risk@production")] == [
        "fire",
        "fire",
        "suppress",  # a bare name is its production alias
    ]

    def refs(model: str) -> list[str]:
        events = api.monitor_alerts(model, rule="per-ref", settings=project.settings)
        return [e.ref for e in events]

    assert refs("credit-risk@1") == ["credit-risk@1"]
    assert refs("credit-risk@production") == ["credit-risk@production"] * 2
    assert sorted(refs("credit-risk")) == ["credit-risk@1", *["credit-risk@production"] * 2]


def test_a_receiver_that_hangs_does_not_block_the_check(
    project: Project, receiver: Receiver
) -> None:
    hook = _hook(receiver, timeout_s=0.3, retries=0)
    _rules(project, {"name": "slow-hook", "check": "drift", "webhooks": [hook]})
    receiver.hang = True

    outcome = _check(project, DRIFTED)

    [alert] = outcome.alerts
    assert alert.action == "fire" and alert.delivery == "failed"
    assert alert.deliveries[0].error == "no answer within 0.3s"
    assert outcome.report.rows == ROWS


def test_a_missing_secret_stops_the_check_before_anything_is_done(
    project: Project, receiver: Receiver
) -> None:
    _rules(project, {"name": "unsigned", "check": "drift", "webhooks": [_hook(receiver)]})
    bare = Settings.from_env(project_dir=project.root, environ={})
    with api.open_registry(bare) as registry:
        before = len(list_results(registry.engine, "credit-risk", limit=1000))

    with pytest.raises(SpecError, match="nothing was sent") as caught:
        api.monitor_check("credit-risk", since=DRIFTED[0], until=DRIFTED[1], settings=bare)

    assert SECRET_ENV in str(caught.value) and "webhooks[0].secret_env" in str(caught.value)
    assert receiver.requests == []
    with api.open_registry(bare) as registry:
        assert len(list_results(registry.engine, "credit-risk", limit=1000)) == before


def test_the_cli_exits_3_while_an_alert_fires_and_0_once_resolved(project: Project) -> None:
    _rules(project, {"name": "cli-drift", "check": "drift"})  # no webhook: the log line only
    runner = CliRunner()
    base = ["-C", str(project.root), "monitor"]

    def check(window: tuple[datetime, datetime], *extra: str) -> Any:
        since, until = (moment.isoformat() for moment in window)
        args = [*base, "check", "credit-risk", "--since", since, "--until", until, *extra]
        return runner.invoke(cli, args)

    firing = check(DRIFTED)
    assert firing.exit_code == 3, firing.output
    assert "cli-drift" in firing.output and "fire" in firing.output
    as_json = check(DRIFTED, "--json")
    assert as_json.exit_code == 3
    parsed = json.loads(as_json.output)
    assert parsed["firing"] == ["cli-drift"] and parsed["alerts"][0]["action"] == "suppress"
    assert parsed["report"]["checks"]["drift"]["status"] == "alert"
    resolved = check(CLEAN)
    assert resolved.exit_code == 0, resolved.output
    assert "resolve" in resolved.output

    listed = runner.invoke(cli, [*base, "alerts", "credit-risk", "--rule", "cli-drift", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [e["event"] for e in json.loads(listed.output)] == ["resolved", "suppressed", "fired"]
    shown = runner.invoke(cli, [*base, "alerts", "credit-risk", "--limit", "2"])
    assert shown.exit_code == 0 and "alert events of credit-risk" in shown.output
