"""Bad input, as data engineers and finance analysts really supply it.

Each test asserts the behaviour a user needs: a clear error that names the problem and the fix,
nothing already loaded lost, and the secret key never echoed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from airflow_provider_mantrix.extract import PaginationError
from airflow_provider_mantrix.fake_stripe import (
    ACCOUNT_ID,
    RESTRICTED_TEST_KEY,
    TEST_SECRET_KEY,
    FakeStripe,
    FakeStripeServer,
)
from airflow_provider_mantrix.fake_stripe import server as fake_server
from airflow_provider_mantrix.hooks.stripe import StripeHook, StripeRequestError
from airflow_provider_mantrix.operators.stripe_to_postgres import StripeToPostgresOperator
from tests.conftest import DAY, FAKE_NOW, stripe_connection_json

UTC = dt.timezone.utc
WINDOW = (FAKE_NOW - 3 * DAY, FAKE_NOW - DAY)
SPREAD = (FAKE_NOW - 4 * DAY, FAKE_NOW)
KEY_BODY = TEST_SECRET_KEY[8:-4]  # what must never show up anywhere


def hook_for(monkeypatch, url: str, key: str | None = TEST_SECRET_KEY, **extra) -> StripeHook:
    monkeypatch.setenv("AIRFLOW_CONN_STRIPE_QA", stripe_connection_json(url, key, **extra))
    return StripeHook("stripe_qa", retry_initial_delay=0.01, retry_max_delay=0.02)


def operator(resource: str, schema: str, window=WINDOW, **kwargs) -> StripeToPostgresOperator:
    start, end = window
    return StripeToPostgresOperator(
        task_id=f"load_{resource}",
        resource=resource,
        schema=schema,
        data_interval_start=start,
        data_interval_end=end,
        **kwargs,
    )


def run(resource: str, schema: str, window=WINDOW, **kwargs) -> dict:
    return operator(resource, schema, window, **kwargs).execute(context={})


def count(pg: psycopg.Connection, schema: str, table: str) -> int:
    return pg.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))).fetchone()[0]


def schema_exists(pg: psycopg.Connection, schema: str) -> bool:
    return pg.execute("SELECT to_regnamespace(%s) IS NOT NULL", (f'"{schema}"',)).fetchone()[0]


@pytest.fixture(scope="module")
def shared_server() -> Iterator[FakeStripeServer]:
    """One fake Stripe for hook-only tests that neither seed nor inject faults."""
    with FakeStripeServer(FakeStripe(now=FAKE_NOW, seed=7)) as server:
        yield server


class CannedStripe:
    """A tiny HTTP server answering fixed bodies per path: what a broken proxy or Stripe might send."""

    def __init__(self, routes: dict[str, tuple[int, str]]):
        self.routes = routes

    def __enter__(self) -> CannedStripe:
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = routes.get(self.path.split("?")[0], (404, '{"error":{"message":"no route"}}'))
                payload = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        return self

    def __exit__(self, *exc_info) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


ACCOUNT_BODY = json.dumps({"id": ACCOUNT_ID, "object": "account"})


def list_body(objects, has_more: bool = False) -> str:
    return json.dumps(
        {"object": "list", "data": objects, "has_more": has_more, "url": "/v1/balance_transactions"}
    )


def canned_load(monkeypatch, schema: str, body: str) -> dict:
    """Load balance_transactions (no event replay) from a server whose list answers ``body``."""
    routes = {"/v1/account": (200, ACCOUNT_BODY), "/v1/balance_transactions": (200, body)}
    with CannedStripe(routes) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_STRIPE_DEFAULT", stripe_connection_json(server.url, max_network_retries=0)
        )
        return run("balance_transactions", schema)


# =============================================================================================
# Secret key text
# =============================================================================================

BAD_KEY_TEXT = {
    "tab": (TEST_SECRET_KEY + "\t", "spaces"),
    "leading space": (" " + TEST_SECRET_KEY, "spaces"),
    "pasted twice with a space": (TEST_SECRET_KEY + " " + TEST_SECRET_KEY, "spaces"),
    "Bearer prefix": ("Bearer " + TEST_SECRET_KEY, "spaces"),
    "non-breaking space": (TEST_SECRET_KEY + "\xa0", "spaces"),
    "webhook secret": ("whsec_" + "a" * 32, "not a Stripe secret key"),
    "publishable key": ("pk_test_" + "b" * 40, "publishable"),
    "cyrillic e in prefix": (TEST_SECRET_KEY.replace("test", "t\u0435st", 1), "not in Stripe keys"),
    "byte order mark": ("\ufeff" + TEST_SECRET_KEY, "not in Stripe keys"),
    "quoted": ('"' + TEST_SECRET_KEY + '"', "not a Stripe secret key"),
    "upper-case prefix": ("SK_TEST_" + TEST_SECRET_KEY[8:], "not a Stripe secret key"),
    "dashes": ("sk-test-" + TEST_SECRET_KEY[8:], "not a Stripe secret key"),
    "missing": (None, "empty"),
}


@pytest.mark.parametrize(("key", "says"), list(BAD_KEY_TEXT.values()), ids=list(BAD_KEY_TEXT))
def test_malformed_key_text_is_refused_before_any_request_and_never_echoed(
    monkeypatch, stripe_server, key, says
):
    hook = hook_for(monkeypatch, stripe_server.url, key)
    before = len(stripe_server.requests)
    ok, message = hook.test_connection()
    assert not ok and says in message
    with pytest.raises(ValueError, match=rf"Connection 'stripe_qa': .*{says}") as raised:
        hook.get("/v1/customers")
    assert len(stripe_server.requests) == before
    assert KEY_BODY not in message + str(raised.value)


@pytest.mark.parametrize(
    "key",
    [TEST_SECRET_KEY + TEST_SECRET_KEY, "sk_test_"],
    ids=["pasted twice", "prefix only"],
)
def test_well_formed_but_wrong_keys_are_reported_invalid_without_being_echoed(
    monkeypatch, shared_server, key
):
    hook = hook_for(monkeypatch, shared_server.url, key, max_network_retries=3)
    ok, message = hook.test_connection()
    assert not ok and "invalid (HTTP 401)" in message
    with pytest.raises(
        StripeRequestError, match=r"GET /v1/customers: Stripe rejected the key as invalid \(401\)"
    ) as raised:
        hook.get("/v1/customers")  # not retried: no "after N attempts"
    for text in (message, str(raised.value)):
        assert key[8:-4] not in text or len(key) <= 12


@pytest.mark.parametrize(
    "key", [TEST_SECRET_KEY[:30] + "\u200b" + TEST_SECRET_KEY[30:], TEST_SECRET_KEY + "\u200b"]
)
def test_a_key_with_an_invisible_character_is_refused_before_any_request(monkeypatch, shared_server, key):
    hook = hook_for(monkeypatch, shared_server.url, key, max_network_retries=2)
    ok, message = hook.test_connection()
    assert not ok and "Secret Key" in message
    retries: list[str] = []
    with pytest.raises(ValueError, match="Secret Key"):
        hook.get("/v1/customers", on_retry=retries.append)
    assert retries == []


def test_an_absurdly_long_key_is_refused_before_any_request(monkeypatch, stripe_server):
    hook = hook_for(monkeypatch, stripe_server.url, "sk_test_" + "A" * 100_000)
    before = len(stripe_server.requests)
    ok, message = hook.test_connection()
    assert not ok and "<html" not in message.lower()
    assert len(stripe_server.requests) == before


# =============================================================================================
# Connection extras
# =============================================================================================


@pytest.mark.parametrize("value", ["abc", -1, 1e9, "1e9", [3]])
def test_an_unusable_max_network_retries_fails_the_connection_test(monkeypatch, shared_server, value):
    ok, message = hook_for(monkeypatch, shared_server.url, max_network_retries=value).test_connection()
    assert not ok and "max_network_retries" in message


def test_an_unusable_max_network_retries_is_named_when_a_request_fails(monkeypatch, stripe_server):
    hook = hook_for(monkeypatch, stripe_server.url, max_network_retries="abc")
    stripe_server.fail_next("/v1/customers", [500])
    with pytest.raises(ValueError, match="max_network_retries"):
        hook.get("/v1/customers")


def test_max_network_retries_as_text_or_empty_is_accepted(monkeypatch, stripe_server):
    for value, expected in (("3", 3), ("", 8), (None, 8)):
        assert hook_for(monkeypatch, stripe_server.url, max_network_retries=value).max_retries == expected
    hook = hook_for(monkeypatch, stripe_server.url, max_network_retries="3")
    stripe_server.fail_next("/v1/customers", [500, 503, "drop"])
    assert hook.get("/v1/customers").data["object"] == "list"


@pytest.mark.parametrize("value", [0, -5, "nan", "fast"])
def test_an_unusable_max_requests_per_second_fails_the_connection_test(monkeypatch, shared_server, value):
    ok, message = hook_for(monkeypatch, shared_server.url, max_requests_per_second=value).test_connection()
    assert not ok and "max_requests_per_second" in message


def test_max_requests_per_second_as_text_paces_requests(monkeypatch, shared_server):
    hook = hook_for(monkeypatch, shared_server.url, max_requests_per_second="20")
    assert hook.requests_per_second == 20.0


@pytest.mark.parametrize(
    ("api_base", "says"),
    [
        ("not a url", "API base URL 'not a url' is not an http(s) URL"),
        ("ftp://x", "API base URL 'ftp://x' is not an http(s) URL"),
        ("http://127.0.0.1:1/", "Could not reach Stripe at http://127.0.0.1:1: connection refused"),
    ],
)
def test_an_unreachable_or_malformed_api_base_is_reported_without_raising(monkeypatch, api_base, says):
    ok, message = hook_for(monkeypatch, api_base).test_connection()
    assert not ok and says in message and "API base URL" in message
    assert KEY_BODY not in message


def test_trailing_slashes_on_api_base_are_harmless_and_a_v1_suffix_is_named(monkeypatch, shared_server):
    for suffix in ("/", "///"):
        ok, message = hook_for(monkeypatch, shared_server.url + suffix).test_connection()
        assert ok, message
    ok, message = hook_for(monkeypatch, shared_server.url + "/v1/").test_connection()
    assert not ok and "must not end in /v1" in message


@pytest.mark.parametrize("api_base", ["ftp://x", "not a url"])
def test_a_malformed_api_base_is_not_retried(monkeypatch, api_base):
    retries: list[str] = []
    with pytest.raises(ValueError, match="API base URL"):
        hook_for(monkeypatch, api_base, max_network_retries=2).get("/v1/customers", on_retry=retries.append)
    assert retries == []


@pytest.mark.parametrize("account", ["acct_doesnotexist", "bad id", "acct_1\nX"])
def test_a_wrong_stripe_account_is_named_by_the_connection_test(monkeypatch, shared_server, account):
    ok, message = hook_for(monkeypatch, shared_server.url, stripe_account=account).test_connection()
    assert not ok
    assert "stripe_account" in message or "Stripe-Account" in message
    assert "restricted key" not in message and "network" not in message


def test_a_wrong_stripe_account_fails_a_load_before_writing_anything(monkeypatch, stripe_server, pg, schema):
    monkeypatch.setenv(
        "AIRFLOW_CONN_STRIPE_DEFAULT",
        stripe_connection_json(stripe_server.url, stripe_account="acct_doesnotexist", max_network_retries=3),
    )
    with pytest.raises(
        StripeRequestError, match="does not have access to account 'acct_doesnotexist'"
    ) as raised:
        run("charges", schema)
    assert KEY_BODY not in str(raised.value)
    assert not schema_exists(pg, schema)


@pytest.mark.parametrize("extra", ['["a"]', '"a string"', "5"])
def test_extra_that_is_not_a_json_object_is_named(monkeypatch, extra):
    monkeypatch.setenv(
        "AIRFLOW_CONN_STRIPE_QA",
        json.dumps({"conn_type": "stripe", "password": TEST_SECRET_KEY, "extra": extra}),
    )
    ok, message = StripeHook("stripe_qa").test_connection()
    assert not ok and "extra" in message.lower() and "object" in message.lower()


def test_login_and_host_filled_by_mistake_are_ignored_and_the_key_must_be_the_password(
    monkeypatch, shared_server
):
    conn = {
        "conn_type": "stripe",
        "host": "api.stripe.com",
        "login": "me@corp.example",
        "password": TEST_SECRET_KEY,
    }
    conn["extra"] = {"api_base": shared_server.url}
    monkeypatch.setenv("AIRFLOW_CONN_STRIPE_QA", json.dumps(conn))
    assert StripeHook("stripe_qa").test_connection()[0]
    conn.update(login=TEST_SECRET_KEY, password=None)
    monkeypatch.setenv("AIRFLOW_CONN_STRIPE_QA", json.dumps(conn))
    ok, message = StripeHook("stripe_qa").test_connection()
    assert not ok and "Secret Key is empty" in message and KEY_BODY not in message


# =============================================================================================
# Operator arguments (DAG parse time)
# =============================================================================================


@pytest.mark.parametrize(
    "resource", ["Invoices", "invoice", " invoices", "invoices ", "INVOICES", "", "stripe.invoices"]
)
def test_a_misspelt_resource_fails_at_parse_listing_the_valid_names(resource):
    with pytest.raises(
        ValueError, match=r"Unknown Stripe resource .*Valid resources: balance_transactions, .*invoices"
    ):
        StripeToPostgresOperator(task_id="t", resource=resource)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"concurrency": 0}, "concurrency must be an integer from 1 to 64, got 0"),
        ({"concurrency": -1}, "from 1 to 64, got -1"),
        ({"concurrency": 1000}, "from 1 to 64, got 1000"),
        ({"concurrency": "8"}, "from 1 to 64, got '8'"),
        ({"on_expired_events": "full-refresh"}, "on_expired_events must be 'fail' or 'full_refresh'"),
        ({"on_expired_events": "Fail"}, "got 'Fail'"),
        ({"schema": ""}, "schema name must be a non-empty string"),
        ({"schema": "   "}, "schema name must be a non-empty string"),
        ({"table": ""}, "table name must be a non-empty string"),
        ({"schema": "x" * 64}, "longer than PostgreSQL's 63 bytes"),
        ({"table": "\u00e9" * 32}, "longer than PostgreSQL's 63 bytes"),
        ({"table": "a\x00b"}, "NUL"),
    ],
)
def test_bad_operator_arguments_fail_at_parse_with_what_is_wrong(kwargs, says):
    with pytest.raises(ValueError, match=says.replace("(", r"\(").replace(")", r"\)")):
        StripeToPostgresOperator(task_id="t", resource="invoices", **kwargs)


@pytest.mark.parametrize(
    "kwargs", [{"full_refresh": "false"}, {"full_refresh": "no"}, {"replay_events": "False"}]
)
def test_boolean_flags_given_as_text_fail_at_parse(kwargs):
    with pytest.raises((TypeError, ValueError), match="full_refresh|replay_events"):
        StripeToPostgresOperator(task_id="t", resource="invoices", **kwargs)


def test_schema_none_is_named():
    with pytest.raises(ValueError, match="schema"):
        StripeToPostgresOperator(task_id="t", resource="invoices", schema=None)


def test_odd_but_valid_identifiers_are_quoted_and_reruns_are_idempotent(stripe_store, stripe_server, pg):
    schema, table = f'Fin "Ops".{uuid.uuid4().hex[:6]}', "order"
    stripe_store.seed_bulk("charges", 40, *SPREAD)
    try:
        first = run("charges", schema, table=table)
        again = run("charges", schema, table=table)
        assert first["inserted"] == first["rows"] > 0 and again["inserted"] == 0
        assert count(pg, schema, table) == first["rows"]
    finally:
        pg.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# =============================================================================================
# Data intervals
# =============================================================================================


@pytest.mark.parametrize(
    ("window", "says"),
    [
        ((WINDOW[1], WINDOW[0]), "is after data_interval_end .*swap them"),
        ((WINDOW[0], WINDOW[0]), "The data interval is empty"),
        (("yesterday", WINDOW[1]), "data_interval_start is not a date and time: 'yesterday'"),
        ((WINDOW[0], "11/29/2026"), "data_interval_end is not a date and time: '11/29/2026'"),
        ((dt.datetime(2026, 11, 27), dt.datetime(2026, 11, 29)), "has no time zone; give it in UTC"),
        ((None, None), "data_interval_start must be a datetime, got None"),
        (("1990-01-01", "1990-01-02"), "more than 30 days before Stripe's now"),
    ],
)
def test_bad_intervals_fail_with_what_is_wrong_and_write_nothing(stripe_server, pg, schema, window, says):
    with pytest.raises(ValueError, match=says):
        run("charges", schema, window=window)
    assert not schema_exists(pg, schema)


def test_an_unrendered_default_interval_outside_a_dag_says_it_is_not_a_date(stripe_server, pg, schema):
    op = StripeToPostgresOperator(task_id="t", resource="charges", schema=schema)
    with pytest.raises(
        ValueError, match=r"data_interval_start is not a date and time: '\{\{ data_interval_start \}\}'"
    ):
        op.execute(context={})


def test_date_only_and_naive_iso_strings_are_read_as_utc(stripe_store, stripe_server, pg, schema):
    stripe_store.seed_bulk("charges", 40, *SPREAD)
    summary = run("charges", schema, window=("2026-11-27", "2026-11-29T00:00:00"))
    assert summary["window_start"] == "2026-11-27T00:00:00+00:00"
    assert summary["window_end"] == "2026-11-29T00:00:00+00:00"


def test_unix_seconds_rendered_as_text_are_accepted(stripe_store, stripe_server, pg, schema):
    summary = run("charges", schema, window=(str(WINDOW[0]), str(WINDOW[1])))
    assert summary["window_start"] == dt.datetime.fromtimestamp(WINDOW[0], UTC).isoformat()


def test_epoch_milliseconds_are_named(stripe_server, pg, schema):
    with pytest.raises(ValueError, match="data_interval_start"):
        run("charges", schema, window=(WINDOW[0] * 1000, WINDOW[1] * 1000))


def test_a_window_in_the_future_fails_instead_of_loading_nothing(stripe_store, stripe_server, pg, schema):
    stripe_store.seed_bulk("charges", 40, *SPREAD)
    with pytest.raises(ValueError):
        run("charges", schema, window=("2030-01-01T00:00:00Z", "2030-01-02T00:00:00Z"))


# =============================================================================================
# The database side
# =============================================================================================


def _existing_table(pg, schema: str, table: str, ddl: str) -> None:
    pg.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    pg.execute(sql.SQL("CREATE TABLE {} (" + ddl + ")").format(sql.Identifier(schema, table)))


def test_incompatible_existing_tables_fail_and_keep_their_rows(stripe_store, stripe_server, pg, schema):
    """No primary key, id integer, an extra NOT NULL column, a view: the load fails, nothing is lost."""
    stripe_store.seed_bulk("charges", 40, *SPREAD)
    cases = {
        "no_pk": "id text, amount bigint",
        "id_int": "id integer PRIMARY KEY, amount bigint",
        "owner_required": "id text PRIMARY KEY, amount bigint, owner text NOT NULL",
    }
    for table, ddl in cases.items():
        _existing_table(pg, schema, table, ddl)
        if table != "id_int":
            pg.execute(
                sql.SQL(
                    "INSERT INTO {} (id, amount, owner) VALUES ('ch_mine', 42, 'me')"
                    if table == "owner_required"
                    else "INSERT INTO {} (id, amount) VALUES ('ch_mine', 42)"
                ).format(sql.Identifier(schema, table))
            )
        before = count(pg, schema, table)
        with pytest.raises((psycopg.Error, ValueError)):
            run("charges", schema, table=table)
        assert count(pg, schema, table) == before
    pg.execute(sql.SQL("CREATE VIEW {} AS SELECT 1 AS x").format(sql.Identifier(schema, "charges_view")))
    with pytest.raises(ValueError, match="charges_view.* is a view, not a table"):
        run("charges", schema, table="charges_view")


def test_a_table_without_a_primary_key_is_named_with_the_fix(stripe_store, stripe_server, pg, schema):
    _existing_table(pg, schema, "no_pk", "id text, amount bigint")
    with pytest.raises(Exception, match=r"(?i)primary key") as raised:
        run("charges", schema, table="no_pk")
    assert "no_pk" in str(raised.value)


def test_an_existing_id_column_of_the_wrong_type_is_named(stripe_store, stripe_server, pg, schema):
    stripe_store.seed_bulk("charges", 10, *SPREAD)
    _existing_table(pg, schema, "charges", "id integer PRIMARY KEY, amount bigint")
    with pytest.raises(Exception, match=f"{schema}.*charges.*id|id.*{schema}.*charges"):
        run("charges", schema)


@pytest.mark.parametrize("column", ["created date", "amount text"])
def test_an_existing_column_of_a_lossy_type_is_not_silently_cast_into(
    stripe_store, stripe_server, pg, schema, column
):
    stripe_store.seed_bulk("charges", 10, *SPREAD)
    _existing_table(pg, schema, "charges", f"id text PRIMARY KEY, {column}")
    with pytest.raises(Exception, match=column.split()[0]):
        run("charges", schema)


@pytest.fixture
def role(pg, postgres_uri, monkeypatch) -> Iterator[str]:
    """A login role without privileges; ``postgres_role`` connects as it."""
    name = f"qa_{uuid.uuid4().hex[:8]}"
    pg.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'qa'").format(sql.Identifier(name)))
    info = conninfo_to_dict(postgres_uri)
    conn = {
        "conn_type": "postgres",
        "host": info.get("host") or "127.0.0.1",
        "port": int(info.get("port") or 5432),
    }
    conn.update(login=name, password="qa", schema=info.get("dbname") or "postgres")
    monkeypatch.setenv("AIRFLOW_CONN_POSTGRES_ROLE", json.dumps(conn))
    yield name
    pg.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
    pg.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_a_read_only_role_fails_with_postgres_own_words_and_changes_nothing(
    stripe_store, stripe_server, pg, schema, role
):
    stripe_store.seed_bulk("charges", 20, *SPREAD)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for database"):
        run("charges", schema, postgres_conn_id="postgres_role")
    loaded = run("charges", schema)["rows"]
    ident = sql.Identifier(schema)
    pg.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ident, sql.Identifier(role)))
    pg.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(ident, sql.Identifier(role)))
    stripe_store.update("charges", stripe_store.objects("charges")[0]["id"], description="changed")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for table charges"):
        run("charges", schema, postgres_conn_id="postgres_role")
    assert count(pg, schema, "charges") == loaded


def test_a_role_allowed_to_create_tables_in_a_pre_created_schema_can_load(
    stripe_store, stripe_server, pg, schema, role
):
    stripe_store.seed_bulk("charges", 20, *SPREAD)
    pg.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    pg.execute(
        sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(sql.Identifier(schema), sql.Identifier(role))
    )
    assert run("charges", schema, postgres_conn_id="postgres_role")["rows"] > 0


def test_a_postgres_connection_pointing_nowhere_fails_clearly(stripe_server, pg, schema, monkeypatch):
    conn = {"conn_type": "postgres", "host": "127.0.0.1", "port": 1, "login": "x", "password": "pg-secret-pw"}
    monkeypatch.setenv("AIRFLOW_CONN_POSTGRES_NOWHERE", json.dumps(conn))
    with pytest.raises(psycopg.OperationalError, match="port 1 failed: Connection refused") as raised:
        run("charges", schema, postgres_conn_id="postgres_nowhere")
    assert "pg-secret-pw" not in str(raised.value)


def test_a_row_stamped_in_the_future_is_not_silently_stuck(stripe_store, stripe_server, pg, schema, caplog):
    stripe_store.seed_bulk("customers", 20, *SPREAD)
    run("customers", schema)
    ident = sql.Identifier(schema, "customers")
    stuck, control = (
        r[0] for r in pg.execute(sql.SQL("SELECT id FROM {} ORDER BY id LIMIT 2").format(ident))
    )
    pg.execute(
        sql.SQL("UPDATE {} SET _updated_at = now() + interval '1 year' WHERE id = %s").format(ident), (stuck,)
    )
    for cid in (stuck, control):
        stripe_store.update("customers", cid, email=f"new-{cid}@example.com")
    summary = run("customers", schema, window=(FAKE_NOW - DAY, FAKE_NOW + 1))  # the change events' window
    emails = dict(pg.execute(sql.SQL("SELECT id, email FROM {}").format(ident)).fetchall())
    assert emails[control] == f"new-{control}@example.com"
    assert emails[stuck] != f"new-{stuck}@example.com"  # an older state never overwrites a newer one...
    assert summary["rows_ahead_of_stripe"] == 1  # ...but the summary (and the task log) say which is stuck


# =============================================================================================
# The Stripe side
# =============================================================================================


def test_a_key_rolled_mid_load_fails_without_retrying_writing_or_echoing(
    stripe_store, stripe_server, pg, schema, monkeypatch, caplog, capsys
):
    caplog.set_level(logging.DEBUG)
    stripe_store.seed_bulk("charges", 450, *SPREAD)
    loaded = run("charges", schema, concurrency=1)["rows"]
    stripe_store.update("charges", stripe_store.objects("charges")[0]["id"], description="changed")
    real_get, pages = StripeHook.get, []

    def get(self, path, params=None, **kwargs):
        if path == "/v1/charges":
            pages.append(path)
            if len(pages) == 2:
                stripe_store.keys.pop(TEST_SECRET_KEY)  # rolled in the Dashboard
        return real_get(self, path, params, **kwargs)

    monkeypatch.setattr(StripeHook, "get", get)
    with pytest.raises(
        StripeRequestError, match=r"GET /v1/charges: Stripe rejected the key as invalid \(401\)"
    ) as raised:
        run("charges", schema, concurrency=1)
    assert count(pg, schema, "charges") == loaded
    out = capsys.readouterr()
    assert KEY_BODY not in str(raised.value) + caplog.text + out.out + out.err


def _without_event_permission(monkeypatch, server: FakeStripeServer):
    real = fake_server.FakeStripeServer._check_permission

    def check(self, key, grant, account, route):
        if grant.restricted and route.resource is not None and route.resource.name == "events":
            raise fake_server.ApiError(
                403,
                f"The provided key '{fake_server.mask_key(key)}' does not have the required permissions for this "
                f"endpoint on account '{account}'. Having the 'rak_event_read' permission would allow this "
                "request to continue.",
            )
        return real(self, key, grant, account, route)

    monkeypatch.setattr(fake_server.FakeStripeServer, "_check_permission", check)
    monkeypatch.setenv("AIRFLOW_CONN_STRIPE_DEFAULT", stripe_connection_json(server.url, RESTRICTED_TEST_KEY))


def test_a_restricted_key_without_events_fails_a_mutable_load_early_naming_the_permission(
    stripe_store, stripe_server, pg, schema, monkeypatch
):
    stripe_store.seed_bulk("invoices", 30, *SPREAD)
    _without_event_permission(monkeypatch, stripe_server)
    with pytest.raises(
        StripeRequestError, match=r"GET /v1/events: the key lacks a permission \(403\).*rak_event_read"
    ):
        run("invoices", schema)
    assert not schema_exists(pg, schema)
    assert run("invoices", schema, replay_events=False)["rows"] > 0


def test_the_connection_test_warns_when_a_restricted_key_cannot_read_events(stripe_server, monkeypatch):
    _without_event_permission(monkeypatch, stripe_server)
    ok, message = StripeHook("stripe_default").test_connection()
    assert "event" in message.lower()


@pytest.mark.parametrize(
    ("body", "error", "says"),
    [
        ("{not json", StripeRequestError, r"Invalid response body from API: \{not json"),
        ("<html>Proxy login</html>", StripeRequestError, "Invalid response body from API: <html>"),
        (list_body(None), PaginationError, "did not answer with a list object"),
        (list_body([], has_more=True), PaginationError, "said has_more with an empty page"),
        (
            list_body([{"id": "txn_1", "object": "balance_transaction"}]),
            PaginationError,
            "'txn_1' created at None",
        ),
        (
            list_body([{"id": "txn_1", "created": str(WINDOW[0] + 5)}]),
            PaginationError,
            "outside the requested window",
        ),
    ],
    ids=["not json", "html", "data null", "has_more without data", "no created", "created as text"],
)
def test_malformed_stripe_answers_fail_clearly_and_write_nothing(monkeypatch, pg, schema, body, error, says):
    with pytest.raises(error, match=says):
        canned_load(monkeypatch, schema, body)
    assert not schema_exists(pg, schema) or count(pg, schema, "balance_transactions") == 0


@pytest.mark.parametrize(
    "body",
    [
        "[]",
        "null",
        list_body(["not an object"]),
        list_body([{"object": "balance_transaction", "created": WINDOW[0] + 5}]),
    ],
    ids=["array", "null", "string item", "no id"],
)
def test_answers_of_the_wrong_shape_fail_with_a_named_error(monkeypatch, pg, schema, body):
    with pytest.raises((PaginationError, StripeRequestError)):
        canned_load(monkeypatch, schema, body)


# =============================================================================================
# Secrecy across failure paths
# =============================================================================================


def test_no_failure_path_shows_the_key(stripe_store, stripe_server, pg, schema, monkeypatch, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    stripe_store.seed_bulk("charges", 30, *SPREAD)
    texts: list[str] = []
    summary = run("charges", schema)
    texts.append(json.dumps(summary))
    op = operator("charges", schema)
    texts += [str(getattr(op, field)) for field in op.template_fields]

    def failing(**extra):
        monkeypatch.setenv(
            "AIRFLOW_CONN_STRIPE_DEFAULT",
            stripe_connection_json(stripe_server.url, max_network_retries=1, **extra),
        )
        hook = StripeHook("stripe_default", retry_initial_delay=0.01)
        texts.append(hook.test_connection()[1])
        try:
            run("charges", schema, full_refresh=True)
        except Exception as error:  # noqa: BLE001 - every failure's text is inspected
            texts.append(f"{type(error).__name__}: {error} {error.__cause__!r}")

    failing(stripe_account="acct_doesnotexist")
    failing(api_base="ftp://x")
    stripe_server.fail_next("/v1/charges", [500, 500])
    failing()
    stripe_server.fail_next("/v1/account", [401, 401])
    failing()
    out = capsys.readouterr()
    everything = "\n".join(texts) + caplog.text + out.out + out.err
    assert len(texts) == 13
    assert KEY_BODY not in everything
