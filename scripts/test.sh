#!/usr/bin/env bash
# Run the whole test suite: creates ./.venv if missing, installs the provider with its test
# extras, checks style, then runs pytest against an embedded PostgreSQL and the local fake Stripe.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check uv
extras="test"
if command -v chromium >/dev/null 2>&1; then extras="test,browser"; fi
.venv/bin/uv pip install --quiet --python .venv/bin/python -e ".[${extras}]"
.venv/bin/ruff check .
exec .venv/bin/pytest "$@"
