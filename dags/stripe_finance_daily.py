"""Stripe for a finance team: one UTC day of a Stripe account into PostgreSQL, every day.

Two DAGs, deployable as they are (change connection ids, schema and pool with the environment
variables below, read when the file is parsed):

* ``stripe_finance_daily`` - every day at 00:00 UTC, the day that just ended: one
  ``StripeToPostgresOperator`` task per resource, in parallel, then the payout reconciliation.
* ``stripe_finance_full_refresh`` - manual only: the same resources, everything Stripe has, for the
  first load and for history older than Stripe's 30 days of events.

=========================== ====================== ===========================================
Environment variable        Default                What
=========================== ====================== ===========================================
MANTRIX_STRIPE_CONN_ID      ``stripe_default``     Airflow connection of type ``stripe``
MANTRIX_POSTGRES_CONN_ID    ``postgres_default``   Airflow connection of type ``postgres``
MANTRIX_STRIPE_SCHEMA       ``stripe``             target schema (created if missing)
MANTRIX_STRIPE_POOL         ``stripe_api``         pool the Stripe tasks share; ``default_pool``
                                                   if you have not created one
MANTRIX_RETRIES             ``3``                  retries per task (exponential backoff)
=========================== ====================== ===========================================

Nothing here touches the network or a database when the file is parsed.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pendulum
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, task

from airflow_provider_mantrix.operators.stripe_to_postgres import (
    StripeToPostgresOperator,
    stripe_table_asset,
)

STRIPE_CONN_ID = os.environ.get("MANTRIX_STRIPE_CONN_ID") or "stripe_default"
POSTGRES_CONN_ID = os.environ.get("MANTRIX_POSTGRES_CONN_ID") or "postgres_default"
SCHEMA = os.environ.get("MANTRIX_STRIPE_SCHEMA") or "stripe"
STRIPE_POOL = os.environ.get("MANTRIX_STRIPE_POOL") or "stripe_api"
RETRIES = int(os.environ.get("MANTRIX_RETRIES") or 3)

if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", SCHEMA):
    raise ValueError(
        f"MANTRIX_STRIPE_SCHEMA={SCHEMA!r}: use a plain lower-case PostgreSQL name (letters, digits, _)."
    )

RESOURCES = (
    # revenue reporting
    "customers",
    "invoices",
    "subscriptions",
    "charges",
    # refund and dispute monitoring
    "refunds",
    "disputes",
    # payout reconciliation
    "balance_transactions",
    "payouts",
    "payout_balance_transactions",
)
"""One task and one table per resource. Any name from ``airflow_provider_mantrix.resources`` works."""

RECONCILIATION_VIEW = "payout_reconciliation"

DEFAULT_ARGS = {
    "owner": "finance-data",
    # Stripe and the warehouse fail transiently (the hook already retries each request); a task
    # retry reruns the whole load, which is idempotent.
    "retries": RETRIES,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=3),
}

DOC_MD = f"""
### Stripe → PostgreSQL for finance

Lands the Stripe account of connection `{STRIPE_CONN_ID}` in schema **`{SCHEMA}`** of connection
`{POSTGRES_CONN_ID}`, **one table per resource**, named after it:
{", ".join(f"`{SCHEMA}.{name}`" for name in RESOURCES)}.
Each table has the API's top-level fields as typed columns, plus `_raw` (the object as Stripe sent it),
`_account_id`, `_updated_at`, `_deleted_at` and `_synced_at`.

* **Daily** (`stripe_finance_daily`, 00:00 UTC): a run loads the objects **created** in its data interval,
  one UTC day, and applies the changes Stripe recorded as events that day (paid invoices, refunded
  charges, closed disputes, paid payouts). Reruns and backfills never duplicate or regress a row.
  `payout_balance_transactions` holds, for the payouts created that day, every balance transaction each
  one paid out (column `payout`).
* **Reconciliation**: view `{SCHEMA}.{RECONCILIATION_VIEW}`, one row per payout: its amount against the
  net of the transactions it paid out, `difference` and `agrees`. `check_payouts_reconcile` fails the run,
  naming the payouts, when a payout of the run's day does not add up.
* **Backfills**: `airflow backfill create --dag-id stripe_finance_daily --from-date 2026-11-01
  --to-date 2026-11-07` (logical dates are the days loaded). Stripe keeps events for 30 days, so changing
  resources cannot be backfilled further back: trigger **`stripe_finance_full_refresh`** once instead.
* **Rate limit**: every Stripe task runs in pool `{STRIPE_POOL}`. Slots × the connection's
  `max_requests_per_second` (20 test / 24 live by default) should stay under Stripe's account limit
  (25/s in test mode, 100/s live): 1 slot for a test key, 4 for a live key.
"""


def _stripe_loads(*, full_refresh: bool) -> dict[str, StripeToPostgresOperator]:
    return {
        name: StripeToPostgresOperator(
            task_id=f"load_{name}",
            resource=name,
            stripe_conn_id=STRIPE_CONN_ID,
            postgres_conn_id=POSTGRES_CONN_ID,
            schema=SCHEMA,
            full_refresh=full_refresh,
            pool=STRIPE_POOL,
        )
        for name in RESOURCES
    }


def _refresh_reconciliation() -> SQLExecuteQueryOperator:
    return SQLExecuteQueryOperator(
        task_id="refresh_payout_reconciliation",
        conn_id=POSTGRES_CONN_ID,
        sql="sql/payout_reconciliation.sql",
        outlets=[stripe_table_asset(POSTGRES_CONN_ID, SCHEMA, RECONCILIATION_VIEW)],
    )


@task(task_id="check_payouts_reconcile", retries=0)
def check_payouts_reconcile(whole_account: bool = False, data_interval_start=None, data_interval_end=None):
    """Fail, naming them, if payouts of this run's day (or of the whole account) do not add up.

    Only payouts whose transactions are complete are judged (``agrees`` is not null): automatic
    payouts that Stripe has finished reconciling and whose transactions were loaded.
    """
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk.exceptions import AirflowFailException

    where, parameters = "true", {}
    if not whole_account:
        where = "created >= %(start)s AND created < %(end)s"
        parameters = {"start": data_interval_start.isoformat(), "end": data_interval_end.isoformat()}
    rows = PostgresHook(postgres_conn_id=POSTGRES_CONN_ID).get_records(
        f"SELECT id, currency, amount, transactions_net, difference, agrees, note "
        f'FROM "{SCHEMA}".{RECONCILIATION_VIEW} WHERE {where} ORDER BY created, id',
        parameters=parameters,
    )
    agree = [row for row in rows if row[5] is True]
    disagree = [row for row in rows if row[5] is False]
    unchecked = [row for row in rows if row[5] is None]
    for payout_id, *_, note in unchecked:
        print(f"Not checked: {payout_id}: {note}")
    if disagree:
        lines = "; ".join(
            f"{pid} amount {amount} {currency} but its transactions net {net} (difference {difference})"
            for pid, currency, amount, net, difference, *_ in disagree
        )
        raise AirflowFailException(
            f"{len(disagree)} of {len(rows)} payouts do not reconcile with their balance transactions: "
            f"{lines}. See {SCHEMA}.{RECONCILIATION_VIEW} and {SCHEMA}.payout_balance_transactions."
        )
    print(f"{len(agree)} payouts reconcile; {len(unchecked)} not checked (data not complete).")
    return {"payouts": len(rows), "agree": len(agree), "disagree": 0, "not_checked": len(unchecked)}


SHARED_DAG_ARGS = {
    "start_date": pendulum.datetime(2025, 1, 1, tz="UTC"),
    # Unpausing loads yesterday, not every day since start_date; older days: `airflow backfill create`.
    "catchup": False,
    # Runs share the Stripe pool anyway; one at a time keeps backfills in order and easy to follow.
    "max_active_runs": 1,
    "default_args": DEFAULT_ARGS,
    "user_defined_macros": {"stripe_schema": SCHEMA},
    "tags": ["stripe", "finance", "mantrix"],
    "doc_md": DOC_MD,
}

with DAG(
    dag_id="stripe_finance_daily",
    description="Stripe → PostgreSQL for finance: one UTC day per run, then payout reconciliation",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    dagrun_timeout=timedelta(hours=6),
    **SHARED_DAG_ARGS,
) as daily:
    loads = _stripe_loads(full_refresh=False)
    refresh = _refresh_reconciliation()
    [loads["payouts"], loads["payout_balance_transactions"]] >> refresh >> check_payouts_reconcile()


with DAG(
    dag_id="stripe_finance_full_refresh",
    description="Stripe → PostgreSQL for finance: reload everything (first load, history beyond 30 days)",
    schedule=None,
    **SHARED_DAG_ARGS,
) as full_refresh:
    loads = _stripe_loads(full_refresh=True)
    refresh = _refresh_reconciliation()
    [loads["payouts"], loads["payout_balance_transactions"]] >> refresh
    refresh >> check_payouts_reconcile(whole_account=True)
