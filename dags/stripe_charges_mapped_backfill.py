"""Backfill one Stripe resource over a long range by fanning it out over Airflow workers.

One task reads its window as concurrent slices under the connection's request budget; when a
backfill outgrows one worker, dynamic task mapping splits the range into day slices that Airflow's
Celery or Kubernetes executor spreads over workers. Each mapped task loads its own slice in its own
transaction; merges are idempotent, so slices may run in any order and be retried.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG, Param, task

from airflow_provider_mantrix.operators.stripe_to_postgres import StripeToPostgresOperator

RESOURCE = "charges"
POOL = os.environ.get("MANTRIX_STRIPE_POOL", "stripe_api")

with DAG(
    dag_id=f"stripe_{RESOURCE}_mapped_backfill",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["stripe", "backfill"],
    params={
        "start": Param("2026-11-01", type="string", format="date", description="First day, UTC"),
        "end": Param("2026-12-01", type="string", format="date", description="Day after the last, UTC"),
        "slice_days": Param(1, type="integer", minimum=1, description="Days per mapped task"),
    },
    doc_md=f"""
Loads Stripe **{RESOURCE}** created in `[start, end)` into `stripe.{RESOURCE}`, one mapped task per
slice of `slice_days`. Trigger it with the range as params. Objects are read as they are now, so a
one-off backfill needs no event replay; the daily DAG keeps the table true from then on. Stripe's
limit is per account: the mapped tasks share the pool `{POOL}` (set `MANTRIX_STRIPE_POOL`), and
`max_active_tis_per_dagrun` keeps at most 4 slices in flight.
""",
) as dag:

    @task
    def day_slices(params: dict | None = None) -> list[dict[str, str]]:
        """The range cut into consecutive half-open windows that add up to it exactly."""
        start = dt.datetime.fromisoformat(params["start"]).replace(tzinfo=dt.timezone.utc)
        end = dt.datetime.fromisoformat(params["end"]).replace(tzinfo=dt.timezone.utc)
        if end <= start:
            raise ValueError(f"end ({params['end']}) must be after start ({params['start']}).")
        step = dt.timedelta(days=params["slice_days"])
        edges = [start + step * i for i in range((end - start) // step + 1)]
        if edges[-1] < end:
            edges.append(end)
        return [
            {"data_interval_start": a.isoformat(), "data_interval_end": b.isoformat()}
            for a, b in zip(edges, edges[1:], strict=False)
        ]

    StripeToPostgresOperator.partial(
        task_id=f"load_{RESOURCE}",
        resource=RESOURCE,
        replay_events=False,
        pool=POOL,
        max_active_tis_per_dagrun=4,
        retries=3,
        retry_delay=dt.timedelta(minutes=1),
        retry_exponential_backoff=True,
    ).expand_kwargs(day_slices())
