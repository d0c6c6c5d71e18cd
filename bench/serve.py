"""Benchmark: `atoll serve` against a bare model endpoint and a hello-world ceiling.

Builds the demo project in a temporary directory (20,000 rows, trained,
promoted), then for each worker count starts, one after the other:

- **hello**: a bare Starlette + uvicorn (uvloop, httptools) endpoint that reads
  the body and answers a constant JSON object: the ceiling of Python HTTP here;
  then, at the top connection count only, the same app on atoll's own HTTP
  layer (`hello-atoll`: uvicorn with `atoll.serve.http_protocol`, which writes
  each connection's response once per event-loop turn), a reference showing
  how much of atoll's speed is that layer;
- **bare**: the same demo model behind a bare Starlette + uvicorn endpoint calling the
  LightGBM booster directly (one OpenMP thread), see `bench/serve_bare_app.py`.
  Route `native` takes atoll's body and builds a one-row DataFrame, then the
  feature matrix with the model's schema check and wrangler; route `encoded`
  takes the already-encoded feature vector (no validation, no wrangling), like
  the peers' bare endpoint in research/anchors/serving: the harder baseline;
- **atoll**: `atoll serve` with an API key (no rate limit) and the prediction
  log on, on its native (`/v1`), KServe V2 (`/v2`) and MLflow (`/invocations`)
  routes; then again with `monitor.log.durability: strict`, native route only.

Load comes from a separate process: wrk (`-t1`, keep-alive) at 1, 16 and 64
connections, one row per request, or the asyncio client at the bottom of this
file when wrk is missing and cannot be installed. Every body is checked to
answer 200 before it is measured. Also measured: the latency of a 1,000-row
request (median of 50 sequential requests over keep-alive) and the peak
resident memory of each server process while it was under load.

The load generator shares the CPUs with the server, and the machine may be
shared with other work: each run also reports the server's CPU time per
request (all its processes; steadier than req/s when the machine is busy) and
`others`, the share of the machine's CPU that went elsewhere during the run:
to processes other than the server and the load generator, or, on a virtual
machine, stolen by the host (figures with a high share are not worth much).

    python bench/serve.py                  # 10 s per cell, workers 1 and 2
    python bench/serve.py --quick          # 3 s per cell
    python bench/serve.py --workers 1 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
LUA = HERE / "serve_wrk.lua"
MODEL = "credit-risk"
NATIVE = f"/v1/models/{MODEL}/predict"
ATOLL_HTTP = "atoll.serve.http_protocol:HardenedHttpProtocol"
"""atoll's HTTP layer (header caps, writes coalesced per loop turn), for the reference hello."""
ROUTES = {"native": NATIVE, "v2": f"/v2/models/{MODEL}/infer", "mlflow": "/invocations"}
BATCH_ROWS = 1_000
BATCH_REPEAT = 50


class BenchError(Exception):
    """A server did not start, or answered an error to a request that must succeed."""


@dataclass(frozen=True)
class Project:
    """The demo project, its API key and the request bodies (files, for the load generator)."""

    root: Path
    key: str
    bodies: dict[str, Path]


@dataclass(frozen=True)
class Cell:
    """One load run: a server, a route, a connection count."""

    server: str
    workers: int
    route: str
    conns: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float
    """Server CPU time (all its processes) per request: steadier than req/s on a busy machine."""
    others: float
    """Share of the machine's CPU that processes other than the server and client used."""


@dataclass
class Extras:
    """Figures that are not load runs, keyed by (server, workers)."""

    batch_ms: dict[tuple[str, int, str], float] = field(default_factory=dict)
    rss_mb: dict[tuple[str, int], tuple[float, int]] = field(default_factory=dict)
    logged: dict[tuple[str, int], int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ project and bodies
def build_project(root: Path) -> Project:
    """Demo data, trained and promoted; a predict key; one body file per request kind."""
    from atoll import api
    from atoll.spec import load_spec
    from atoll.types import ColumnType

    spec_path = api.init_project(root, demo=True, rows=20_000, seed=0)
    settings = api.project_settings(root)
    trained = api.train(spec_path, settings=settings)
    api.promote(f"{trained.version.name}@{trained.version.version}", settings=settings)
    _key, plaintext = api.create_key(
        ["predict"], rate_per_s=0, description="bench/serve.py", settings=settings
    )
    schema = load_spec(spec_path).schema
    rows = api.demo_request_rows(root, 200)
    row = next(r for r in rows if all(v is not None for v in r.values()))
    predictor = api.load(f"{MODEL}@production", settings=settings)
    encoded = predictor.wrangler.matrix(predictor.schema.check([row], "predict"))
    v2_types = {ColumnType.FLOAT: "FP64", ColumnType.INT: "INT64", ColumnType.BOOL: "BOOL"}
    inputs = []
    for name, value in row.items():
        datatype = v2_types.get(schema.columns[name].type, "BYTES")
        data = value if datatype != "BYTES" else str(value)
        inputs.append({"name": name, "datatype": datatype, "shape": [1], "data": [data]})
    many = api.demo_request_rows(root, BATCH_ROWS)
    many = [many[i % len(many)] for i in range(BATCH_ROWS)]
    columns = list(many[0])
    payloads = {
        "native": {"instances": [row]},
        "encoded": {"inputs": encoded.tolist()},
        "v2": {"inputs": inputs},
        "mlflow": {"dataframe_split": {"columns": list(row), "data": [list(row.values())]}},
        "records1000": {"instances": many},
        "columns1000": {"columns": columns, "data": [[r.get(c) for c in columns] for r in many]},
    }
    folder = root / "bodies"
    folder.mkdir()
    bodies = {}
    for name, payload in payloads.items():
        bodies[name] = folder / f"{name}.json"
        bodies[name].write_text(json.dumps(payload), encoding="utf-8")
    return Project(root, plaintext, bodies)


# ------------------------------------------------------------------ servers
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A server process in its own session, its log in a file, its memory sampled."""

    def __init__(self, name: str, workers: int, cmd: list[str], env: dict[str, str], log: Path):
        self.name, self.workers, self.log = name, workers, log
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        argv = [a.replace("{port}", str(self.port)) for a in cmd]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv,
                env=env,
                cwd=HERE,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def wait_ready(self, path: str, timeout_s: float = 120.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with {self.proc.returncode} before it was ready:\n"
                    + self.log_tail()
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + path, timeout=2).status_code == 200:
                    self._sampler.start()
                    return
            time.sleep(0.1)
        raise BenchError(
            f"{self.name}: GET {path} not 200 after {timeout_s:.0f} s\n{self.log_tail()}"
        )

    def _sample(self) -> None:
        import psutil

        root = psutil.Process(self.proc.pid)
        while not self._stop.wait(0.5):
            with contextlib.suppress(psutil.Error):
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        rss = proc.memory_info().rss
                        self._peaks[proc.pid] = max(self._peaks.get(proc.pid, 0), rss)

    def cpu_s(self) -> float:
        """User + system CPU seconds of the server's processes alive now."""
        import psutil

        total = 0.0
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.proc.pid)
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    total += times.user + times.system
        return total

    def peak_rss_mb(self) -> tuple[float, int]:
        """The largest process's peak RSS (a worker's), and how many processes were seen."""
        return max(self._peaks.values(), default=0) / 2**20, len(self._peaks)

    def log_tail(self, lines: int = 15) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join("    | " + line for line in text[-lines:])

    def stop(self) -> None:
        self._stop.set()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self._sampler.is_alive():
            self._sampler.join()


@contextlib.contextmanager
def running(
    name: str, workers: int, cmd: list[str], env: dict[str, str], log: Path, ready: str
) -> Iterator[Server]:
    server = Server(name, workers, cmd, env, log)
    try:
        server.wait_ready(ready)
        yield server
    finally:
        server.stop()


def verify(server: Server, path: str, body: Path, key: str | None) -> None:
    """One request that must answer 200; anything else stops the benchmark."""
    import httpx

    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    response = httpx.post(
        server.base + path, content=body.read_bytes(), headers=headers, timeout=30
    )
    if response.status_code != 200:
        raise BenchError(
            f"{server.name} w{server.workers} POST {path} ({body.name}) answered "
            f"{response.status_code}: {response.text[:2000]}"
        )


def batch_latency(server: Server, path: str, body: Path, key: str | None) -> float:
    """Median milliseconds of sequential requests over one keep-alive connection, after warm-up."""
    import httpx

    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    content = body.read_bytes()
    times = []
    with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
        for i in range(10 + BATCH_REPEAT):
            started = time.perf_counter()
            response = client.post(path, content=content)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise BenchError(
                    f"{server.name} POST {path} ({body.name}) answered "
                    f"{response.status_code}: {response.text[:2000]}"
                )
            if i >= 10:
                times.append(elapsed * 1000)
    return statistics.median(times)


# ------------------------------------------------------------------ load generation
def find_wrk() -> str | None:
    """wrk from PATH, else Debian's package installed quietly (as root or via sudo), else None."""
    found = shutil.which("wrk")
    if found or not shutil.which("apt-get"):
        return found
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if prefix and not shutil.which("sudo"):
        return None
    print("wrk is missing: trying apt-get install wrk ...", file=sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(
        [*prefix, "apt-get", "install", "-y", "-qq", "wrk"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return shutil.which("wrk")


def drive(
    wrk: str | None,
    url: str,
    body: Path | None,
    key: str | None,
    conns: int,
    duration: float,
    capture: bool = False,
) -> dict[str, Any]:
    """One load run from a separate process; the summary the client printed as `WRK {...}`."""
    if wrk:
        env = dict(os.environ, WRK_BODY=str(body or ""), WRK_KEY=key or "")
        env["WRK_CAPTURE"] = "1" if capture else "0"
        cmd = [wrk, "-t1", f"-c{conns}", f"-d{max(1, round(duration))}s", "--timeout", "10s"]
        cmd += ["-s", str(LUA), url]
    else:
        env = dict(os.environ)
        spec = {"url": url, "body": str(body or ""), "key": key or "", "conns": conns}
        spec |= {"duration": duration, "capture": capture}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--load-client", json.dumps(spec)]
    done = subprocess.run(cmd, env=env, capture_output=True, timeout=duration + 120, check=False)
    out = done.stdout.decode("utf-8", errors="replace")
    for line in out.splitlines():
        if line.startswith("WRK "):
            summary: dict[str, Any] = json.loads(line[4:])
            return summary
    raise RuntimeError(
        f"load client failed ({done.returncode}): {out[-500:]} {done.stderr[-500:]!r}"
    )


def machine_busy_s() -> float:
    """CPU seconds (all cores) the machine has spent busy since boot: all but idle and iowait."""
    first = Path("/proc/stat").read_text().splitlines()[0]
    ticks = [int(x) for x in first.split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU used during one load run: by the server, and elsewhere (neither server nor client)."""

    def __init__(self, server: Server):
        self.server = server
        self.wall = time.perf_counter()
        self.busy, self.own = machine_busy_s(), time.process_time()
        self.served = server.cpu_s()
        self.client = self._children()

    @staticmethod
    def _children() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def stop(self) -> tuple[float, float]:
        """(server CPU seconds, share of the machine used by other processes or stolen)."""
        wall = time.perf_counter() - self.wall
        served = self.server.cpu_s() - self.served
        client = self._children() - self.client
        own = time.process_time() - self.own
        others = machine_busy_s() - self.busy - served - client - own
        return served, max(0.0, others) / (wall * (os.cpu_count() or 1))


def bench_routes(
    wrk: str | None,
    server: Server,
    routes: Sequence[tuple[str, str, Path]],
    key: str | None,
    conns_list: Sequence[int],
    duration: float,
    warm_s: float,
    extras: Extras,
) -> list[Cell]:
    cells = []
    for route, path, body in routes:
        verify(server, path, body, key)
        drive(wrk, server.base + path, body, key, 16, warm_s)
        for conns in conns_list:
            meter = CpuMeter(server)
            w = drive(wrk, server.base + path, body, key, conns, duration)
            server_s, others = meter.stop()
            errors = w["connect"] + w["read"] + w["write"] + w["status"] + w["timeout"]
            cell = Cell(
                server.name,
                server.workers,
                route,
                conns,
                w["requests"] / (w["duration_us"] / 1e6),
                w["p50_us"] / 1000,
                w["p99_us"] / 1000,
                errors,
                server_s * 1e6 / max(w["requests"], 1),
                others,
            )
            cells.append(cell)
            print(
                f"  {cell.server:<12} w{cell.workers} {route:<7} c={conns:<3}"
                f" {cell.rps:9,.0f} req/s  p50 {cell.p50_ms:7.2f} ms"
                f"  p99 {cell.p99_ms:7.2f} ms  errors {errors}  server CPU"
                f" {cell.cpu_us:5.0f} us/req  others {others:.0%}",
                file=sys.stderr,
                flush=True,
            )
            if errors:
                extras.problems.append(explain(wrk, server, route, path, body, key, conns, w))
    return cells


def explain(
    wrk: str | None,
    server: Server,
    route: str,
    path: str,
    body: Path,
    key: str | None,
    conns: int,
    w: dict[str, Any],
) -> str:
    """Describe a run's errors: socket error counts, then a short run that records statuses."""
    again = drive(wrk, server.base + path, body, key, conns, 1, capture=True)
    kinds = ", ".join(f"{k} {w[k]}" for k in ("connect", "read", "write", "timeout", "status"))
    return (
        f"{server.name} w{server.workers} {route} c={conns}: {kinds} (status = non-2xx); "
        f"a 1 s rerun saw statuses {again['statuses']}; first error: {again['first_error'][:600]!r}"
    )


# ------------------------------------------------------------------ the run
def atoll_cmd(root: Path, workers: int) -> list[str]:
    serve = ["serve", "--port", "{port}", "--workers", str(workers)]
    return [sys.executable, "-m", "atoll", "-C", str(root), *serve]


def bare_cmd(app: str, workers: int, http: str = "httptools") -> list[str]:
    """A bare app under stock uvicorn (uvloop, httptools), or under ``http``, a protocol class."""
    where = ["--app-dir", str(HERE), "--host", "127.0.0.1", "--port", "{port}"]
    how = ["--workers", str(workers), "--loop", "uvloop", "--http", http]
    quiet = ["--no-access-log", "--log-level", "warning"]
    return [sys.executable, "-m", "uvicorn", f"serve_bare_app:{app}", *where, *how, *quiet]


def log_records(root: Path) -> int:
    """Rows in the project's prediction log (the server flushes it when it stops)."""
    from atoll import api
    from atoll.store.predlog import count_log

    with api.open_registry(api.project_settings(root)) as registry:
        return count_log(registry.engine)


def strict_spec(text: str) -> str:
    """The spec with `monitor: {log: {durability: strict}}` (other monitor settings kept)."""
    import yaml

    spec = yaml.safe_load(text)
    spec.setdefault("monitor", {}).setdefault("log", {})["durability"] = "strict"
    return str(yaml.safe_dump(spec, sort_keys=False))


def run(args: argparse.Namespace, wrk: str | None, scratch: Path) -> tuple[list[Cell], Extras]:
    print("building the demo project (20,000 rows) ...", file=sys.stderr, flush=True)
    project = build_project(scratch / "project")
    spec_file = project.root / "atoll.yaml"
    batched_spec = spec_file.read_text(encoding="utf-8")
    logs = scratch / "logs"
    logs.mkdir()
    env = dict(os.environ)
    bare_env = dict(env, OMP_NUM_THREADS="1", ATOLL_BENCH_PROJECT=str(project.root))
    duration, warm = args.duration, (1.0 if args.quick else 2.0)
    conns = args.connections
    cells: list[Cell] = []
    extras = Extras()
    body = project.bodies
    key = project.key

    def measure(
        name: str,
        workers: int,
        cmd: list[str],
        server_env: dict[str, str],
        ready: str,
        routes: Sequence[tuple[str, str, Path]],
        key: str | None,
        route_conns: Sequence[int],
        after: Callable[[Server], None] | None = None,
    ) -> None:
        print(f"{name}, {workers} worker(s):", file=sys.stderr, flush=True)
        log = logs / f"{name}-w{workers}.log"
        before = log_records(project.root) if key else 0
        with running(name, workers, cmd, server_env, log, ready) as server:
            cells.extend(
                bench_routes(wrk, server, routes, key, route_conns, duration, warm, extras)
            )
            if after:
                after(server)
            extras.rss_mb[(name, workers)] = server.peak_rss_mb()
        if key:
            extras.logged[(name, workers)] = log_records(project.root) - before

    for workers in args.workers:
        measure(
            "hello",
            workers,
            bare_cmd("hello", workers),
            bare_env,
            "/readyz",
            [("hello", "/hello", body["native"])],
            None,
            conns,
        )
        measure(
            "hello-atoll",
            workers,
            bare_cmd("hello", workers, ATOLL_HTTP),
            bare_env,
            "/readyz",
            [("hello", "/hello", body["native"])],
            None,
            [max(conns)],
        )

        def bare_batch(server: Server, workers: int = workers) -> None:
            ms = batch_latency(server, "/predict", body["records1000"], None)
            extras.batch_ms[("bare", workers, "records")] = ms

        measure(
            "bare",
            workers,
            bare_cmd("model", workers),
            bare_env,
            "/readyz",
            [
                ("native", "/predict", body["native"]),
                ("encoded", "/predict-encoded", body["encoded"]),
            ],
            None,
            conns,
            bare_batch,
        )

        def atoll_batch(server: Server, workers: int = workers) -> None:
            for form in ("records", "columns"):
                ms = batch_latency(server, NATIVE, body[f"{form}1000"], key)
                extras.batch_ms[("atoll", workers, form)] = ms

        routes = [(route, path, body[route]) for route, path in ROUTES.items()]
        measure(
            "atoll",
            workers,
            atoll_cmd(project.root, workers),
            env,
            "/readyz",
            routes,
            key,
            conns,
            atoll_batch,
        )
        spec_file.write_text(strict_spec(batched_spec), encoding="utf-8")
        try:
            measure(
                "atoll-strict",
                workers,
                atoll_cmd(project.root, workers),
                env,
                "/readyz",
                [("native", NATIVE, body["native"])],
                key,
                [max(conns)],
            )
        finally:
            spec_file.write_text(batched_spec, encoding="utf-8")
    return cells, extras


# ------------------------------------------------------------------ report
def report(cells: list[Cell], extras: Extras, workers: Sequence[int], top: int) -> None:
    head = (
        f"{'server':<13} {'workers':>7} {'route':<7} {'conns':>5} {'req/s':>9}"
        f" {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'CPU us/req':>10} {'others':>6}"
    )
    print(head)
    print("-" * len(head))
    for c in cells:
        print(
            f"{c.server:<13} {c.workers:>7} {c.route:<7} {c.conns:>5} {c.rps:>9,.0f}"
            f" {c.p50_ms:>8.2f} {c.p99_ms:>8.2f} {c.errors:>7} {c.cpu_us:>10.0f} {c.others:>6.0%}"
        )
    print()

    for w in workers:
        lines = ratios(cells, extras, w, top)
        if lines:
            print("\n".join(lines))
    if extras.problems:
        print("\nerrors under load:")
        for line in extras.problems:
            print("  " + line)


def ratios(cells: list[Cell], extras: Extras, w: int, top: int) -> list[str]:
    """The figures the issue sets targets for, at ``w`` workers and ``top`` connections."""

    def cell(server: str, w: int, route: str) -> Cell | None:
        wanted = (server, w, route, top)
        found = [c for c in cells if (c.server, c.workers, c.route, c.conns) == wanted]
        return found[0] if found else None

    atoll, bare = cell("atoll", w, "native"), cell("bare", w, "native")
    encoded = cell("bare", w, "encoded")
    hello, strict = cell("hello", w, "hello"), cell("atoll-strict", w, "native")
    if atoll is None:
        return []
    lines = [f"{w} worker(s), native route, c={top}, prediction log on:"]

    def add(label: str, value: str, detail: str) -> None:
        lines.append(f"  {label:<34} {value:>9}  {detail}")

    for label, base, goal in (
        ("bare endpoint (DataFrame)", bare, "target >= 3x"),
        # no target: this endpoint skips validation, wrangling, auth and the log
        ("bare, pre-encoded row", encoded, "reference"),
    ):
        if base:
            add(
                f"atoll / {label}",
                f"{atoll.rps / base.rps:.2f}x",
                f"{atoll.rps:,.0f} vs {base.rps:,.0f} req/s, {goal}; server CPU"
                f" per request {atoll.cpu_us:,.0f} vs {base.cpu_us:,.0f} us",
            )
    if hello:
        add(
            "atoll / hello-world ceiling",
            f"{atoll.rps / hello.rps:.0%}",
            f"{atoll.rps:,.0f} vs {hello.rps:,.0f} req/s, target >= 50%",
        )
    hello_ours = cell("hello-atoll", w, "hello")
    if hello_ours:
        add(
            "atoll / hello on atoll's HTTP layer",
            f"{atoll.rps / hello_ours.rps:.0%}",
            f"{atoll.rps:,.0f} vs {hello_ours.rps:,.0f} req/s, reference (no target)",
        )
    bare_p99 = f"; bare, pre-encoded {encoded.p99_ms:.2f} ms" if encoded else ""
    add("atoll p99", f"{atoll.p99_ms:.2f} ms", f"target < 25 ms{bare_p99}")
    if strict:
        add(
            "strict / batched log",
            f"{strict.rps / atoll.rps:.0%}",
            f"{strict.rps:,.0f} vs {atoll.rps:,.0f} req/s, target >= 70%",
        )
    records = extras.batch_ms.get(("atoll", w, "records"))
    if records is not None:
        columns = _ms(extras.batch_ms.get(("atoll", w, "columns")))
        bare_ms = _ms(extras.batch_ms.get(("bare", w, "records")))
        add(
            f"{BATCH_ROWS:,}-row request, records",
            f"{records:.2f} ms",
            f"columns form {columns}; bare (DataFrame) {bare_ms}; median of"
            f" {BATCH_REPEAT}; target < 10 ms",
        )
    rss = ", ".join(
        f"{name} {extras.rss_mb[(name, w)][0]:.0f} MB"
        for name in ("atoll-strict", "bare", "hello")
        if (name, w) in extras.rss_mb
    )
    if ("atoll", w) in extras.logged:
        add(
            "prediction log records",
            f"{extras.logged[('atoll', w)]:,}",
            f"strict run {extras.logged.get(('atoll-strict', w), 0):,} (one per row answered,"
            " warm-up and 1,000-row requests included)",
        )
    if ("atoll", w) in extras.rss_mb:
        add("peak RSS per worker", f"{extras.rss_mb[('atoll', w)][0]:.0f} MB", rss)
    return lines


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ms"


# ------------------------------------------------------------------ fallback load client
@dataclass
class LoadState:
    """What the asyncio client's connections share: the request bytes and the tallies."""

    host: str
    port: int
    request: bytes
    capture: bool
    latencies: list[float] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("connect", "read", "write", "status", "timeout"), 0)
    )
    statuses: dict[str, int] = field(default_factory=dict)
    first_error: str = ""


def load_client(spec: dict[str, Any]) -> None:
    """Keep-alive HTTP/1.1 connections on asyncio streams; prints `WRK {...}` as the Lua does."""
    parts = urlsplit(spec["url"])
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = Path(spec["body"]).read_bytes() if spec["body"] else b""
    head = [f"{'POST' if body else 'GET'} {parts.path} HTTP/1.1", f"Host: {host}:{port}"]
    if body:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    if spec["key"]:
        head.append(f"Authorization: Bearer {spec['key']}")
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    state = LoadState(host, port, request, bool(spec["capture"]))

    async def main() -> float:
        started = time.perf_counter()
        stop_at = started + spec["duration"]
        await asyncio.gather(*(connection(state, stop_at) for _ in range(spec["conns"])))
        return time.perf_counter() - started

    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    wall = asyncio.run(main())
    ordered = sorted(state.latencies) or [0.0]

    def pct(p: float) -> int:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1e6)

    summary: dict[str, Any] = {
        "requests": len(state.latencies),
        "duration_us": round(wall * 1e6),
        **state.counts,
    }
    summary |= {"p50_us": pct(50), "p99_us": pct(99), "max_us": round(ordered[-1] * 1e6)}
    summary |= {"statuses": state.statuses, "first_error": state.first_error}
    print("WRK " + json.dumps(summary))


async def connection(state: LoadState, stop_at: float) -> None:
    """One client connection: request after request until ``stop_at``, reconnecting on errors."""
    while time.perf_counter() < stop_at:
        try:
            reader, writer = await asyncio.open_connection(state.host, state.port)
        except OSError:
            state.counts["connect"] += 1
            await asyncio.sleep(0.01)
            continue
        try:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                writer.write(state.request)
                status, payload = await asyncio.wait_for(read_response(reader), 10)
                state.latencies.append(time.perf_counter() - started)
                if state.capture:
                    state.statuses[str(status)] = state.statuses.get(str(status), 0) + 1
                if status > 399:
                    state.counts["status"] += 1
                    if not state.first_error:
                        state.first_error = f"{status} {payload[:600].decode(errors='replace')}"
        except TimeoutError:
            state.counts["timeout"] += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            state.counts["read"] += 1
        finally:
            writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response (Content-Length or chunked)."""
    status_line = await reader.readline()
    if not status_line:
        raise asyncio.IncompleteReadError(b"", None)
    status = int(status_line.split()[1])
    length, chunked = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length)
    payload = b""
    while size := int((await reader.readline()).split(b";")[0], 16):
        payload += await reader.readexactly(size + 2)
    await reader.readline()
    return status, payload


# ------------------------------------------------------------------ entry point
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s per cell (default 10 s)")
    parser.add_argument("--duration", type=float, help="seconds per cell")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--client", choices=["auto", "asyncio"], default="auto")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir (logs)")
    parser.add_argument("--load-client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_client:
        load_client(json.loads(args.load_client))
        return 0
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    wrk = find_wrk() if args.client == "auto" else None
    client = wrk or "the asyncio client in bench/serve.py (wrk not found)"
    print(
        f"load: {client}, one connection per request stream, {args.duration:g} s per cell,"
        f" {os.cpu_count()} CPUs shared by servers and load generator",
        file=sys.stderr,
    )
    scratch = Path(tempfile.mkdtemp(prefix="atoll-bench-serve-"))
    try:
        cells, extras = run(args, wrk, scratch)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"scratch kept: {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    report(cells, extras, args.workers, max(args.connections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
