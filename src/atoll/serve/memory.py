"""Garbage-collector settings for the long-running serving processes."""

from __future__ import annotations

import gc

GC_YOUNG_THRESHOLD = 50_000


def settle_memory() -> None:
    """Move everything loaded so far out of the garbage collector's sight.

    The models, libraries and schemas are hundreds of thousands of long-lived
    objects; without this, every full collection walks them all again, and
    under load each one paused the event loop for 100 ms or more. A request
    allocates thousands of short-lived objects (a 1,000-row one, tens of
    thousands), so the young generation is collected less often too: with
    the default threshold of 700 that alone cost a third of a large request.
    The log process keeps a queue of parsed records for a flush window: the
    same settings keep the collector from walking it over and over.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
