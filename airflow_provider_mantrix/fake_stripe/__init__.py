"""A Stripe-compatible HTTP server for tests, demos and benchmarks ("fake Stripe").

It speaks Stripe's real v1 wire format for reading an account, so the official ``stripe`` SDK
works against it unchanged::

    store = FakeStripe(seed=1)
    store.seed(customers=300, days=30)          # a realistic, internally consistent month
    with FakeStripeServer(store) as server:
        client = stripe.StripeClient(TEST_SECRET_KEY, base_addresses={"api": server.url})
        client.raw_request("get", "/v1/customers", limit=100, created={"gte": 1})

Objects are built from Stripe's own example objects (``fixtures.json``, MIT, see
``LICENSE_fixtures``). Test and live mode are separate datasets reached with the matching key.
The store's mutations (``update``, ``pay_invoice``, ``void_invoice``, ``cancel_subscription``,
``delete``) emit the events Stripe would; the server adds latency, rate limits, injected failures
(``fail_next``), a pagination trap (``break_pagination``) and a request log (``requests``).
Run ``mantrix-fake-stripe`` for a seeded server on port 12111.
"""

from airflow_provider_mantrix.fake_stripe.server import FakeStripeServer, RequestRecord, mask_key
from airflow_provider_mantrix.fake_stripe.store import (
    ACCOUNT_ID,
    ACCOUNT_NAME,
    API_VERSION,
    EVENT_RETENTION_SECONDS,
    LIVE_SECRET_KEY,
    NO_PERMISSION_KEY,
    RESOURCES,
    RESTRICTED_LIVE_KEY,
    RESTRICTED_TEST_KEY,
    TEST_SECRET_KEY,
    FakeStripe,
    NoSuchObject,
)

__all__ = [
    "ACCOUNT_ID",
    "ACCOUNT_NAME",
    "API_VERSION",
    "EVENT_RETENTION_SECONDS",
    "LIVE_SECRET_KEY",
    "NO_PERMISSION_KEY",
    "RESOURCES",
    "RESTRICTED_LIVE_KEY",
    "RESTRICTED_TEST_KEY",
    "TEST_SECRET_KEY",
    "FakeStripe",
    "FakeStripeServer",
    "NoSuchObject",
    "RequestRecord",
    "mask_key",
]
