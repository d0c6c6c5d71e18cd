"""Spans of time written as text (``30d``, ``12h``, ``90m``, ``45s``): in specs and on the CLI."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """A positive span such as ``30d``, ``12h``, ``90m`` or ``45s``.

    Raises:
        ValueError: not a positive whole number followed by one of s, m, h, d.
    """
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{text!r}: use a positive number and a unit: 30d, 12h, 90m, 45s")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def format_duration(span: timedelta) -> str:
    """The text :func:`parse_duration` reads back, in the largest unit that is exact.

    Raises:
        ValueError: not a positive whole number of seconds (no text reads back as it).
    """
    if span <= timedelta(0) or span.microseconds:
        raise ValueError(f"{span} is not a positive whole number of seconds")
    seconds = int(span.total_seconds())
    unit = next(u for u in ("d", "h", "m", "s") if seconds % _UNIT_SECONDS[u] == 0)
    return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
