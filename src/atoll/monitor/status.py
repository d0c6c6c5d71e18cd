"""Check verdicts: ``ok`` < ``warn`` < ``alert``, and ``no_data`` when nothing could be judged."""

from __future__ import annotations

from collections.abc import Iterable

from atoll.spec_monitor import Threshold

LEVELS = ("ok", "warn", "alert")
NO_DATA = "no_data"


def level(value: float | None, threshold: Threshold) -> str:
    """``alert`` at or past the alert level, ``warn`` at or past the warn level, else ``ok``."""
    if value is None:
        return "ok"
    if value >= threshold.alert:
        return "alert"
    return "warn" if value >= threshold.warn else "ok"


def worst(statuses: Iterable[str]) -> str:
    """The most severe of ``statuses``; ``no_data`` when none of them judged anything."""
    judged = [s for s in statuses if s in LEVELS]
    if not judged:
        return NO_DATA
    return max(judged, key=LEVELS.index)
