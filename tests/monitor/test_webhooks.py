"""Webhook delivery against a real HTTP receiver on 127.0.0.1: signing, retries, time bounds."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from itertools import count

import pytest

from atoll.monitor.webhooks import MAX_PAUSE_S, Sender, Target, shown_url
from tests.monitor.receiver import Receiver, running_receiver, verify

SECRET = b"a-shared-secret-of-some-length"
BODY = json.dumps({"event_id": "e1", "alert": "drift", "state": "firing"}).encode()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def pauses() -> list[float]:
    """The backoff pauses a sender asked for (recorded, not slept)."""
    return []


@pytest.fixture
def sender(pauses: list[float]) -> Sender:
    clock = count(1_780_000_000)
    return Sender(backoff_s=0.25, sleep=pauses.append, clock=lambda: float(next(clock)))


def _target(receiver: Receiver, retries: int = 3, timeout_s: float = 5.0) -> Target:
    return Target(receiver.url, SECRET, timeout_s=timeout_s, retries=retries)


def test_a_signed_body_is_received_once(receiver: Receiver, sender: Sender) -> None:
    delivery = sender.send(_target(receiver), BODY, "e1")

    assert delivery.ok and delivery.attempts == 1 and delivery.http_status == 200
    [request] = receiver.requests
    assert request.body == BODY and request.path == "/hooks/atoll"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Atoll-Event"] == "e1"
    assert request.headers["X-Atoll-Timestamp"] == "1780000000"
    assert verify(SECRET, request.headers, request.body)
    assert not verify(b"another-secret", request.headers, request.body)
    assert not verify(SECRET, request.headers, request.body + b" ")


def test_a_500_is_retried_with_backoff_then_recorded_as_failed(
    receiver: Receiver, sender: Sender, pauses: list[float]
) -> None:
    receiver.answers = [500] * 10

    delivery = sender.send(_target(receiver, retries=3), BODY, "e1")

    assert not delivery.ok and delivery.attempts == 4 and delivery.http_status == 500
    assert delivery.error is not None and "HTTP 500" in delivery.error
    assert len(receiver.requests) == 4
    assert pauses == [0.25, 0.5, 1.0]
    # every attempt is signed anew, with its own timestamp, over the same body
    stamps = [r.headers["X-Atoll-Timestamp"] for r in receiver.requests]
    assert len(set(stamps)) == 4
    assert all(verify(SECRET, r.headers, r.body) and r.body == BODY for r in receiver.requests)


def test_a_500_then_a_200_is_delivered(receiver: Receiver, sender: Sender) -> None:
    receiver.answers = [503, 429]

    delivery = sender.send(_target(receiver), BODY, "e1")

    assert delivery.ok and delivery.attempts == 3 and len(receiver.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 404, 302])
def test_a_4xx_or_a_redirect_is_not_retried(
    receiver: Receiver, sender: Sender, pauses: list[float], status: int
) -> None:
    receiver.answers = [status]

    delivery = sender.send(_target(receiver), BODY, "e1")

    assert not delivery.ok and delivery.attempts == 1 and delivery.http_status == status
    assert len(receiver.requests) == 1 and pauses == []


def test_a_receiver_that_never_answers_times_out(receiver: Receiver, sender: Sender) -> None:
    receiver.hang = True

    delivery = sender.send(_target(receiver, retries=1, timeout_s=0.2), BODY, "e1")

    assert not delivery.ok and delivery.attempts == 2 and delivery.http_status is None
    assert delivery.error == "no answer within 0.2s"


def test_pauses_double_up_to_a_cap_and_bound_the_delivery(
    receiver: Receiver, sender: Sender, pauses: list[float]
) -> None:
    receiver.answers = [503] * 11
    target = _target(receiver, retries=10, timeout_s=2.0)

    delivery = sender.send(target, BODY, "e1")

    assert delivery.attempts == 11 and len(receiver.requests) == 11
    assert pauses == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, MAX_PAUSE_S, MAX_PAUSE_S, MAX_PAUSE_S]
    assert sender.deadline_s(target) == 2.0 * 11 + sum(pauses)


def test_a_receiver_trickling_its_status_line_is_cut_off(
    receiver: Receiver, sender: Sender
) -> None:
    """Each byte comes within the socket timeout: only the per-attempt watchdog ends it."""
    receiver.trickle = "status"

    delivery = sender.send(_target(receiver, retries=1, timeout_s=0.3), BODY, "e1")

    assert not delivery.ok and delivery.attempts == 2 and delivery.http_status is None
    assert delivery.error == "no answer within 0.3s"


def test_a_2xx_status_line_is_delivered_though_the_headers_trickle(
    receiver: Receiver, sender: Sender
) -> None:
    receiver.trickle = "headers"

    delivery = sender.send(_target(receiver, retries=1, timeout_s=0.3), BODY, "e1")

    assert delivery.ok and delivery.attempts == 1 and len(receiver.requests) == 1


@pytest.mark.parametrize("body", ["endless", "cut"])
def test_a_2xx_is_delivered_whatever_its_body_does(
    receiver: Receiver, sender: Sender, body: str
) -> None:
    """The status line decides: the body is not read, so it is never re-sent as a duplicate."""
    receiver.body = body

    delivery = sender.send(_target(receiver, timeout_s=1.0), BODY, "e1")

    assert delivery.ok and delivery.attempts == 1 and delivery.http_status == 200
    assert len(receiver.requests) == 1


def test_the_reason_phrase_is_kept_in_the_error(receiver: Receiver, sender: Sender) -> None:
    receiver.answers, receiver.reason = [500], "[/x] broke"

    delivery = sender.send(_target(receiver, retries=0), BODY, "e1")

    assert delivery.error == "HTTP 500 [/x] broke"


@pytest.mark.parametrize("where", ["port", "path"])
def test_an_unusable_url_is_not_retried_and_not_quoted(
    receiver: Receiver, sender: Sender, pauses: list[float], where: str
) -> None:
    url = "http://127.0.0.1:8o8o/t0ps3cret" if where == "port" else receiver.url + "/t0p s3cret"

    delivery = sender.send(Target(url, SECRET, retries=3), BODY, "e1")

    assert not delivery.ok and delivery.attempts == 1 and pauses == []
    assert delivery.error == "cannot send: the URL is not usable"
    assert receiver.requests == [] and "s3cret" not in delivery.url


def test_a_refused_connection_is_retried_and_recorded(sender: Sender) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x/t0ps3cret?token=t0ps3cret"
    target = Target(url, SECRET, retries=2)

    delivery = sender.send(target, BODY, "e1")

    assert not delivery.ok and delivery.attempts == 3
    assert delivery.error is not None and "ConnectionRefused" in delivery.error
    assert delivery.url == shown_url(url) and "t0ps3cret" not in delivery.url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T0/B0/s3cret?key=s3cret#f", "https://hooks.slack.com"),
        ("http://127.0.0.1:8080/discord/s3cret", "http://127.0.0.1:8080"),
        ("https://[::1]:9443/teams/s3cret", "https://[::1]:9443"),
    ],
)
def test_shown_urls_keep_only_scheme_host_and_port_and_a_digest(url: str, shown: str) -> None:
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]

    assert shown_url(url) == f"{shown} (sha256 {digest})"


def test_neither_the_secret_nor_the_url_is_in_the_repr() -> None:
    shown = repr(Target("https://example.com/t0ps3cret", b"s3cret"))

    assert "s3cret" not in shown and "example.com" not in shown
