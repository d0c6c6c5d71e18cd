"""Spans of time as text: what specs and the CLI read, and what specs write back."""

from __future__ import annotations

from datetime import timedelta

import pytest

from atoll._durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "span", "shown"),
    [
        ("45s", timedelta(seconds=45), "45s"),
        ("90m", timedelta(minutes=90), "90m"),
        ("3600s", timedelta(hours=1), "1h"),
        (" 12h ", timedelta(hours=12), "12h"),
        ("25h", timedelta(hours=25), "25h"),
        ("30d", timedelta(days=30), "30d"),
    ],
)
def test_a_span_reads_and_is_written_back_in_its_largest_exact_unit(
    text: str, span: timedelta, shown: str
) -> None:
    assert parse_duration(text) == span
    assert format_duration(span) == shown
    assert parse_duration(format_duration(span)) == span


@pytest.mark.parametrize("text", ["0s", "-1h", "1.5h", "6 hours", "h", "", "1w"])
def test_anything_else_is_refused_with_the_forms_it_takes(text: str) -> None:
    with pytest.raises(ValueError, match="use a positive number and a unit: 30d, 12h"):
        parse_duration(text)


@pytest.mark.parametrize(
    "span", [timedelta(seconds=0.5), timedelta(seconds=90.25), timedelta(0), timedelta(hours=-1)]
)
def test_a_span_no_text_reads_back_as_is_refused(span: timedelta) -> None:
    with pytest.raises(ValueError, match="not a positive whole number of seconds"):
        format_duration(span)
