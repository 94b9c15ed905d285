"""The example DAGs in dags/: they parse anywhere, and the daily one does the job through Airflow.

The end-to-end test runs ``stripe_finance_daily`` with ``dag.test()`` (Airflow's own run loop and
task runner, a migrated metadata DB) for two consecutive days against the fake Stripe over HTTP
and a real PostgreSQL, then checks every table against the fake Stripe's objects and the payout
reconciliation view.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from airflow_provider_mantrix.fake_stripe import FakeStripe
from airflow_provider_mantrix.resources import get_resource
from tests.conftest import DAY, FAKE_NOW

DAGS = Path(__file__).resolve().parents[1] / "dags"
UTC = dt.timezone.utc
DAILY_RESOURCES = {
    "customers",
    "invoices",
    "subscriptions",
    "charges",
    "refunds",
    "disputes",
    "balance_transactions",
    "payouts",
    "payout_balance_transactions",
}


def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    # safe_mode=False: import every .py file, not only those that look like they define a DAG.
    return DagBag(dag_folder=str(DAGS), safe_mode=False)


@pytest.fixture
def no_network_no_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing must not need a connection, the network or Airflow's database."""
    import sqlalchemy.engine.base

    for name in list(__import__("os").environ):
        if name.startswith("AIRFLOW_CONN_"):
            monkeypatch.delenv(name)

    def refuse(*args, **kwargs):
        raise AssertionError("a DAG file used the network or a database while being parsed")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(sqlalchemy.engine.base.Engine, "connect", refuse)
    monkeypatch.setattr(sqlalchemy.engine.base.Engine, "raw_connection", refuse)
    monkeypatch.setattr(psycopg.Connection, "connect", refuse)


# -- parsing --------------------------------------------------------------------------------------


def test_every_dag_file_imports_without_connections_network_or_database(no_network_no_database) -> None:
    bag = dag_bag()
    assert bag.import_errors == {}
    assert {path.name for path in DAGS.glob("*.py")} <= {Path(f).name for f in bag.file_last_changed}
    assert {"stripe_finance_daily", "stripe_finance_full_refresh"} <= set(bag.dags)
    assert Path(bag.dags["stripe_finance_daily"].fileloc) == DAGS / "stripe_finance_daily.py"


def test_daily_dag_shape() -> None:
    from airflow.sdk import CronDataIntervalTimetable

    dag = dag_bag().dags["stripe_finance_daily"]
    loads = {f"load_{name}" for name in DAILY_RESOURCES}
    assert set(dag.task_ids) == loads | {"refresh_payout_reconciliation", "check_payouts_reconcile"}

    # Real UTC days: Airflow 3's schedule="@daily" would give empty data intervals.
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("0 0 * * *", "UTC")
    assert dag.start_date == dt.datetime(2025, 1, 1, tzinfo=UTC)
    assert dag.catchup is False and dag.max_active_runs == 1
    assert {"stripe", "finance"} <= set(dag.tags)
    assert "stripe.payout_reconciliation" in dag.doc_md and "airflow backfill create" in dag.doc_md

    for task_id in loads:
        task = dag.get_task(task_id)
        assert task.pool == "stripe_api"
        assert (task.stripe_conn_id, task.postgres_conn_id, task.schema) == (
            "stripe_default",
            "postgres_default",
            "stripe",
        )
        assert task.retries == 3 and task.retry_exponential_backoff
        assert task.max_retry_delay == dt.timedelta(minutes=30)
    refresh = dag.get_task("refresh_payout_reconciliation")
    assert refresh.upstream_task_ids == {"load_payouts", "load_payout_balance_transactions"}
    assert refresh.pool == "default_pool"  # PostgreSQL only: not in the Stripe pool
    assert dag.get_task("check_payouts_reconcile").upstream_task_ids == {"refresh_payout_reconciliation"}
    assert dag.get_task("check_payouts_reconcile").retries == 0


def test_connections_schema_pool_and_retries_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("MANTRIX_STRIPE_CONN_ID", "stripe_finance")
    monkeypatch.setenv("MANTRIX_POSTGRES_CONN_ID", "warehouse")
    monkeypatch.setenv("MANTRIX_STRIPE_SCHEMA", "stripe_raw")
    monkeypatch.setenv("MANTRIX_STRIPE_POOL", "default_pool")
    monkeypatch.setenv("MANTRIX_RETRIES", "1")
    dag = dag_bag().dags["stripe_finance_daily"]
    task = dag.get_task("load_invoices")
    assert (task.stripe_conn_id, task.postgres_conn_id, task.schema, task.pool, task.retries) == (
        "stripe_finance",
        "warehouse",
        "stripe_raw",
        "default_pool",
        1,
    )
    assert dag.get_task("refresh_payout_reconciliation").conn_id == "warehouse"
    assert [outlet.uri for outlet in task.outlets] == ["mantrix-postgres://warehouse/stripe_raw/invoices"]


def test_a_schema_that_would_need_quoting_is_an_import_error(monkeypatch) -> None:
    monkeypatch.setenv("MANTRIX_STRIPE_SCHEMA", 'Stripe"; DROP')
    errors = dag_bag().import_errors
    assert len(errors) == 1 and "MANTRIX_STRIPE_SCHEMA" in next(iter(errors.values()))


# -- the job, through Airflow ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def airflow_db() -> None:
    """Airflow's metadata DB (conftest's sqlite in a throwaway AIRFLOW_HOME), migrated once."""
    from airflow.utils import db

    db.initdb()


@pytest.fixture
def through_airflow(airflow_db, schema: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Settings for dag.test(): the DAG reads the test's schema and fails at once instead of retrying."""
    monkeypatch.setenv("MANTRIX_STRIPE_SCHEMA", schema)
    monkeypatch.setenv("MANTRIX_RETRIES", "0")
    # dag.test() syncs the DAG's bundle to the metadata DB: the dags/ folder of this repository.
    bundles = [
        {
            "name": "dags-folder",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(DAGS)},
        }
    ]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    return schema


def created_in(store: FakeStripe, resource: str, start: int, end: int) -> set[str]:
    return {obj["id"] for obj in store.objects(resource) if start <= obj["created"] < end}


def changed_in(store: FakeStripe, resource: str, start: int, end: int) -> set[str]:
    spec = get_resource(resource)
    types = {*spec.update_events, *spec.delete_events}
    return {
        event["data"]["object"]["id"]
        for event in store.objects("events")
        if start <= event["created"] < end and event["type"] in types
    }


def paid_out_by(store: FakeStripe, payouts: set[str]) -> set[str]:
    """Ids of the balance transactions the payouts paid out (the fake's own bookkeeping)."""
    with store.lock:
        records = store.dataset()["balance_transactions"].records
        return {record.id for record in records if record.fields.get("payout") in payouts}


def table(pg: psycopg.Connection, schema: str, name: str, columns: str = "id, created") -> list[tuple]:
    return pg.execute(sql.SQL(f"SELECT {columns} FROM {{}}").format(sql.Identifier(schema, name))).fetchall()


def test_daily_dag_loads_two_days_through_airflow_and_every_payout_reconciles(
    through_airflow: str, stripe_store: FakeStripe, stripe_server, pg: psycopg.Connection
) -> None:
    schema = through_airflow
    stripe_store.seed(customers=40, days=10)
    dag = dag_bag().dags["stripe_finance_daily"]
    start, end = FAKE_NOW - 2 * DAY, FAKE_NOW

    for logical_date in (FAKE_NOW - DAY, FAKE_NOW):
        run = dag.test(logical_date=dt.datetime.fromtimestamp(logical_date, UTC))
        assert run.state == "success", {ti.task_id: ti.state for ti in run.get_task_instances()}
        # A manual run of a CronDataIntervalTimetable DAG covers the day before its logical date.
        assert (run.data_interval_start.timestamp(), run.data_interval_end.timestamp()) == (
            logical_date - DAY,
            logical_date,
        )

    for resource in DAILY_RESOURCES - {"payout_balance_transactions"}:
        rows = {row[0]: row[1].timestamp() for row in table(pg, schema, resource)}
        created = created_in(stripe_store, resource, start, end)
        assert {i for i, c in rows.items() if start <= c < end} == created, resource
        # Besides what was created, the objects those days changed: paid invoices, paid payouts, ...
        assert set(rows) == created | changed_in(stripe_store, resource, start, end), resource
    assert created_in(stripe_store, "charges", start, end), "the two days have data"

    payouts = created_in(stripe_store, "payouts", start, end)
    assert len(payouts) == 2  # one automatic payout a day
    links = table(pg, schema, "payout_balance_transactions", "id, payout")
    assert {i for i, _ in links} == paid_out_by(stripe_store, payouts)
    assert {p for _, p in links} == payouts

    view = table(
        pg, schema, "payout_reconciliation", "id, amount, transactions_net, difference, agrees, note"
    )
    judged = {row[0]: row for row in view if row[4] is not None}
    assert set(judged) == payouts
    for payout_id, amount, net, difference, agrees, note in judged.values():
        assert (net, difference, agrees, note) == (amount, 0, True, None), payout_id
    # A payout created before the two days but paid on them is in `payouts` without its transactions.
    for payout_id, _, net, _, agrees, note in view:
        if payout_id not in payouts:
            assert (net, agrees) == (None, None) and note.startswith("transactions not loaded")

    # The check names a payout whose transactions stop adding up, and fails without retrying.
    from airflow.sdk.exceptions import AirflowFailException

    from_dags = dag.get_task("check_payouts_reconcile").python_callable
    broken = sorted(payouts)[0]
    pg.execute(
        sql.SQL(
            "UPDATE {} SET net = net + 1 WHERE id = (SELECT min(id) FROM {} WHERE payout = %s AND type <> 'payout')"
        ).format(
            sql.Identifier(schema, "payout_balance_transactions"),
            sql.Identifier(schema, "payout_balance_transactions"),
        ),
        (broken,),
    )
    window = {
        "data_interval_start": dt.datetime.fromtimestamp(start, UTC),
        "data_interval_end": dt.datetime.fromtimestamp(end, UTC),
    }
    with pytest.raises(
        AirflowFailException, match=rf"1 of 2 payouts do not reconcile.*{broken} .*difference -1"
    ):
        from_dags(**window)


def test_reconciliation_leaves_out_a_payouts_own_transactions_and_judges_only_complete_data(
    through_airflow: str, stripe_store: FakeStripe, stripe_server, pg: psycopg.Connection
) -> None:
    """Failed, manual and still-reconciling payouts, made up in the tables the view reads."""
    schema = through_airflow
    stripe_store.seed(customers=5, days=3)
    run = dag_bag().dags["stripe_finance_daily"].test(logical_date=dt.datetime.fromtimestamp(FAKE_NOW, UTC))
    assert run.state == "success"

    def payout(pid, amount, status="paid", automatic=True, reconciliation="completed", failure=None):
        pg.execute(
            sql.SQL(
                "INSERT INTO {} (id, amount, currency, status, automatic, reconciliation_status, created, "
                "balance_transaction, failure_balance_transaction) VALUES (%s, %s, 'gbp', %s, %s, %s, now(), %s, %s)"
            ).format(sql.Identifier(schema, "payouts")),
            (pid, amount, status, automatic, reconciliation, f"txn_{pid}_own", failure),
        )

    def txn(tid, pid, net, kind="charge", source=None):
        pg.execute(
            sql.SQL(
                "INSERT INTO {} (id, payout, amount, fee, net, type, source) VALUES (%s, %s, %s, 0, %s, %s, %s)"
            ).format(sql.Identifier(schema, "payout_balance_transactions")),
            (tid, pid, net, net, kind, source),
        )

    # Failed: its own payout debit and the payout_failure that returned the money are left out.
    payout("po_failed", 1500, status="failed", failure="txn_po_failed_back")
    txn("txn_a", "po_failed", 1000)
    txn("txn_b", "po_failed", 500)
    txn("txn_po_failed_own", "po_failed", -1500, "payout", "po_failed")
    txn("txn_po_failed_back", "po_failed", 1500, "payout_failure", "po_failed")
    # A payout that pays out an earlier payout's returned money: that credit counts.
    payout("po_next", 1700)
    txn("txn_c", "po_next", 200)
    txn("txn_earlier_back", "po_next", 1500, "payout_failure", "po_failed")
    txn("txn_po_next_own", "po_next", -1700, "payout", "po_next")
    # Transactions that do not add up.
    payout("po_short", 900)
    txn("txn_d", "po_short", 800)
    # Not judged: manual, still reconciling, transactions not loaded.
    payout("po_manual", 100, automatic=False)
    payout("po_reconciling", 300, reconciliation="in_progress")
    txn("txn_e", "po_reconciling", 100)
    payout("po_unloaded", 700)

    columns = "id, transaction_count, transactions_net, difference, agrees, note"
    rows = {row[0]: row[1:] for row in table(pg, schema, "payout_reconciliation", columns)}
    assert rows["po_failed"][:4] == (2, 1500, 0, True) and "went back" in rows["po_failed"][4]
    assert rows["po_next"] == (2, 1700, 0, True, None)
    assert rows["po_short"] == (1, 800, 100, False, None)
    assert rows["po_manual"][3] is None and rows["po_manual"][4].startswith("manual payout")
    assert rows["po_reconciling"][3] is None and "still reconciling" in rows["po_reconciling"][4]
    assert rows["po_unloaded"][1:4] == (None, None, None) and rows["po_unloaded"][4].startswith(
        "transactions not loaded"
    )


def test_full_refresh_dag_loads_everything_and_reconciles_every_payout(
    through_airflow: str, stripe_store: FakeStripe, stripe_server, pg: psycopg.Connection
) -> None:
    schema = through_airflow
    stripe_store.seed(customers=20, days=6)
    dag = dag_bag().dags["stripe_finance_full_refresh"]
    run = dag.test(logical_date=dt.datetime.fromtimestamp(FAKE_NOW, UTC))
    assert run.state == "success", {ti.task_id: ti.state for ti in run.get_task_instances()}

    for resource in DAILY_RESOURCES - {"payout_balance_transactions"}:
        assert len(table(pg, schema, resource)) == stripe_store.count(resource), resource
    payouts = {p["id"] for p in stripe_store.objects("payouts")}
    assert len(table(pg, schema, "payout_balance_transactions")) == len(paid_out_by(stripe_store, payouts))
    view = table(pg, schema, "payout_reconciliation", "id, agrees")
    assert len(view) == len(payouts) >= 4 and all(agrees for _, agrees in view)
