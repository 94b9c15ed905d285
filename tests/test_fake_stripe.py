"""The fake Stripe server, exercised through the official stripe SDK over HTTP (never mocked)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest
import stripe

from airflow_provider_mantrix.fake_stripe import (
    ACCOUNT_ID,
    ACCOUNT_NAME,
    LIVE_SECRET_KEY,
    NO_PERMISSION_KEY,
    RESTRICTED_LIVE_KEY,
    RESTRICTED_TEST_KEY,
    TEST_SECRET_KEY,
    FakeStripe,
    FakeStripeServer,
    NoSuchObject,
)

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400


def make_client(server: FakeStripeServer, key: str = TEST_SECRET_KEY, **options) -> stripe.StripeClient:
    options.setdefault("max_network_retries", 0)
    return stripe.StripeClient(key, base_addresses={"api": server.url}, **options)


def get(client: stripe.StripeClient, path: str, **params) -> dict:
    """One GET through the SDK, returning the decoded JSON body."""
    return client.raw_request("get", path, **params).data


def walk(client: stripe.StripeClient, path: str, **params) -> list[dict]:
    """Every object of a list, page by page with starting_after, as a client would."""
    objects: list[dict] = []
    while True:
        page = get(client, path, limit=100, **params)
        objects.extend(page["data"])
        if not page["has_more"]:
            return objects
        params["starting_after"] = page["data"][-1]["id"]


@pytest.fixture(scope="module")
def store() -> FakeStripe:
    """A shared, read-only account: 45 days of test-mode and live-mode history."""
    fake = FakeStripe(now=NOW, seed=11)
    fake.seed(customers=150, days=45)
    fake.seed(customers=40, days=45, livemode=True)
    return fake


@pytest.fixture(scope="module")
def server(store: FakeStripe):
    with FakeStripeServer(store) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: FakeStripeServer) -> stripe.StripeClient:
    return make_client(server)


@pytest.fixture
def fresh():
    """A small account of its own, for tests that change data or server settings."""
    fake = FakeStripe(now=NOW, seed=3)
    fake.seed(customers=40, days=20)
    with FakeStripeServer(fake) as running:
        yield fake, running, make_client(running)


# --- lists ------------------------------------------------------------------------------------


def test_list_is_stripe_envelope_newest_first(client):
    page = get(client, "/v1/charges", limit=25)
    assert page["object"] == "list" and page["url"] == "/v1/charges" and page["has_more"] is True
    assert len(page["data"]) == 25
    created = [charge["created"] for charge in page["data"]]
    assert created == sorted(created, reverse=True)
    assert all(charge["object"] == "charge" and charge["id"].startswith("ch_") for charge in page["data"])
    assert len(get(client, "/v1/charges")["data"]) == 10  # Stripe's default limit


def test_sdk_list_objects_and_auto_paging(client, store):
    customers = client.v1.customers.list({"limit": 100})
    assert isinstance(customers, stripe.ListObject)
    ids = [customer.id for customer in customers.auto_paging_iter()]
    assert ids == [customer["id"] for customer in store.objects("customers")]


@pytest.mark.parametrize("limit", [0, 101, "abc"])
def test_limit_out_of_range_is_invalid_request(client, limit):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        get(client, "/v1/customers", limit=limit)
    assert caught.value.http_status == 400 and caught.value.param == "limit"


def test_pagination_returns_every_object_once_both_ways(fresh):
    store, _server, client = fresh
    store.seed_bulk("customers", 1_234, NOW - 400 * DAY, NOW - 100 * DAY)
    expected = [customer["id"] for customer in store.objects("customers")]
    forward = [customer["id"] for customer in walk(client, "/v1/customers")]
    assert forward == expected and len(set(forward)) == len(expected) > 1_234

    backward: list[str] = []
    page = get(client, "/v1/customers", limit=100, ending_before=forward[-1])
    while True:
        backward = [customer["id"] for customer in page["data"]] + backward
        if not page["has_more"]:
            break
        page = get(client, "/v1/customers", limit=100, ending_before=page["data"][0]["id"])
    assert backward == forward[:-1]


def test_created_windows_partition_the_list(client, store):
    everything = store.objects("charges")
    start, end = NOW - 46 * DAY, NOW + 1
    edges = list(range(start, end, 7 * DAY)) + [end]
    windows = list(zip(edges, edges[1:], strict=False))
    parts = [walk(client, "/v1/charges", created={"gte": lo, "lt": hi}) for lo, hi in windows]
    ids = [charge["id"] for part in parts for charge in part]
    assert sorted(ids) == sorted(charge["id"] for charge in everything) and len(ids) == len(set(ids))
    for (lo, hi), part in zip(windows, parts, strict=True):
        assert all(lo <= charge["created"] < hi for charge in part)
    # gt/lte are the same window shifted by one second; an integer means exactly that second
    same = walk(client, "/v1/charges", created={"gt": edges[1] - 1, "lte": edges[2] - 1})
    assert [charge["id"] for charge in same] == [charge["id"] for charge in parts[1]]
    moment = everything[0]["created"]
    exact = walk(client, "/v1/charges", created=moment)
    assert exact and all(charge["created"] == moment for charge in exact)


def test_unknown_cursor_and_parameter_are_rejected(client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        get(client, "/v1/customers", starting_after="cus_doesnotexist01")
    assert caught.value.code == "resource_missing" and "No such customer: 'cus_doesnotexist01'" in str(
        caught.value
    )
    with pytest.raises(stripe.InvalidRequestError) as caught:
        get(client, "/v1/customers", colour="blue")
    assert caught.value.param == "colour" and "Received unknown parameter: colour" in str(caught.value)
    with pytest.raises(stripe.InvalidRequestError):
        get(
            client, "/v1/payment_methods", customer="cus_x", created={"gte": 1}
        )  # Stripe has no created filter here


def test_canceled_subscriptions_hidden_unless_asked_for(client, store):
    statuses = Counter(subscription["status"] for subscription in store.objects("subscriptions"))
    assert statuses["canceled"] > 0 and statuses["active"] > 0
    default = walk(client, "/v1/subscriptions")
    assert {subscription["status"] for subscription in default}.isdisjoint({"canceled", "incomplete_expired"})
    everything = walk(client, "/v1/subscriptions", status="all")
    assert len(everything) == sum(statuses.values())
    canceled = walk(client, "/v1/subscriptions", status="canceled")
    assert len(canceled) == statuses["canceled"] and all(
        sub["canceled_at"] and sub["ended_at"] for sub in canceled
    )


def test_prices_list_active_and_inactive(client):
    everything = walk(client, "/v1/prices")
    inactive = walk(client, "/v1/prices", active="false")
    assert inactive and all(price["active"] is False for price in inactive)
    assert len(walk(client, "/v1/prices", active="true")) + len(inactive) == len(everything)
    plans = {plan["id"]: plan for plan in walk(client, "/v1/plans")}
    for price in everything:
        if price["recurring"]:
            assert (
                plans[price["id"]]["amount"] == price["unit_amount"]
            )  # every recurring price is also a plan


def test_payment_methods_per_customer(client, store):
    assert get(client, "/v1/payment_methods")["data"] == []  # without a customer: Treasury methods only
    owners = Counter(method["customer"] for method in store.objects("payment_methods"))
    customer, count = owners.most_common(1)[0]
    assert count >= 2
    listed = walk(client, "/v1/payment_methods", customer=customer)
    nested = walk(client, f"/v1/customers/{customer}/payment_methods")
    assert len(listed) == count and [m["id"] for m in listed] == [m["id"] for m in nested]
    assert all(method["customer"] == customer for method in listed)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        get(client, "/v1/customers/cus_unknown0000000/payment_methods")
    assert caught.value.http_status == 404


def test_balance_transactions_by_payout_add_up_to_the_payout(client, store):
    payouts = walk(client, "/v1/payouts")
    assert len(payouts) > 20
    for payout in payouts[:10]:
        listed = walk(client, "/v1/balance_transactions", payout=payout["id"])
        own = [txn for txn in listed if txn["type"] == "payout"]
        assert [txn["id"] for txn in own] == [payout["balance_transaction"]] and own[0]["amount"] == -payout[
            "amount"
        ]
        swept = [txn for txn in listed if txn["type"] != "payout"]
        assert swept and sum(txn["net"] for txn in swept) == payout["amount"]
        assert all(txn["available_on"] <= payout["created"] for txn in swept)
    with pytest.raises(stripe.InvalidRequestError):
        get(client, "/v1/balance_transactions", payout="po_doesnotexist")


def test_objects_reference_each_other_consistently(store):
    customers = {customer["id"] for customer in store.objects("customers")}
    intents = {intent["id"]: intent for intent in store.objects("payment_intents")}
    transactions = {txn["id"]: txn for txn in store.objects("balance_transactions")}
    for txn in transactions.values():
        assert txn["net"] == txn["amount"] - txn["fee"]
    for charge in store.objects("charges"):
        assert (
            charge["customer"] in customers
            and intents[charge["payment_intent"]]["latest_charge"] == charge["id"]
        )
        if charge["status"] == "succeeded":
            txn = transactions[charge["balance_transaction"]]
            assert (txn["type"], txn["source"], txn["amount"]) == ("charge", charge["id"], charge["amount"])
    for refund in store.objects("refunds"):
        txn = transactions[refund["balance_transaction"]]
        assert (txn["type"], txn["amount"]) == ("refund", -refund["amount"])
    statuses = {invoice["status"] for invoice in store.objects("invoices")}
    assert {"draft", "open", "paid", "void"} <= statuses
    for invoice in store.objects("invoices"):
        assert invoice["customer"] in customers
        if invoice["status"] == "paid":
            assert (
                invoice["amount_paid"] == invoice["amount_due"] and invoice["status_transitions"]["paid_at"]
            )


def test_seeding_is_deterministic():
    first, second = FakeStripe(now=NOW, seed=5), FakeStripe(now=NOW, seed=5)
    assert first.seed(customers=20, days=10) == second.seed(customers=20, days=10)
    assert first.objects("charges") == second.objects("charges")
    assert first.objects("events") == second.objects("events")


# --- events -----------------------------------------------------------------------------------


def test_events_filter_by_types_and_wildcard(client):
    chosen = walk(client, "/v1/events", types=["invoice.paid", "customer.created"])
    assert {event["type"] for event in chosen} == {"invoice.paid", "customer.created"}
    invoices = walk(client, "/v1/events", type="invoice.*")
    assert invoices and all(event["type"].startswith("invoice.") for event in invoices)
    created = chosen[0]
    assert created["object"] == "event" and created["api_version"] and created["data"]["object"]["id"]


def test_events_older_than_30_days_are_gone(client, store):
    cutoff = NOW - 30 * DAY
    old = [event for event in store.objects("events") if event["created"] < cutoff]
    assert old  # seeded history is 45 days long
    listed = walk(client, "/v1/events")
    assert listed and min(event["created"] for event in listed) >= cutoff
    assert get(client, "/v1/events", created={"lt": cutoff})["data"] == []
    with pytest.raises(stripe.InvalidRequestError) as caught:
        get(client, f"/v1/events/{old[0]['id']}")
    assert caught.value.http_status == 404 and caught.value.code == "resource_missing"


# --- mutations --------------------------------------------------------------------------------


def test_customer_update_emits_event_with_previous_attributes(fresh):
    store, _server, client = fresh
    customer = store.objects("customers")[0]
    store.advance(60)
    store.update("customers", customer["id"], email="new@example.com", metadata={"tier": "gold"})
    assert get(client, f"/v1/customers/{customer['id']}")["email"] == "new@example.com"
    event = get(client, "/v1/events", type="customer.updated", limit=1)["data"][0]
    assert event["created"] == store.now and event["data"]["object"]["email"] == "new@example.com"
    assert event["data"]["previous_attributes"] == {"email": customer["email"], "metadata": {"tier": None}}
    with pytest.raises(ValueError):
        store.update("customers", customer["id"], favourite_colour="blue")  # never invent fields


def test_invoice_pay_and_void_emit_events(fresh):
    store, _server, client = fresh
    store.advance(3600)
    opened = store.create("invoices", customer=store.objects("customers")[0]["id"], status="open")
    store.pay_invoice(opened["id"])
    paid = get(client, f"/v1/invoices/{opened['id']}")
    assert (paid["status"], paid["amount_remaining"], paid["amount_paid"]) == (
        "paid",
        0,
        opened["amount_due"],
    )
    assert paid["status_transitions"]["paid_at"] == store.now
    events = get(client, "/v1/events", types=["invoice.paid", "invoice.updated"], limit=2)["data"]
    assert {event["type"] for event in events} == {"invoice.paid", "invoice.updated"}
    assert events[0]["data"]["previous_attributes"]["status"] == "open"

    other = store.create("invoices", status="open")
    store.void_invoice(other["id"])
    voided = get(client, "/v1/events", type="invoice.voided", limit=1)["data"][0]
    assert (
        voided["data"]["object"]["status"] == "void"
        and voided["data"]["previous_attributes"]["status"] == "open"
    )
    with pytest.raises(ValueError):
        store.void_invoice(opened["id"])  # paid invoices cannot be voided


def test_canceled_subscription_stays_retrievable(fresh):
    store, _server, client = fresh
    active = walk(client, "/v1/subscriptions", status="active")[0]
    store.advance(DAY)
    store.cancel_subscription(active["id"])
    retrieved = get(client, f"/v1/subscriptions/{active['id']}")
    assert (retrieved["status"], retrieved["canceled_at"], retrieved["ended_at"]) == (
        "canceled",
        store.now,
        store.now,
    )
    assert active["id"] not in {sub["id"] for sub in walk(client, "/v1/subscriptions")}
    event = get(client, "/v1/events", type="customer.subscription.deleted", limit=1)["data"][0]
    assert (
        event["data"]["object"]["id"] == active["id"]
        and event["data"]["previous_attributes"]["status"] == "active"
    )


def test_deleted_customer_and_draft_invoice(fresh):
    store, _server, client = fresh
    customer = store.objects("customers")[0]
    store.delete("customers", customer["id"])
    assert get(client, f"/v1/customers/{customer['id']}") == {
        "deleted": True,
        "id": customer["id"],
        "object": "customer",
    }
    assert customer["id"] not in {c["id"] for c in walk(client, "/v1/customers")}
    event = get(client, "/v1/events", type="customer.deleted", limit=1)["data"][0]
    assert (
        event["data"]["object"]["id"] == customer["id"]
        and event["data"]["object"]["email"] == customer["email"]
    )
    # a deleted object's id still works as a cursor
    assert get(client, "/v1/customers", starting_after=customer["id"])["object"] == "list"

    draft = store.create("invoices")
    store.delete("invoices", draft["id"])
    with pytest.raises(stripe.InvalidRequestError) as caught:
        get(client, f"/v1/invoices/{draft['id']}")
    assert caught.value.http_status == 404 and caught.value.code == "resource_missing"
    assert (
        get(client, "/v1/events", type="invoice.deleted", limit=1)["data"][0]["data"]["object"]["id"]
        == draft["id"]
    )
    with pytest.raises(ValueError):
        store.delete("prices", store.objects("prices")[0]["id"])  # Stripe cannot delete prices
    with pytest.raises(NoSuchObject):
        store.get("customers", "cus_nope")


def test_emit_event_with_an_older_api_version(fresh):
    store, _server, client = fresh
    product = store.objects("products")[0]
    store.emit_event("product.updated", product, {"name": "Old name"}, api_version="2020-08-27")
    event = get(client, "/v1/events", type="product.updated", limit=1)["data"][0]
    assert event["api_version"] == "2020-08-27" and event["data"]["previous_attributes"] == {
        "name": "Old name"
    }


# --- keys, accounts, errors -------------------------------------------------------------------


def test_invalid_key_is_401_with_masked_key(server):
    key = "sk_test_" + "Zq" * 49 + "WXyz"
    with pytest.raises(stripe.AuthenticationError) as caught:
        get(make_client(server, key), "/v1/customers")
    message = str(caught.value)
    assert caught.value.http_status == 401 and "sk_test_*" in message and message.endswith("WXyz")
    assert key not in message and key not in caught.value.http_body


def test_missing_key_is_401(server):
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(server.url + "/v1/customers")
    body = json.loads(caught.value.read())
    assert caught.value.code == 401 and body["error"]["message"].startswith("You did not provide an API key")
    assert caught.value.headers["Request-Id"].startswith("req_")


def test_restricted_keys_read_data_but_not_the_account(server, client):
    account = get(client, "/v1/account")
    assert account["id"] == ACCOUNT_ID and account["settings"]["dashboard"]["display_name"] == ACCOUNT_NAME
    assert account["business_profile"]["name"] == ACCOUNT_NAME
    for key in (RESTRICTED_TEST_KEY, RESTRICTED_LIVE_KEY):
        restricted = make_client(server, key)
        assert get(restricted, "/v1/customers", limit=1)["data"]
        with pytest.raises(stripe.PermissionError) as caught:
            get(restricted, "/v1/account")
        assert "rak_accounts_kyc_basic_read" in str(caught.value) and key not in str(caught.value)
    with pytest.raises(stripe.PermissionError) as caught:
        get(make_client(server, NO_PERMISSION_KEY), "/v1/customers")
    assert "'rak_customer_read'" in str(caught.value) and NO_PERMISSION_KEY not in str(caught.value)


def test_live_and_test_modes_are_separate(server, client, store):
    live = make_client(server, LIVE_SECRET_KEY)
    live_customers = walk(live, "/v1/customers")
    assert len(live_customers) == store.count("customers", livemode=True) == 40
    assert all(customer["livemode"] is True for customer in live_customers)
    assert all(customer["livemode"] is False for customer in walk(client, "/v1/customers"))
    with pytest.raises(stripe.InvalidRequestError):
        get(live, f"/v1/customers/{store.objects('customers')[0]['id']}")


def test_stripe_account_header(server, store):
    stranger = make_client(server, stripe_account="acct_1NotConnected00")
    with pytest.raises(stripe.PermissionError) as caught:
        get(stranger, "/v1/customers")
    assert "does not have access to account 'acct_1NotConnected00'" in str(caught.value)
    store.add_connected_account("acct_1ConnectedShop1", "Connected Shop")
    connected = make_client(server, stripe_account="acct_1ConnectedShop1")
    assert get(connected, "/v1/customers")["data"] == []
    assert get(connected, "/v1/account")["business_profile"]["name"] == "Connected Shop"


def test_unknown_url_and_id_are_404(client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        get(client, "/v1/xyz")
    assert caught.value.http_status == 404 and "Unrecognized request URL (GET: /v1/xyz)" in str(caught.value)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        get(client, "/v1/charges/ch_missing")
    assert caught.value.http_status == 404 and caught.value.code == "resource_missing"


def test_responses_carry_stripe_headers(client):
    response = client.raw_request("get", "/v1/balance")
    assert response.code == 200 and response.data["object"] == "balance"
    assert response.headers["Request-Id"].startswith("req_") and response.headers["Stripe-Version"]


# --- fault injection, rate limits, concurrency ------------------------------------------------


def test_fail_next_maps_to_sdk_exceptions_then_recovers(fresh):
    _store, server, client = fresh
    server.fail_next("/v1/charges", [429, "lock_timeout", 409, 500, 503, "drop"])
    expected = [
        (stripe.RateLimitError, "rate_limit"),
        (stripe.RateLimitError, "lock_timeout"),
        (stripe.APIError, "lock_timeout"),
        (stripe.APIError, None),
        (stripe.APIError, None),
    ]
    for exception, code in expected:
        with pytest.raises(exception) as caught:
            get(client, "/v1/charges")
        assert caught.value.error.code == code
    with pytest.raises(stripe.APIConnectionError):
        get(client, "/v1/charges")
    assert get(client, "/v1/charges")["object"] == "list"
    assert [record.status for record in server.requests[-7:]] == [429, 429, 409, 500, 503, None, 200]


def test_sdk_retries_what_stripe_says_to_retry(fresh):
    _store, server, _client = fresh
    server.fail_next("/v1/customers", [503])
    assert get(make_client(server, max_network_retries=1), "/v1/customers")["object"] == "list"
    assert [record.status for record in server.requests[-2:]] == [503, 200]


def test_rate_limits_answer_429(fresh):
    store, _server, _client = fresh
    with FakeStripeServer(store, rate_limit_per_endpoint=5) as limited:
        client = make_client(limited)
        outcomes = []
        for _ in range(15):
            try:
                get(client, "/v1/customers", limit=1)
                outcomes.append(200)
            except stripe.RateLimitError as error:
                assert "Too many requests hit the API too quickly" in str(error)
                outcomes.append(429)
        assert outcomes[:5] == [200] * 5 and outcomes.count(429) >= 5
        assert get(client, "/v1/charges", limit=1)["object"] == "list"  # limits are per endpoint
    with FakeStripeServer(store, rate_limit_global=3) as limited:
        client = make_client(limited)
        with pytest.raises(stripe.RateLimitError):
            for path in ["/v1/customers", "/v1/charges", "/v1/invoices", "/v1/prices", "/v1/events"] * 2:
                get(client, path, limit=1)


def test_requests_with_latency_run_in_parallel(fresh):
    store, _server, _client = fresh
    with FakeStripeServer(store, latency=0.3) as slow:
        results: list[int] = []

        def fetch() -> None:
            results.append(len(get(make_client(slow), "/v1/customers", limit=5)["data"]))

        threads = [threading.Thread(target=fetch) for _ in range(10)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    assert results == [5] * 10 and 0.3 <= elapsed < 1.5


def test_broken_pagination_serves_the_same_page_forever(fresh):
    _store, server, client = fresh
    server.break_pagination("/v1/customers")
    first = get(client, "/v1/customers", limit=3)
    second = get(client, "/v1/customers", limit=3, starting_after=first["data"][-1]["id"])
    assert first["has_more"] and second["has_more"] and first["data"] == second["data"]
    server.repair_pagination("/v1/customers")
    assert (
        get(client, "/v1/customers", limit=3, starting_after=first["data"][-1]["id"])["data"] != first["data"]
    )


def test_request_log_never_holds_the_key(fresh):
    _store, server, client = fresh
    get(client, "/v1/customers", limit=2, created={"gte": 5})
    record = server.requests[-1]
    assert (record.method, record.path, record.query, record.status) == (
        "GET",
        "/v1/customers",
        {"limit": "2", "created[gte]": "5"},
        200,
    )
    assert TEST_SECRET_KEY not in repr(server.requests)


# --- command line -----------------------------------------------------------------------------


def test_cli_serves_until_sigterm(tmp_path):
    ready = tmp_path / "ready"
    command = [
        sys.executable,
        "-m",
        "airflow_provider_mantrix.fake_stripe.cli",
        "--port",
        "0",
        "--customers",
        "15",
        "--days",
        "5",
        "--ready-file",
        str(ready),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        deadline = time.monotonic() + 20
        while not ready.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        url = ready.read_text().strip()
        client = stripe.StripeClient(TEST_SECRET_KEY, base_addresses={"api": url}, max_network_retries=0)
        assert len(get(client, "/v1/customers", limit=100)["data"]) == 15
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert url in stdout and TEST_SECRET_KEY in stdout
    connection_line = next(
        line for line in stdout.splitlines() if line.startswith("AIRFLOW_CONN_STRIPE_DEFAULT=")
    )
    connection = json.loads(connection_line.split("=", 1)[1].strip("'"))
    assert connection == {"conn_type": "stripe", "password": TEST_SECRET_KEY, "extra": {"api_base": url}}
