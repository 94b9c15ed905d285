"""Apache Airflow provider that lands a Stripe account in PostgreSQL."""

from __future__ import annotations

__version__ = "0.1.0"


def get_provider_info() -> dict:
    """Describe the provider to Airflow: hook, operator, and the Stripe connection form.

    Since Airflow 3.2 the web UI builds the connection form from ``conn-fields`` and
    ``ui-field-behaviour`` here, without importing the hook.
    """
    return {
        "package-name": "airflow-provider-mantrix",
        "name": "Mantrix (Stripe to PostgreSQL)",
        "description": "Load a Stripe account into PostgreSQL, correctly and fast.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Stripe",
                "external-doc-url": "https://docs.stripe.com/api",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Stripe",
                "python-modules": ["airflow_provider_mantrix.hooks.stripe"],
            }
        ],
        "operators": [
            {
                "integration-name": "Stripe",
                "python-modules": ["airflow_provider_mantrix.operators.stripe_to_postgres"],
            }
        ],
        "connection-types": [
            {
                "connection-type": "stripe",
                "hook-class-name": "airflow_provider_mantrix.hooks.stripe.StripeHook",
                "hook-name": "Stripe",
                "conn-fields": {
                    "stripe_account": {
                        "label": "Connected account (optional)",
                        "description": (
                            "A Stripe Connect account id (acct_...) to read instead of the key's own "
                            "account; sent as the Stripe-Account header. Leave empty for your own account."
                        ),
                        "schema": {"type": ["string", "null"], "pattern": "^(acct_[A-Za-z0-9]+)?$"},
                    },
                    "api_version": {
                        "label": "API version (optional)",
                        "description": (
                            "Stripe API version to pin, e.g. 2025-09-30.clover. Leave empty to use the "
                            "version the installed stripe SDK is built for."
                        ),
                        "schema": {"type": ["string", "null"]},
                    },
                    "api_base": {
                        "label": "API base URL (optional)",
                        "description": (
                            "Where Stripe's API is reached. Leave empty for https://api.stripe.com; set it "
                            "for a proxy or a Stripe-compatible local server such as mantrix-fake-stripe."
                        ),
                        "schema": {"type": ["string", "null"]},
                    },
                    "max_network_retries": {
                        "label": "Max retries per request (optional)",
                        "description": (
                            "How often one request is retried after a rate limit (429), a conflict (409), a "
                            "Stripe server error (5xx) or a dropped connection, with exponential backoff. "
                            "Default 8."
                        ),
                        "schema": {"type": ["integer", "null"], "minimum": 0, "maximum": 20},
                    },
                    "max_requests_per_second": {
                        "label": "Request budget per second (optional)",
                        "description": (
                            "Upper bound on requests per second one task sends. Default: 20 for test keys, "
                            "24 for live keys, under Stripe's limits (25/s per endpoint; per account 25/s in test "
                            "mode, 100/s live)."
                        ),
                        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "port", "login", "schema", "extra"],
                    "relabeling": {"password": "Secret Key"},
                    "placeholders": {
                        "password": "sk_live_...",
                        "stripe_account": "acct_...",
                        "api_version": "SDK default",
                        "api_base": "https://api.stripe.com",
                        "max_network_retries": "8",
                        "max_requests_per_second": "20 (test) / 24 (live)",
                    },
                },
            }
        ],
    }
