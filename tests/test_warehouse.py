"""The PostgreSQL side on a real server: typed columns, idempotent merges, state ordering, deletions."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from types import MappingProxyType

import psycopg
import pytest
from psycopg import sql

from airflow_provider_mantrix.resources import get_resource
from airflow_provider_mantrix.warehouse import StripeTable

UTC = dt.timezone.utc
INVOICES = get_resource("invoices")


def invoice(id_: str, status: str = "open", **fields) -> dict:
    return {
        "id": id_,
        "object": "invoice",
        "status": status,
        "amount_due": 1000,
        "created": 1795000000,
        "customer": {"id": "cus_A", "object": "customer"},  # expanded: lands as the id
        "livemode": False,
        "lines": {"object": "list", "data": []},
        **fields,
    }


def load(conn: psycopg.Connection, table: StripeTable, objects: list[dict], at: float, **kwargs):
    with conn.transaction(), table.load() as staged:
        staged.stage(objects, observed_at=at, account_id="acct_1", **kwargs)
        return staged.merge()


@pytest.fixture
def conn(postgres_uri: str, schema: str):
    with psycopg.connect(postgres_uri) as conn:
        yield conn


def rows(conn: psycopg.Connection, schema: str, table: str, columns: str = "id, status, _deleted_at"):
    return conn.execute(
        sql.SQL("SELECT " + columns + " FROM {} ORDER BY id").format(sql.Identifier(schema, table))
    ).fetchall()


def test_typed_columns_hold_what_stripe_sent(conn, schema):
    table = StripeTable(conn, INVOICES, schema)
    table.ensure()
    load(conn, table, [invoice("in_1", due_date=1795100000, application_fee_amount=None)], at=1795200000)
    row = conn.execute(
        sql.SQL(
            "SELECT amount_due, created, customer, lines, _raw->'customer'->>'object', _account_id, "
            "_updated_at FROM {}"
        ).format(sql.Identifier(schema, "invoices"))
    ).fetchone()
    assert row[0] == 1000
    assert row[1] == dt.datetime.fromtimestamp(1795000000, UTC)
    assert row[2] == "cus_A"
    assert row[3] == {"object": "list", "data": []}
    assert row[4] == "customer"
    assert row[5] == "acct_1"
    assert row[6] == dt.datetime.fromtimestamp(1795200000, UTC)


def test_decimal_fields_are_numeric(conn, schema):
    prices = StripeTable(conn, get_resource("prices"), schema)
    prices.ensure()
    price = {"id": "price_1", "object": "price", "unit_amount_decimal": "1234.5678901234", "created": 1}
    load(conn, prices, [price], at=2)
    value = conn.execute(sql.SQL("SELECT unit_amount_decimal FROM {}").format(prices.ident)).fetchone()[0]
    assert value == Decimal("1234.5678901234")


def test_merging_the_same_objects_twice_changes_nothing(conn, schema):
    table = StripeTable(conn, INVOICES, schema)
    table.ensure()
    objects = [invoice(f"in_{i}") for i in range(50)]
    first = load(conn, table, objects, at=100)
    before = rows(conn, schema, "invoices", "id, status, _raw, _updated_at")
    second = load(conn, table, objects, at=100)
    assert (first.inserted, second.inserted, second.updated) == (50, 0, 50)
    assert rows(conn, schema, "invoices", "id, status, _raw, _updated_at") == before


def test_duplicates_within_a_batch_keep_the_newest_state(conn, schema):
    table = StripeTable(conn, INVOICES, schema)
    table.ensure()
    with conn.transaction(), table.load() as staged:
        staged.stage([invoice("in_1", "open")], observed_at=100, account_id=None)
        staged.stage([invoice("in_1", "paid")], observed_at=200, account_id=None)
        staged.stage([invoice("in_1", "draft")], observed_at=50, account_id=None)
        result = staged.merge()
    assert result.inserted == 1
    assert rows(conn, schema, "invoices") == [("in_1", "paid", None)]


def test_an_older_state_never_overwrites_a_newer_one(conn, schema):
    table = StripeTable(conn, INVOICES, schema)
    table.ensure()
    load(conn, table, [invoice("in_1", "paid")], at=200)
    load(conn, table, [invoice("in_1", "open")], at=100)  # a backfill replaying older data
    assert rows(conn, schema, "invoices") == [("in_1", "paid", None)]


def test_a_deletion_stub_keeps_the_row_and_its_columns(conn, schema):
    table = StripeTable(conn, get_resource("customers"), schema)
    table.ensure()
    load(conn, table, [{"id": "cus_1", "object": "customer", "email": "a@example.com", "created": 1}], at=100)
    load(conn, table, [{"id": "cus_1", "object": "customer", "deleted": True}], at=200, deleted_at=200)
    assert rows(conn, schema, "customers", "id, email, _deleted_at") == [
        ("cus_1", "a@example.com", dt.datetime.fromtimestamp(200, UTC))
    ]


def test_a_failed_load_leaves_the_table_as_it_was(conn, schema):
    table = StripeTable(conn, INVOICES, schema)
    table.ensure()
    load(conn, table, [invoice("in_1", "open")], at=100)
    with pytest.raises(RuntimeError, match="midway"):
        with conn.transaction(), table.load() as staged:
            staged.stage([invoice("in_1", "paid"), invoice("in_2")], observed_at=200, account_id=None)
            raise RuntimeError("Stripe went away midway")
    assert rows(conn, schema, "invoices") == [("in_1", "open", None)]


def test_a_new_catalogue_column_is_added_to_an_existing_table(conn, schema):
    table = StripeTable(conn, INVOICES, schema)
    table.ensure()
    wider = dataclasses.replace(
        INVOICES, columns=MappingProxyType({**INVOICES.columns, "brand_new": "bigint"})
    )
    StripeTable(conn, wider, schema).ensure()
    load(conn, StripeTable(conn, wider, schema), [invoice("in_1", brand_new=7)], at=1)
    assert rows(conn, schema, "invoices", "id, brand_new") == [("in_1", 7)]


def test_unknown_fields_and_wrong_shapes_land_in_raw_without_breaking_the_load(conn, schema):
    table = StripeTable(conn, INVOICES, schema)
    table.ensure()
    odd = invoice("in_1", amount_due={"value": 5}, not_in_the_catalogue=True, created="yesterday")
    load(conn, table, [odd], at=1)
    row = rows(
        conn, schema, "invoices", "amount_due, created, _raw->'amount_due', _raw->'not_in_the_catalogue'"
    )
    assert row == [(None, None, {"value": 5}, True)]


def test_odd_schema_and_table_names_are_quoted(conn, schema):
    table = StripeTable(conn, INVOICES, schema, 'Invoices "2026"; DROP TABLE x')
    table.ensure()
    load(conn, table, [invoice("in_1")], at=1)
    assert rows(conn, schema, 'Invoices "2026"; DROP TABLE x', "id") == [("in_1",)]


@pytest.mark.parametrize("name", ["", "   ", "x" * 64, "a\x00b"])
def test_unusable_table_names_are_refused_with_the_reason(conn, schema, name):
    with pytest.raises(ValueError, match="table name"):
        StripeTable(conn, INVOICES, schema, name)
