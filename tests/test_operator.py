"""StripeToPostgresOperator end to end: fake Stripe over HTTP into a real PostgreSQL.

Every resource is loaded over a window that needs several pages, then checked against what the
server holds: row count, typed values, idempotent reruns, and windows that add up to a full
refresh.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from airflow_provider_mantrix.extract import PaginationError
from airflow_provider_mantrix.fake_stripe import FakeStripe
from airflow_provider_mantrix.hooks.stripe import StripeRequestError
from airflow_provider_mantrix.operators.stripe_to_postgres import StripeToPostgresOperator
from airflow_provider_mantrix.resources import RESOURCES, Resource
from tests.conftest import DAY, FAKE_NOW

UTC = dt.timezone.utc
STRIPE_RESOURCES = [name for name in RESOURCES if name != "payout_balance_transactions"]
# Objects are spread over four days; the window under test is the middle two.
SPREAD = (FAKE_NOW - 4 * DAY, FAKE_NOW)
WINDOW = (FAKE_NOW - 3 * DAY, FAKE_NOW - DAY)
PER_RESOURCE = 420  # about 210 in the window: three pages of 100 at least


def run(resource: str, schema: str, window=WINDOW, **kwargs) -> dict:
    start, end = window if window else (None, None)
    op = StripeToPostgresOperator(
        task_id=f"load_{resource}",
        resource=resource,
        schema=schema,
        data_interval_start=dt.datetime.fromtimestamp(start, UTC) if start else None,
        data_interval_end=dt.datetime.fromtimestamp(end, UTC) if end else None,
        **kwargs,
    )
    return op.execute(context={})


def table_rows(pg: psycopg.Connection, schema: str, table: str) -> dict[str, dict]:
    query = sql.SQL("SELECT to_jsonb(t) - '_synced_at' FROM {} t").format(sql.Identifier(schema, table))
    return {row["id"]: row for (row,) in pg.execute(query).fetchall()}


def seed(store: FakeStripe, resource: str, count: int = PER_RESOURCE) -> None:
    """Parents first where the resource is listed through them, then the resource itself."""
    spec = RESOURCES[resource]
    if spec.parent:
        store.seed_bulk(spec.parent, 60, SPREAD[0] - 30 * DAY, SPREAD[1])
    store.seed_bulk(resource, count, *SPREAD)


def in_window(store: FakeStripe, resource: str, window=WINDOW) -> dict[str, dict]:
    return {o["id"]: o for o in store.objects(resource) if window[0] <= o["created"] < window[1]}


def check_typed_values(spec: Resource, stored: dict, obj: dict) -> None:
    assert stored["_raw"] == obj
    for name, kind in spec.columns.items():
        value, column = obj.get(name), stored.get(name)
        if value is None:
            assert column is None, name
        elif kind == "timestamptz":
            assert dt.datetime.fromisoformat(column) == dt.datetime.fromtimestamp(value, UTC), name
        elif kind == "ref":
            assert column == (value["id"] if isinstance(value, dict) else value), name
        elif kind == "numeric":
            assert Decimal(str(column)) == Decimal(str(value)), name
        elif kind in ("bigint", "boolean", "text", "jsonb"):
            assert column == value, name


@pytest.mark.parametrize("resource", STRIPE_RESOURCES)
def test_a_window_loads_exactly_the_objects_created_in_it(resource, stripe_store, stripe_server, pg, schema):
    seed(stripe_store, resource)
    expected = in_window(stripe_store, resource)
    assert len(expected) > 200, "the window must need several pages"

    summary = run(resource, schema)

    rows = table_rows(pg, schema, resource)
    assert set(rows) == set(expected)
    assert summary["rows"] == len(expected) and summary["inserted"] == len(expected)
    assert summary["pages"] >= 3
    spec = RESOURCES[resource]
    for object_id in sorted(expected)[:: max(1, len(expected) // 10)]:
        check_typed_values(spec, rows[object_id], expected[object_id])
        assert rows[object_id]["_account_id"] == summary["account_id"]


@pytest.mark.parametrize("resource", ["invoices", "charges", "payment_methods", "subscriptions", "events"])
def test_a_rerun_changes_nothing_and_windows_add_up_to_a_full_refresh(
    resource, stripe_store, stripe_server, pg, schema
):
    seed(stripe_store, resource)
    run(resource, schema)
    first = table_rows(pg, schema, resource)
    again = run(resource, schema)
    assert table_rows(pg, schema, resource) == first
    assert again["inserted"] == 0

    edges = [SPREAD[0] + i * DAY // 2 for i in range(9)]  # eight half-day windows
    for window in zip(edges, edges[1:], strict=False):
        run(resource, schema, window=window, table=f"{resource}_windows")
    run(resource, schema, window=None, full_refresh=True, table=f"{resource}_full")
    windows = table_rows(pg, schema, f"{resource}_windows")
    full = table_rows(pg, schema, f"{resource}_full")
    assert set(windows) == set(full) == {o["id"] for o in stripe_store.objects(resource)}


def test_canceled_subscriptions_inactive_prices_and_every_customers_payment_methods_land(
    stripe_store, stripe_server, pg, schema
):
    stripe_store.seed(customers=40, days=10)
    for resource in ("subscriptions", "prices", "payment_methods"):
        run(resource, schema, window=None, full_refresh=True)
    statuses = {
        s
        for (s,) in pg.execute(
            sql.SQL("SELECT status FROM {}").format(sql.Identifier(schema, "subscriptions"))
        )
    }
    assert "canceled" in statuses
    actives = {
        a for (a,) in pg.execute(sql.SQL("SELECT active FROM {}").format(sql.Identifier(schema, "prices")))
    }
    assert actives == {True, False}
    methods = table_rows(pg, schema, "payment_methods")
    assert set(methods) == {o["id"] for o in stripe_store.objects("payment_methods")}
    customers_with_methods = {m["customer"] for m in methods.values()}
    assert len(customers_with_methods) == len(
        {o["customer"] for o in stripe_store.objects("payment_methods")}
    )


def test_rate_limits_and_server_errors_are_retried_without_losing_or_doubling_rows(
    stripe_store, stripe_server, pg, schema
):
    seed(stripe_store, "charges")
    stripe_server.fail_next("/v1/charges", [429, "lock_timeout", "drop"])  # the connection allows 3 retries
    summary = run("charges", schema, concurrency=1)
    assert set(table_rows(pg, schema, "charges")) == set(in_window(stripe_store, "charges"))
    assert summary["rows"] == len(in_window(stripe_store, "charges"))
    assert summary["retries"] == 3
    assert sum(1 for r in stripe_server.requests if r.status == 429) == 2


def test_when_retries_run_out_the_task_fails_and_the_table_is_unchanged(
    stripe_store, stripe_server, pg, schema, monkeypatch
):
    seed(stripe_store, "charges")
    run("charges", schema)
    before = table_rows(pg, schema, "charges")
    stripe_store.update("charges", next(iter(before)), description="changed after the first load")
    stripe_server.fail_next("/v1/charges", ["drop"] + [503] * 10)
    with pytest.raises(
        StripeRequestError, match=r"GET /v1/charges after 4 attempts: Stripe server error \(503\)"
    ):
        run("charges", schema, concurrency=1)
    assert table_rows(pg, schema, "charges") == before


def test_pagination_that_does_not_advance_fails_instead_of_looping(stripe_store, stripe_server, pg, schema):
    stripe_store.seed(customers=30, days=5)
    customer = stripe_store.objects("payment_methods")[0]["customer"]
    stripe_server.break_pagination(f"/v1/customers/{customer}/payment_methods")  # has_more forever
    with pytest.raises(PaginationError, match="not advancing"):
        run("payment_methods", schema, window=None, full_refresh=True)
    stripe_server.break_pagination("/v1/invoices")
    with pytest.raises(PaginationError, match="not advancing|empty page"):
        run("invoices", schema, window=None, full_refresh=True)
    assert table_rows(pg, schema, "invoices") == {}, "a failed load writes nothing"


def test_more_objects_in_one_second_than_a_page_are_all_loaded(stripe_store, stripe_server, pg, schema):
    second = WINDOW[0] + 5000
    stripe_store.seed_bulk("refunds", 350, second, second + 1)
    stripe_store.seed_bulk("refunds", 150, *WINDOW)
    run("refunds", schema)
    assert set(table_rows(pg, schema, "refunds")) == set(in_window(stripe_store, "refunds"))


def test_an_empty_data_interval_fails_with_what_to_do(stripe_server, pg, schema):
    with pytest.raises(ValueError, match="CronDataIntervalTimetable"):
        run("invoices", schema, window=(WINDOW[0], WINDOW[0]))


def test_an_unknown_resource_fails_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match="Valid resources: balance_transactions, charges"):
        StripeToPostgresOperator(task_id="x", resource="invoice")


def test_the_summary_names_window_account_and_mode(stripe_store, stripe_server, pg, schema):
    seed(stripe_store, "payouts", 30)
    summary = run("payouts", schema)
    json.dumps(summary)  # an XCom must serialise
    assert summary["mode"] == "test" and summary["account_id"].startswith("acct_")
    assert summary["window_start"] == dt.datetime.fromtimestamp(WINDOW[0], UTC).isoformat()
    assert summary["window_end"] == dt.datetime.fromtimestamp(WINDOW[1], UTC).isoformat()


def test_slices_of_one_resource_can_load_in_parallel_tasks(stripe_store, stripe_server, pg, schema):
    """What dynamic task mapping over time slices does: concurrent tasks, one table, no lock-up."""
    from concurrent.futures import ThreadPoolExecutor

    seed(stripe_store, "invoices")
    edges = [SPREAD[0] + i * DAY for i in range(5)]
    with ThreadPoolExecutor(4) as pool:
        summaries = list(
            pool.map(
                lambda w: run("invoices", schema, window=w, concurrency=2),
                zip(edges, edges[1:], strict=False),
            )
        )
    assert sum(s["inserted"] for s in summaries) == len(stripe_store.objects("invoices"))
    assert set(table_rows(pg, schema, "invoices")) == {o["id"] for o in stripe_store.objects("invoices")}


def test_payout_transactions_skip_manual_payouts_and_follow_late_reconciliations(
    stripe_store, stripe_server, pg, schema
):
    stripe_store.seed(customers=30, days=6)
    stripe_store.now = FAKE_NOW + 3600
    manual = stripe_store.create("payouts", automatic=False)["id"]  # Stripe: 400 for its transactions
    earlier = next(p for p in stripe_store.objects("payouts") if p["automatic"] and p["created"] < FAKE_NOW - DAY)
    stripe_store.emit_event("payout.reconciliation_completed", earlier)
    stripe_store.now = FAKE_NOW + DAY
    stripe_server.clear_requests()

    summary = run("payout_balance_transactions", schema, window=(FAKE_NOW, FAKE_NOW + DAY))

    listed = {r.query.get("payout") for r in stripe_server.requests if r.path == "/v1/balance_transactions"}
    assert manual not in listed and earlier["id"] in listed
    rows = table_rows(pg, schema, "payout_balance_transactions")
    assert rows and {row["payout"] for row in rows.values()} == {earlier["id"]}
    assert summary["rows"] == len(rows)
