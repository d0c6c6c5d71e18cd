"""Run a command inside a memory cgroup, as a container would: the kernel's own accounting.

Summing the RSS of a process tree counts the pages its processes share (the
libraries a fork server loaded once) once per process; a container's memory
limit charges each page once. This runs a command in a fresh cgroup with a hard
memory limit and no swap, so a job either fits or is killed by the kernel, and
samples what the cgroup charges that cannot be dropped under pressure:
anonymous memory plus mapped files (the page cache of files read and written is
charged too, but the kernel reclaims it before it kills anything).

cgroup v1 (``/sys/fs/cgroup/memory``) and v2 (a ``memory`` controller in
``cgroup.controllers``) are both handled. Creating a cgroup needs root (or a
delegated subtree): :func:`available` says why it cannot when it cannot.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

V1 = Path("/sys/fs/cgroup/memory")
V2_CANDIDATES = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))


@dataclass(frozen=True)
class Layout:
    """Where a cgroup's files live and what they are called in this cgroup version."""

    root: Path
    version: int

    @property
    def memory_file(self) -> str:
        return "memory.limit_in_bytes" if self.version == 1 else "memory.max"

    @property
    def swap_file(self) -> str:
        """v1's memsw is memory + swap (set after memory, never below it); v2's is swap alone."""
        return "memory.memsw.limit_in_bytes" if self.version == 1 else "memory.swap.max"

    @property
    def stat_keys(self) -> tuple[str, ...]:
        return ("total_rss", "total_mapped_file") if self.version == 1 else ("anon", "file_mapped")


def _layout() -> Layout | str:
    """The writable memory cgroup hierarchy, or why there is none."""
    if (V1 / "memory.limit_in_bytes").exists():
        return Layout(V1, 1) if os.access(V1, os.W_OK) else f"{V1} is not writable (needs root)"
    for root in V2_CANDIDATES:
        controllers = root / "cgroup.controllers"
        if controllers.exists() and "memory" in controllers.read_text().split():
            return Layout(root, 2) if os.access(root, os.W_OK) else f"{root} is not writable"
    return "no memory cgroup controller is mounted"


def available() -> str | None:
    """None when commands can run in a memory cgroup here; otherwise the reason."""
    found = _layout()
    return found if isinstance(found, str) else None


@dataclass
class Outcome:
    """How a command fared under the limit."""

    returncode: int
    wall_s: float
    peak_bytes: int
    """The most anonymous + mapped-file memory the cgroup held at one sample."""
    oom_kills: int
    stdout: str
    swap_off: bool
    """Whether swap was shut off too (a kernel without swap accounting has no file for it)."""


def run(cmd: list[str], limit_bytes: int, log: Path, sample_s: float = 0.05) -> Outcome:
    """Run ``cmd`` (and every process it starts) under a ``limit_bytes`` memory limit, no swap."""
    layout = _layout()
    if isinstance(layout, str):
        raise RuntimeError(layout)
    group = layout.root / f"atoll-bench-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    try:
        (group / layout.memory_file).write_text(str(limit_bytes))
        swap = group / layout.swap_file
        if swap.exists():
            swap.write_text(str(limit_bytes) if layout.version == 1 else "0")
        return _run_in(group, layout, cmd, log, sample_s, swap_off=swap.exists())
    finally:
        _remove(group)


def _remove(group: Path, wait_s: float = 10.0) -> None:
    """Remove the cgroup once the processes the command left behind (a fork server) are gone."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            group.rmdir()
            return
        except OSError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.1)


def _run_in(
    group: Path, layout: Layout, cmd: list[str], log: Path, sample_s: float, *, swap_off: bool
) -> Outcome:
    enter = f'echo $$ > {shlex.quote(str(group / "cgroup.procs"))} && exec "$@"'
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(sample_s):
            with contextlib.suppress(OSError, ValueError):
                peak = max(peak, _charged(group, layout))

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.perf_counter()
    with log.open("wb") as err:
        proc = subprocess.Popen(["sh", "-c", enter, "sh", *cmd], stdout=subprocess.PIPE, stderr=err)
        sampler.start()
        out, _ = proc.communicate()
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    kills = _oom_kills(group, layout)
    return Outcome(proc.returncode, wall, peak, kills, out.decode(), swap_off)


def _charged(group: Path, layout: Layout) -> int:
    wanted = layout.stat_keys
    total = 0
    for line in (group / "memory.stat").read_text().splitlines():
        key, _, value = line.partition(" ")
        if key in wanted:
            total += int(value)
    return total


def _oom_kills(group: Path, layout: Layout) -> int:
    name = "memory.oom_control" if layout.version == 1 else "memory.events"
    with contextlib.suppress(OSError):
        for line in (group / name).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    return 0
