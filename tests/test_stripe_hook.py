"""StripeHook against the fake Stripe over HTTP: the Test button's answers, retries, and the key's secrecy."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from airflow_provider_mantrix import get_provider_info
from airflow_provider_mantrix.fake_stripe import (
    ACCOUNT_ID,
    LIVE_SECRET_KEY,
    NO_PERMISSION_KEY,
    RESTRICTED_LIVE_KEY,
    RESTRICTED_TEST_KEY,
    TEST_SECRET_KEY,
)
from airflow_provider_mantrix.hooks.stripe import StripeHook, StripeRequestError, mask_key
from tests.conftest import stripe_connection_json

WRONG_KEY = "sk_test_" + "x" * 24 + "WXYZ"


def hook_for(monkeypatch, url: str, key: str, conn_id: str = "stripe_probe", **extra) -> StripeHook:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", stripe_connection_json(url, key, **extra))
    return StripeHook(conn_id, retry_initial_delay=0.01)


# -- the form ----------------------------------------------------------------------------------


def test_provider_info_declares_the_stripe_connection_form():
    (conn_type,) = get_provider_info()["connection-types"]
    assert conn_type["connection-type"] == "stripe"
    assert conn_type["hook-class-name"] == "airflow_provider_mantrix.hooks.stripe.StripeHook"
    behaviour = conn_type["ui-field-behaviour"]
    assert {"host", "port", "login", "schema"} <= set(behaviour["hidden-fields"])
    assert behaviour["relabeling"] == {"password": "Secret Key"}
    assert behaviour["placeholders"]["password"] == "sk_live_..."
    fields = conn_type["conn-fields"]
    assert {"stripe_account", "api_version", "api_base", "max_network_retries"} <= set(fields)
    for name, field in fields.items():
        assert field["label"] and field["description"], name
        assert "null" in field["schema"]["type"], f"{name} must be optional"


def test_the_hook_reads_form_fields_with_or_without_the_airflow2_prefix(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_STRIPE_PREFIXED",
        json.dumps(
            {
                "conn_type": "stripe",
                "password": TEST_SECRET_KEY,
                "extra": {"extra__stripe__api_base": "http://example.invalid", "max_network_retries": "2"},
            }
        ),
    )
    hook = StripeHook("stripe_prefixed")
    assert (hook.api_base, hook.max_retries) == ("http://example.invalid", 2)


# -- the Test button ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "mode"),
    [(TEST_SECRET_KEY, "test mode"), (LIVE_SECRET_KEY, "live mode")],
)
def test_a_secret_key_connects_and_names_the_account_and_mode(monkeypatch, stripe_server, key, mode):
    ok, message = hook_for(monkeypatch, stripe_server.url, key).test_connection()
    assert ok, message
    assert ACCOUNT_ID in message and mode in message
    assert key not in message and key[-4:] in message


@pytest.mark.parametrize(
    ("key", "mode"), [(RESTRICTED_TEST_KEY, "test mode"), (RESTRICTED_LIVE_KEY, "live mode")]
)
def test_a_restricted_key_that_cannot_read_the_account_passes_when_it_can_read_data(
    monkeypatch, stripe_server, key, mode
):
    ok, message = hook_for(monkeypatch, stripe_server.url, key).test_connection()
    assert ok, message
    assert "restricted" in message and mode in message and ACCOUNT_ID in message
    assert key not in message


def test_a_key_without_read_permissions_fails_naming_the_permission(monkeypatch, stripe_server):
    ok, message = hook_for(monkeypatch, stripe_server.url, NO_PERMISSION_KEY).test_connection()
    assert not ok
    assert "403" in message and "rak_" in message
    assert NO_PERMISSION_KEY not in message


def test_a_wrong_key_is_reported_invalid_without_showing_it(monkeypatch, stripe_server):
    ok, message = hook_for(monkeypatch, stripe_server.url, WRONG_KEY).test_connection()
    assert not ok
    assert "invalid" in message and "401" in message
    assert WRONG_KEY not in message and "WXYZ" in message


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (f" {TEST_SECRET_KEY}", "spaces"),
        (f"{TEST_SECRET_KEY}\n", "spaces"),
        ("pk_test_" + "a" * 24, "publishable"),
        ("pk_live_" + "a" * 24, "publishable"),
        ("whsec_" + "a" * 24, "not a Stripe secret key"),
    ],
)
def test_bad_key_text_is_rejected_before_any_request(monkeypatch, stripe_server, key, says):
    before = len(stripe_server.requests)
    ok, message = hook_for(monkeypatch, stripe_server.url, key).test_connection()
    assert not ok and says in message
    assert len(stripe_server.requests) == before, "no request may be sent for a malformed key"
    if key.strip():
        assert key.strip() not in message


def test_an_unreachable_stripe_says_where_it_tried(monkeypatch):
    ok, message = hook_for(monkeypatch, "http://127.0.0.1:9", TEST_SECRET_KEY).test_connection()
    assert not ok
    assert "Could not reach Stripe at http://127.0.0.1:9" in message
    assert TEST_SECRET_KEY not in message


def test_a_stripe_server_error_is_reported_as_such(monkeypatch, stripe_server):
    stripe_server.fail_next("/v1/account", [500])
    ok, message = hook_for(monkeypatch, stripe_server.url, TEST_SECRET_KEY).test_connection()
    assert not ok and "server error (500)" in message


def test_airflow_cli_connection_test_tells_success_and_failure(stripe_server):
    env = {**os.environ, "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
    env["AIRFLOW_CONN_STRIPE_CLI"] = stripe_connection_json(stripe_server.url, TEST_SECRET_KEY)
    env["AIRFLOW_CONN_STRIPE_WRONG"] = stripe_connection_json(stripe_server.url, WRONG_KEY)
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    # The CLI prints the hook's message only on failure; --verbose lets its log line through.
    command = [airflow, "connections", "test", "stripe_cli", "--verbose"]
    good = subprocess.run(command, env=env, capture_output=True, text=True)
    output = good.stdout + good.stderr
    assert good.returncode == 0, output
    assert "Connection success" in output and ACCOUNT_ID in output and "test mode" in output
    assert TEST_SECRET_KEY not in output
    bad = subprocess.run(
        [airflow, "connections", "test", "stripe_wrong"], env=env, capture_output=True, text=True
    )
    assert bad.returncode != 0
    assert "invalid" in bad.stdout and WRONG_KEY not in bad.stdout + bad.stderr
    unreachable = {
        **env,
        "AIRFLOW_CONN_STRIPE_CLI": stripe_connection_json("http://127.0.0.1:9", TEST_SECRET_KEY),
    }
    down = subprocess.run(command, env=unreachable, capture_output=True, text=True)
    assert down.returncode != 0 and "Could not reach Stripe at http://127.0.0.1:9" in down.stdout


# -- requests ----------------------------------------------------------------------------------


def test_rate_limits_conflicts_and_dropped_connections_are_retried(monkeypatch, stripe_server):
    hook = hook_for(monkeypatch, stripe_server.url, TEST_SECRET_KEY, max_network_retries=5)
    stripe_server.fail_next("/v1/customers", [429, "lock_timeout", 409, 503, "drop"])
    response = hook.get("/v1/customers", {"limit": 3})
    assert response.data["object"] == "list"


def test_out_of_retries_names_the_path_and_reason_never_the_key(monkeypatch, stripe_server, caplog):
    caplog.set_level(logging.DEBUG)
    hook = hook_for(monkeypatch, stripe_server.url, TEST_SECRET_KEY, max_network_retries=2)
    stripe_server.fail_next("/v1/charges", [429, 429, 429])
    with pytest.raises(
        StripeRequestError, match=r"GET /v1/charges after 3 attempts: Stripe rate limit"
    ) as raised:
        hook.get("/v1/charges")
    assert TEST_SECRET_KEY not in str(raised.value) + caplog.text


def test_a_401_is_not_retried(monkeypatch, stripe_server):
    hook = hook_for(monkeypatch, stripe_server.url, WRONG_KEY, max_network_retries=5)
    before = len(stripe_server.requests)
    with pytest.raises(StripeRequestError, match="invalid"):
        hook.get("/v1/customers")
    assert len(stripe_server.requests) == before + 1


def test_masked_keys_keep_only_the_last_four_characters():
    assert mask_key(TEST_SECRET_KEY) == f"sk_test_…{TEST_SECRET_KEY[-4:]}"
    assert TEST_SECRET_KEY[8:-4] not in mask_key(TEST_SECRET_KEY)


def test_airflow_finds_the_provider_and_its_stripe_connection_type():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-provider-mantrix" in manager.providers
    assert manager.hooks["stripe"].hook_class_name == "airflow_provider_mantrix.hooks.stripe.StripeHook"
    assert manager.field_behaviours["stripe"]["relabeling"] == {"password": "Secret Key"}
