"""What the benchmark scripts share, so that their figures are taken the same way.

Each variant runs in its own process (the script itself in ``--child`` mode,
atoll's CLI, or a competing tool from a separate venv) and is measured from
outside: wall time from process start to exit, peak memory and CPU time of the
whole process tree. Also here: the small trained project both scripts score
against, and the lines of their reports.

Only the standard library is imported at the top: children run this module
under a competing tool's venv, which holds none of atoll's dependencies.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
import venv
from collections.abc import Callable, Iterable
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any

NAN = float("nan")
REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ one measured run
@dataclass
class Measured:
    """The figures `measure` fills; each script's cell adds the fields that name its run."""

    rows: int
    _: KW_ONLY
    wall_s: float = NAN
    rows_per_s: float = NAN
    tree_mb: float = NAN
    pss_mb: float = NAN
    proc_mb: float = NAN
    cpu_s: float = NAN
    note: str = ""
    ok: bool = True
    skipped: bool = False
    """Not run, on purpose (the note says why): neither a result nor a failure."""

    def skip(self, why: str) -> None:
        self.ok, self.skipped, self.note = False, True, f"skipped: {why}"

    @property
    def state(self) -> str:
        """For the progress line on stderr."""
        if self.skipped:
            return self.note
        return "ok" if self.ok else f"FAILED ({self.note})"

    @property
    def shown_note(self) -> str:
        """For the table's note column."""
        return self.note if self.ok or self.skipped else f"FAILED: {self.note}"


class TreeSampler:
    """Peak memory of a process and all its descendants, and their CPU time.

    Memory: the peak of the sum of their RSS (pages shared between processes,
    such as the libraries' code, counted once per process), of the sum of their
    PSS (shared pages split between the processes sharing them: the tree's real
    footprint), and the largest single RSS. CPU time is summed over every process
    seen, at its last sample: worker processes that their parent never waits for
    escape ``RUSAGE_CHILDREN``.

    RSS is read every 50 ms (``/proc/PID/statm``: microseconds). PSS is read
    every ``PSS_EVERY_S``: the kernel walks every page of the process for it
    (2.5 ms for a 400 MB process), and every 50 ms over four processes that took
    a tenth of a 2-core machine from the job being measured.
    """

    PSS_EVERY_S = 0.5

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.tree_peak = 0
        self.pss_peak = 0
        self.proc_peak = 0
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.pid)
            next_pss = 0.0
            while not self._stop.wait(0.05):
                with_pss = time.monotonic() >= next_pss
                if with_pss:
                    next_pss = time.monotonic() + self.PSS_EVERY_S
                total = pss = 0
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        memory = proc.memory_full_info() if with_pss else proc.memory_info()
                        total += memory.rss
                        pss += getattr(memory, "pss", memory.rss)  # PSS: Linux only
                        self.proc_peak = max(self.proc_peak, memory.rss)
                        times = proc.cpu_times()
                        self.cpu[proc.pid] = times.user + times.system
                self.tree_peak = max(self.tree_peak, total)
                if with_pss:
                    self.pss_peak = max(self.pss_peak, pss)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(cell: Measured, cmd: list[str], log: Path, cwd: Path | None = None) -> str:
    """Run ``cmd`` to completion, filling the cell's wall, memory and CPU; its stdout."""
    cpu = children_cpu_s()
    started = time.perf_counter()
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=err)
        sampler = TreeSampler(proc.pid)
        out, _ = proc.communicate()
        sampler.stop()
    cell.wall_s = time.perf_counter() - started
    cell.cpu_s = max(children_cpu_s() - cpu, sum(sampler.cpu.values()))  # both lower bounds
    cell.tree_mb, cell.proc_mb = sampler.tree_peak / 2**20, sampler.proc_peak / 2**20
    cell.pss_mb = sampler.pss_peak / 2**20
    if proc.returncode == 0:
        cell.rows_per_s = cell.rows / cell.wall_s
    else:
        tail = log.read_text(errors="replace").strip().splitlines()[-6:]
        cell.ok, cell.note = False, f"exit {proc.returncode}: " + " | ".join(tail)[-400:]
    return out.decode(errors="replace")


def measure_json(cell: Measured, cmd: list[str], log: Path) -> dict[str, Any]:
    """`measure` a command that ends by printing JSON (a child, ``atoll ... --json``); that JSON."""
    return last_json(measure(cell, cmd, log))


# ------------------------------------------------------------------ a script's --child mode
def child_cmd(python: Path | str, script: str, kind: str, /, **args: Any) -> list[str]:
    """The command that runs ``script --child kind`` under ``python`` with ``args`` as JSON."""
    return [str(python), script, "--child", kind, json.dumps(args, default=str)]


def main_or_child(
    main: Callable[[], int], run_child: Callable[[str, dict[str, Any]], dict[str, Any]]
) -> int:
    """Run a script: its ``main``, or, when `child_cmd` started it, the one variant asked for.

    A child's result goes to stdout as one JSON line, with the child's own peak
    RSS added, for the parent to read with `measure_json`.
    """
    if sys.argv[1:2] != ["--child"]:
        return main()
    _, _, kind, raw = sys.argv
    result = run_child(kind, json.loads(raw))
    result["peak_self_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))
    return 0


def last_json(out: str) -> dict[str, Any]:
    """The last JSON object printed: one line, or indented (``atoll ... --json``)."""
    lines = out.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("{")]
    result: dict[str, Any] = json.loads("\n".join(lines[starts[-1] :])) if starts else {}
    return result


def last_line(text: str, default: str) -> str:
    """The last line of a failed command's stderr: usually the reason it gives."""
    return (text.strip().splitlines() or [default])[-1]


# ------------------------------------------------------------------ a competing tool's venv
def separate_venv(
    folder: Path, tool: str, packages: list[str], check: str
) -> tuple[Path | None, str]:
    """The python of a venv holding ``packages``, or None and why ``tool`` is skipped.

    A competing tool gets its own venv so that its dependencies neither change
    atoll's nor are counted as atoll's. The venv is built once and reused while
    the ``check`` code runs in it.
    """
    python = folder / "bin" / "python"
    if python.exists() and runs(python, check):
        return python, ""
    where = folder.relative_to(REPO) if folder.is_relative_to(REPO) else folder
    print(f"creating {where} and installing {tool} (once) ...", file=sys.stderr)
    shutil.rmtree(folder, ignore_errors=True)
    try:
        venv.create(folder, with_pip=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        return None, f"cannot create a venv at {folder}: {exc}"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *packages],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if installed.returncode != 0 or not runs(python, check):
        shutil.rmtree(folder, ignore_errors=True)
        if installed.returncode != 0:
            reason = last_line(installed.stderr, "no output")
        else:
            reason = "it does not import"
        return None, f"pip could not install {' '.join(packages)}: {reason}"
    return python, ""


def runs(python: Path, code: str) -> bool:
    """Whether ``code`` runs without an error under ``python``."""
    done = subprocess.run([str(python), "-c", code], capture_output=True, check=False)
    return done.returncode == 0


# ------------------------------------------------------------------ the model measured
def binary_spec(
    name: str,
    description: str,
    data: str,
    columns: dict[str, Any],
    *,
    categories: dict[str, tuple[str, ...]],
    imputed: list[str],
    target: str,
    params: dict[str, Any],
) -> str:
    """A demo-style spec: ``columns``, then the categories and the binary target; median
    imputation of ``imputed``, one-hot categories, LightGBM with ``params``."""
    import yaml

    columns = dict(columns)
    for column, levels in categories.items():
        columns[column] = {"type": "category", "allowed": list(levels)}
    columns[target] = {"type": "int", "nullable": False}
    spec = {
        "name": name,
        "description": description,
        "task": "binary",
        "target": target,
        "data": {"path": data},
        "columns": columns,
        "features": [
            {"step": "impute", "columns": imputed, "strategy": "median"},
            {"step": "onehot", "columns": list(categories)},
        ],
        "model": {"estimator": "lightgbm.LGBMClassifier", "params": params},
        "split": {"method": "stratified", "test_size": 0.2},
        "evaluate": {"metrics": ["roc_auc"]},
    }
    return yaml.safe_dump(spec, sort_keys=False)


def train(project: Path, sample: Any, data: str, spec: str) -> tuple[str, Any, float]:
    """Write the Arrow ``sample`` to ``project/data``, the spec beside it, and train through
    atoll's API: the model's ``name@version``, the outcome, and the seconds it took."""
    import pyarrow.parquet as pq

    from atoll import api

    (project / "data").mkdir(parents=True)
    pq.write_table(sample, project / data)
    (project / "atoll.yaml").write_text(spec)
    started = time.perf_counter()
    outcome = api.train(project / "atoll.yaml", settings=api.project_settings(project))
    ref = f"{outcome.version.name}@{outcome.version.version}"
    return ref, outcome, time.perf_counter() - started


# ------------------------------------------------------------------ the report
def print_report(
    head: str, lines: Iterable[str], notes: list[str], verdicts: Iterable[str]
) -> None:
    """The table (a header, a rule as wide, a line per run), the notes below it
    (what was injected, what was skipped and why), then the verdicts on the targets."""
    print(head)
    print("-" * len(head))
    for line in lines:
        print(line)
    if notes:
        print()
        for note in notes:
            print(note)
    print()
    for verdict in verdicts:
        print(verdict)


def target(label: str, value: str, goal: str, ok: bool, widths: tuple[int, int, int]) -> str:
    """One verdict line: the figure, its target and whether it is met, in aligned columns."""
    label_w, value_w, goal_w = widths
    return f"    {label:<{label_w}} {value:>{value_w}}   target {goal:<{goal_w}} {mark(ok)}"


def mark(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def print_load_at_start() -> None:
    """Other work on the machine skews every figure: say how busy it was."""
    print(f"{os.cpu_count()} CPUs, load average {load_average()} at start", file=sys.stderr)


def finish(cells: Iterable[Measured]) -> int:
    """Print the load at the end; the exit code: 1 when any run failed."""
    print(
        f"\nload average {load_average()} at the end (2 cores: above ~0.5 of other work, distrust)"
    )
    return 0 if all(c.ok for c in cells) else 1


def load_average() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())
