"""Tables that stay true: changes and deletions reach the table through Stripe's events.

Day 1 loads everything seeded so far. On day 2 an invoice is paid, another voided, a draft
invoice deleted, a subscription cancelled, a customer updated and another deleted. The day-2
run must leave each of those rows equal to what Stripe now returns, and replaying day 1
afterwards must not bring an old state back.
"""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_provider_mantrix.fake_stripe import FakeStripe
from airflow_provider_mantrix.operators.stripe_to_postgres import StripeToPostgresOperator
from tests.conftest import DAY, FAKE_NOW
from tests.test_operator import table_rows

UTC = dt.timezone.utc
DAY_1 = (FAKE_NOW - 10 * DAY, FAKE_NOW)  # everything the seed created
DAY_2 = (FAKE_NOW, FAKE_NOW + DAY)
RESOURCES = ("invoices", "subscriptions", "customers")


def load(resource: str, schema: str, window, **kwargs) -> dict:
    return StripeToPostgresOperator(
        task_id=f"load_{resource}",
        resource=resource,
        schema=schema,
        data_interval_start=dt.datetime.fromtimestamp(window[0], UTC),
        data_interval_end=dt.datetime.fromtimestamp(window[1], UTC),
        **kwargs,
    ).execute(context={})


def first(store: FakeStripe, resource: str, **match) -> dict:
    return next(o for o in store.objects(resource) if all(o.get(k) == v for k, v in match.items()))


@pytest.fixture
def day_two(stripe_store: FakeStripe, stripe_server, pg, schema):
    """Load day 1, change things on day 2; return the changed ids."""
    stripe_store.seed(customers=40, days=10)
    for resource in RESOURCES:
        load(resource, schema, DAY_1)

    stripe_store.now = FAKE_NOW + 3600
    open_invoices = [o["id"] for o in stripe_store.objects("invoices") if o["status"] == "open"]
    paid, voided = open_invoices[:2]
    draft = first(stripe_store, "invoices", status="draft")["id"]
    canceled = first(stripe_store, "subscriptions", status="active")["id"]
    customers = [o["id"] for o in stripe_store.objects("customers")]
    updated, deleted = customers[0], customers[1]
    stripe_store.pay_invoice(paid)
    stripe_store.void_invoice(voided)
    stripe_store.delete("invoices", draft)
    stripe_store.cancel_subscription(canceled)
    stripe_store.update("customers", updated, email="finance@example.com", name="Renamed Ltd")
    stripe_store.delete("customers", deleted)
    stripe_store.now = FAKE_NOW + DAY + 60
    return {
        "paid": paid,
        "voided": voided,
        "draft": draft,
        "canceled": canceled,
        "updated": updated,
        "deleted": deleted,
    }


def test_day_two_makes_every_changed_row_true(stripe_store, day_two, pg, schema):
    summaries = {resource: load(resource, schema, DAY_2) for resource in RESOURCES}
    assert summaries["invoices"]["events_applied"] > 0

    invoices = table_rows(pg, schema, "invoices")
    for key in ("paid", "voided"):
        row = invoices[day_two[key]]
        assert row["_raw"] == stripe_store.get("invoices", day_two[key])
        assert row["_deleted_at"] is None
    assert invoices[day_two["paid"]]["status"] == "paid"
    assert invoices[day_two["paid"]]["amount_remaining"] == 0
    assert invoices[day_two["voided"]]["status"] == "void"
    assert invoices[day_two["draft"]]["_deleted_at"] is not None
    assert invoices[day_two["draft"]]["status"] == "draft", "a deleted row keeps its last state"

    subscription = table_rows(pg, schema, "subscriptions")[day_two["canceled"]]
    assert subscription["status"] == "canceled" and subscription["_deleted_at"] is None
    assert subscription["_raw"] == stripe_store.get("subscriptions", day_two["canceled"])

    customers = table_rows(pg, schema, "customers")
    assert customers[day_two["updated"]]["_raw"] == stripe_store.get("customers", day_two["updated"])
    assert customers[day_two["updated"]]["email"] == "finance@example.com"
    assert customers[day_two["deleted"]]["_deleted_at"] is not None
    assert customers[day_two["deleted"]]["email"], "the deleted customer keeps its columns"
    # Every other row is what Stripe returns now, and nothing is there twice.
    for resource in RESOURCES:
        rows = table_rows(pg, schema, resource)
        live = {o["id"]: o for o in stripe_store.objects(resource)}
        assert {i for i, r in rows.items() if r["_deleted_at"] is None} == set(live)
        assert all(rows[i]["_raw"] == obj for i, obj in live.items())


def test_replaying_day_one_after_day_two_does_not_bring_back_old_states(stripe_store, day_two, pg, schema):
    for resource in RESOURCES:
        load(resource, schema, DAY_2)
    after_day_two = {resource: table_rows(pg, schema, resource) for resource in RESOURCES}
    for resource in RESOURCES:  # a backfill of day 1, run after day 2
        load(resource, schema, DAY_1)
    for resource in RESOURCES:
        replayed = table_rows(pg, schema, resource)
        for object_id, row in after_day_two[resource].items():
            assert {k: v for k, v in replayed[object_id].items() if k != "_updated_at"} == {
                k: v for k, v in row.items() if k != "_updated_at"
            }, object_id


def test_an_event_rendered_with_another_api_version_is_replaced_by_the_current_object(
    stripe_store, stripe_server, pg, schema
):
    stripe_store.seed(customers=10, days=3)
    load("customers", schema, (FAKE_NOW - 3 * DAY, FAKE_NOW))
    customer = stripe_store.objects("customers")[0]
    stripe_store.now = FAKE_NOW + 60
    stripe_store.update("customers", customer["id"], name="Current Name")
    old_shape = {"id": customer["id"], "object": "customer", "name": "Old Shape", "email": None}
    stripe_store.emit_event("customer.updated", old_shape, api_version="2019-12-03")
    stripe_store.now = FAKE_NOW + DAY
    load("customers", schema, (FAKE_NOW, FAKE_NOW + DAY))
    row = table_rows(pg, schema, "customers")[customer["id"]]
    assert row["name"] == "Current Name"
    assert row["email"] == customer["email"], "a key the old event left out must not null the column"
    assert row["_raw"] == stripe_store.get("customers", customer["id"])


def test_a_window_older_than_stripes_event_retention_fails_loudly(stripe_store, stripe_server, pg, schema):
    stripe_store.seed(customers=5, days=3)
    old = (FAKE_NOW - 40 * DAY, FAKE_NOW - 39 * DAY)
    with pytest.raises(ValueError, match="Stripe keeps events for 30 days.*full_refresh=True"):
        load("invoices", schema, old)


def test_a_window_older_than_retention_can_fall_back_to_a_full_refresh(
    stripe_store, stripe_server, pg, schema
):
    stripe_store.seed(customers=5, days=3)
    old = (FAKE_NOW - 40 * DAY, FAKE_NOW - 39 * DAY)
    summary = load("customers", schema, old, on_expired_events="full_refresh")
    assert summary["full_refresh"] is True
    assert set(table_rows(pg, schema, "customers")) == {o["id"] for o in stripe_store.objects("customers")}


def test_a_full_refresh_marks_rows_stripe_no_longer_lists_as_deleted(stripe_store, stripe_server, pg, schema):
    stripe_store.seed(customers=8, days=3)
    load("customers", schema, (FAKE_NOW - 3 * DAY, FAKE_NOW))
    gone = stripe_store.objects("customers")[0]["id"]
    stripe_store.delete("customers", gone)
    load("customers", schema, (FAKE_NOW - 3 * DAY, FAKE_NOW), full_refresh=True)
    rows = table_rows(pg, schema, "customers")
    assert rows[gone]["_deleted_at"] is not None
    assert sum(r["_deleted_at"] is not None for r in rows.values()) == 1


def test_immutable_resources_read_no_events(stripe_store, stripe_server, pg, schema):
    stripe_store.seed(customers=5, days=3)
    stripe_server.clear_requests()
    load("balance_transactions", schema, (FAKE_NOW - 3 * DAY, FAKE_NOW))
    assert not [r for r in stripe_server.requests if r.path == "/v1/events" and "types[0]" in r.query]
