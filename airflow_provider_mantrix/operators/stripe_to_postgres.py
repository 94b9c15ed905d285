"""StripeToPostgresOperator: one Stripe resource into one typed PostgreSQL table per task."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import pendulum
from airflow.sdk import Asset, BaseOperator

from airflow_provider_mantrix.extract import CursorWalk, ListReader, Page, ReadStats, read_by_id
from airflow_provider_mantrix.hooks.stripe import StripeHook
from airflow_provider_mantrix.resources import Resource, get_resource
from airflow_provider_mantrix.warehouse import StripeTable, TableLoad, check_identifier

if TYPE_CHECKING:
    from airflow.sdk import Context

EVENT_RETENTION_SECONDS = 30 * 24 * 3600
"""Stripe keeps events for 30 days; older changes cannot be replayed."""
MAX_TYPES_PER_REQUEST = 20
"""``/v1/events`` accepts at most 20 entries in ``types``."""
PROGRESS_EVERY_SECONDS = 10.0


def stripe_table_asset(postgres_conn_id: str, schema: str, table: str) -> Asset:
    """The Asset a load updates, so downstream DAGs can be scheduled on a Stripe table."""
    return Asset(
        name=f"{postgres_conn_id}.{schema}.{table}",
        uri=f"mantrix-postgres://{postgres_conn_id}/{schema}/{table}",
    )


def _to_epoch(value: Any, what: str) -> int:
    """Accept a datetime, an ISO-8601 string (as templates render) or Unix seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a datetime, got {value!r}.")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int | float):
        if value > 10**11:
            raise ValueError(f"{what} {value!r} looks like milliseconds; give Unix seconds or a datetime.")
        return math.ceil(value)
    if isinstance(value, str):
        try:
            value = pendulum.parse(value.strip())
        except Exception as error:  # noqa: BLE001 - pendulum raises several kinds
            raise ValueError(f"{what} is not a date and time: {value!r} ({error}).") from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"{what} {value.isoformat()} has no time zone; give it in UTC.")
        return math.ceil(value.timestamp())
    raise ValueError(f"{what} must be a datetime, got {value!r}.")


def _iso(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc).isoformat()


class StripeToPostgresOperator(BaseOperator):
    """Copy one Stripe resource into PostgreSQL, idempotently, for the run's data interval.

    By default a run loads the objects whose ``created`` lies in ``[data_interval_start,
    data_interval_end)`` and, for resources whose objects change (invoices, subscriptions, ...),
    also applies every change and deletion Stripe recorded as an event in that window. Reruns and
    backfills of the same interval give the same table; an older state never overwrites a newer.

    :param resource: one of :data:`airflow_provider_mantrix.resources.RESOURCES`, e.g. ``invoices``.
    :param stripe_conn_id: Airflow connection of type ``stripe``.
    :param postgres_conn_id: Airflow connection of type ``postgres``.
    :param schema: target schema, created if missing.
    :param table: target table, default the resource name; created and widened if needed.
    :param data_interval_start: window start (templated; default the run's data interval).
    :param data_interval_end: window end, exclusive (templated).
    :param full_refresh: load every object regardless of the window; rows Stripe no longer lists
        (deleted customers, products, ...) get ``_deleted_at``.
    :param replay_events: apply changes and deletions from Stripe events in the window.
    :param on_expired_events: a window that starts more than 30 days ago cannot be replayed from
        events: ``"fail"`` (default) says so and loads nothing; ``"full_refresh"`` reloads the
        whole resource instead, which makes the table true as of now.
    :param concurrency: Stripe requests in flight at most; the connection's request budget
        (``max_requests_per_second``) bounds the rate. Each page of 100 is COPYed as it arrives,
        so memory is bounded by a few pages per concurrent request, whatever the window holds.
    """

    template_fields: Sequence[str] = ("schema", "table", "data_interval_start", "data_interval_end")
    ui_color = "#635bff"

    def __init__(
        self,
        *,
        resource: str,
        stripe_conn_id: str = StripeHook.default_conn_name,
        postgres_conn_id: str = "postgres_default",
        schema: str = "stripe",
        table: str | None = None,
        data_interval_start: Any = "{{ data_interval_start }}",
        data_interval_end: Any = "{{ data_interval_end }}",
        full_refresh: bool = False,
        replay_events: bool = True,
        on_expired_events: Literal["fail", "full_refresh"] = "fail",
        concurrency: int = 8,
        **kwargs: Any,
    ) -> None:
        self.resource_spec: Resource = get_resource(resource)
        if on_expired_events not in ("fail", "full_refresh"):
            raise ValueError(
                f"on_expired_events must be 'fail' or 'full_refresh', got {on_expired_events!r}."
            )
        for name, flag in (("full_refresh", full_refresh), ("replay_events", replay_events)):
            if not isinstance(flag, bool):
                raise ValueError(f"{name} must be True or False, got {flag!r} ({type(flag).__name__}).")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= 64:
            raise ValueError(f"concurrency must be an integer from 1 to 64, got {concurrency!r}.")
        table = resource if table is None else table
        for what, name in (("schema", schema), ("table", table)):
            if not isinstance(name, str) or "{{" not in name:
                check_identifier(name, what)
        kwargs.setdefault("outlets", [stripe_table_asset(postgres_conn_id, schema, table)])
        super().__init__(**kwargs)
        self.resource = resource
        self.stripe_conn_id = stripe_conn_id
        self.postgres_conn_id = postgres_conn_id
        self.schema = schema
        self.table = table
        self.data_interval_start = data_interval_start
        self.data_interval_end = data_interval_end
        self.full_refresh = full_refresh
        self.replay_events = replay_events
        self.on_expired_events = on_expired_events
        self.concurrency = concurrency

    # -- the run -------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        started = time.monotonic()
        hook = StripeHook(self.stripe_conn_id)
        account = hook.get_account()
        account_id = hook.stripe_account or account.id
        replays = self.replay_events and self.resource_spec.mutable
        # Stripe's clock decides which windows its 30-day event retention still covers.
        now = (
            hook.get("/v1/events", {"limit": 1}).server_time
            if replays and not self.full_refresh
            else time.time()
        )
        full_refresh, window = self._window(now)
        replays = replays and not full_refresh
        self.log.info(
            "Loading Stripe %s of %s into %s.%s: %s",
            self.resource,
            account.describe(),
            self.schema,
            self.table,
            "everything (full refresh)"
            if full_refresh
            else f"created in [{_iso(window[0])}, {_iso(window[1])})",
        )

        from airflow.providers.postgres.hooks.postgres import PostgresHook

        stats = ReadStats()
        events_applied = 0
        with PostgresHook(postgres_conn_id=self.postgres_conn_id).get_conn() as conn:
            table = StripeTable(conn, self.resource_spec, self.schema, self.table)
            table.ensure()
            with table.load() as load:
                progress = _Progress(self.log, self.resource, stats, started)
                parent_column = self.resource_spec.parent_column
                for page in self._read_objects(hook, None if full_refresh else window, stats):
                    overrides = {parent_column: page.parent_id} if parent_column else None
                    load.stage(
                        page.objects, observed_at=page.server_time, account_id=account_id, overrides=overrides
                    )
                    progress.tick(load.staged)
                rows = load.staged
                if replays:
                    events_applied = self._replay_events(hook, load, window, account_id, stats)
                merged = load.merge()
                if merged.ahead:
                    self.log.warning(
                        "%d rows of %s.%s were not updated: their _updated_at is later than anything "
                        "Stripe returned, so the table holds a state from a clock ahead of Stripe's "
                        "(a hand edit?). Set their _updated_at to NULL to let the next load fix them.",
                        merged.ahead,
                        self.schema,
                        self.table,
                    )
                # After a full refresh, rows Stripe no longer lists were deleted there.
                marked = 0
                if full_refresh and self.resource_spec.delete_events:
                    marked = load.mark_unstaged_deleted(account_id=account_id, livemode=hook.livemode)
            conn.commit()

        seconds = time.monotonic() - started
        summary = {
            "resource": self.resource,
            "table": f"{self.schema}.{self.table}",
            "rows": rows,
            "inserted": merged.inserted,
            "updated": merged.updated,
            "deleted": merged.deleted + marked,
            "events_applied": events_applied,
            "rows_ahead_of_stripe": merged.ahead,
            "pages": stats.pages,
            "requests": stats.requests,
            "retries": stats.retries,
            "full_refresh": full_refresh,
            "window_start": None if full_refresh else _iso(window[0]),
            "window_end": None if full_refresh else _iso(window[1]),
            "account_id": account_id,
            "mode": account.mode,
            "seconds": round(seconds, 3),
        }
        self.log.info(
            "Loaded %d %s (%d new, %d updated, %d deleted, %d from events) in %.1fs: %d requests, %.0f rows/s.",
            rows,
            self.resource,
            merged.inserted,
            merged.updated,
            summary["deleted"],
            events_applied,
            seconds,
            stats.requests,
            rows / seconds if seconds else 0,
        )
        return summary

    def _window(self, stripe_now: float) -> tuple[bool, tuple[int, int]]:
        """The run's window, or a full refresh; fails rather than silently load nothing."""
        if self.full_refresh:
            return True, (0, 0)
        start = _to_epoch(self.data_interval_start, "data_interval_start")
        end = _to_epoch(self.data_interval_end, "data_interval_end")
        if start > end:
            raise ValueError(
                f"data_interval_start {_iso(start)} is after data_interval_end {_iso(end)}; swap them."
            )
        if start == end:
            raise ValueError(
                f"The data interval is empty (start = end = {_iso(start)}), so there is nothing to load. "
                "Airflow 3's default cron schedule (schedule='@daily') gives runs with no data interval: "
                "schedule the DAG with CronDataIntervalTimetable('0 0 * * *', timezone='UTC') for real "
                "daily intervals, pass data_interval_start/data_interval_end, or set full_refresh=True."
            )
        if start >= stripe_now:
            raise ValueError(
                f"The window starts {_iso(start)}, after Stripe's now ({_iso(int(stripe_now))}): nothing "
                "can have been created in it yet. Check data_interval_start/data_interval_end."
            )
        replays = self.replay_events and self.resource_spec.mutable
        if replays and start < stripe_now - EVENT_RETENTION_SECONDS:
            if self.on_expired_events == "full_refresh":
                self.log.warning(
                    "The window starts %s, more than 30 days ago: Stripe no longer has the events of "
                    "its changes, so %s are fully refreshed instead (on_expired_events='full_refresh').",
                    _iso(start),
                    self.resource,
                )
                return True, (0, 0)
            raise ValueError(
                f"The window starts {_iso(start)}, more than 30 days before Stripe's now "
                f"({_iso(int(stripe_now))}). Stripe keeps events for 30 days, so changes to {self.resource} "
                "made then (paid invoices, cancellations, deletions) can no longer be replayed and the "
                "table would silently disagree with Stripe. Nothing was loaded. Re-run with "
                "full_refresh=True (or on_expired_events='full_refresh' for backfills) to reload the "
                "resource as it is now, or replay_events=False to load only objects created in the window."
            )
        return False, (start, end)

    def _read_objects(
        self, hook: StripeHook, window: tuple[int, int] | None, stats: ReadStats
    ) -> Iterator[Page]:
        """Pages of the resource's objects created in ``window`` (None: all of them)."""
        spec = self.resource_spec
        everything = (0, int(time.time()) + 86400)
        if spec.parent is None:
            if spec.created_filter:
                reader = ListReader(
                    hook,
                    spec.list_path,
                    spec.list_params,
                    window=window or everything,
                    concurrency=self.concurrency,
                    stats=stats,
                )
                yield from reader.pages()
            else:
                reader = ListReader(hook, spec.list_path, spec.list_params, concurrency=1, stats=stats)
                yield from self._filtered(reader.pages(), window)
            return
        # Listed through each parent object: read the parents' ids first, then walk each parent.
        parent = get_resource(spec.parent)
        parent_window = (window or everything) if spec.window_by_parent else everything
        parent_stats = ReadStats()
        parents = ListReader(
            hook,
            parent.list_path,
            parent.list_params,
            window=parent_window,
            concurrency=self.concurrency,
            stats=parent_stats,
        )
        candidates = [obj for page in parents.pages() for obj in page.objects]
        if spec.parent_events and window and spec.window_by_parent:
            # Parents created earlier that became ready in this window (a payout's reconciliation).
            events = ListReader(
                hook,
                "/v1/events",
                {"types": list(spec.parent_events)},
                window=window,
                concurrency=self.concurrency,
                stats=parent_stats,
            )
            candidates += [
                (e.get("data") or {}).get("object") or {} for page in events.pages() for e in page.objects
            ]
        parent_ids = list(
            dict.fromkeys(
                obj["id"]
                for obj in candidates
                if isinstance(obj.get("id"), str)
                and all(obj.get(k) == v for k, v in spec.parent_filter.items())
            )
        )
        skipped = len({obj.get("id") for obj in candidates}) - len(parent_ids)
        if skipped:
            self.log.info(
                "Skipping %d %s that do not match %s: Stripe cannot list %s for them.",
                skipped,
                spec.parent,
                dict(spec.parent_filter),
                self.resource,
            )
        stats.requests += parent_stats.requests
        stats.retries += parent_stats.retries
        walks = [
            CursorWalk(
                spec.list_path.format(parent_id=pid),
                {**spec.list_params, **({spec.parent_param: pid} if spec.parent_param else {})},
                parent_id=pid,
            )
            for pid in parent_ids
        ]
        reader = ListReader(hook, spec.list_path, walks=walks, concurrency=self.concurrency, stats=stats)
        yield from self._filtered(reader.pages(), None if spec.window_by_parent else window)

    @staticmethod
    def _filtered(pages: Iterator[Page], window: tuple[int, int] | None) -> Iterator[Page]:
        """Window endpoints that cannot filter on ``created`` on our side."""
        for page in pages:
            if window is None:
                yield page
                continue
            kept = [obj for obj in page.objects if window[0] <= (obj.get("created") or 0) < window[1]]
            if kept:
                yield Page(kept, page.server_time, page.parent_id)

    def _replay_events(
        self,
        hook: StripeHook,
        load: TableLoad,
        window: tuple[int, int],
        account_id: str | None,
        stats: ReadStats,
    ) -> int:
        """Stage every state change Stripe recorded in ``window`` for this resource.

        An event whose payload was rendered with another API version than ours is not trusted to
        have our shape: its object is re-read by id. Deletions keep the row and set ``_deleted_at``.
        """
        spec = self.resource_spec
        types = [*spec.update_events, *spec.delete_events]
        deletes = set(spec.delete_events)
        api_version = hook.api_version
        reread: dict[str, int] = {}
        applied = 0
        for offset in range(0, len(types), MAX_TYPES_PER_REQUEST):
            chunk = types[offset : offset + MAX_TYPES_PER_REQUEST]
            reader = ListReader(
                hook, "/v1/events", {"types": chunk}, window=window, concurrency=self.concurrency, stats=stats
            )
            for page in reader.pages():
                states = []
                for event in page.objects:
                    obj = (event.get("data") or {}).get("object") or {}
                    object_id = obj.get("id")
                    if not isinstance(object_id, str):
                        continue
                    applied += 1
                    if event.get("type") in deletes:
                        states.append((obj, event["created"], event["created"]))
                    elif event.get("api_version") in (None, api_version):
                        states.append((obj, event["created"], None))
                    else:
                        reread[object_id] = max(reread.get(object_id, 0), event["created"])
                load.stage_states(states, account_id=account_id)
        if reread:
            self.log.info(
                "Re-reading %d %s whose events were rendered with another API version than %s.",
                len(reread),
                self.resource,
                api_version,
            )
            current = read_by_id(hook, spec.retrieve_path, reread, concurrency=self.concurrency, stats=stats)
            load.stage_states(
                (
                    # None: gone since, deleted (a deleted draft invoice): keep the row, mark it.
                    (
                        {"id": object_id, "object": spec.object, "deleted": True},
                        server_time,
                        reread[object_id],
                    )
                    if obj is None
                    else (obj, server_time, None)
                    for object_id, obj, server_time in current
                ),
                account_id=account_id,
            )
        return applied


class _Progress:
    """Logs rows, pages and rows/s every few seconds, so a long load shows it is alive."""

    def __init__(self, log: Any, resource: str, stats: ReadStats, started: float) -> None:
        self.log, self.resource, self.stats, self.started = log, resource, stats, started
        self.next_report = started + PROGRESS_EVERY_SECONDS

    def tick(self, staged: int) -> None:
        now = time.monotonic()
        if now < self.next_report:
            return
        self.next_report = now + PROGRESS_EVERY_SECONDS
        elapsed = now - self.started
        self.log.info(
            "%s: %d rows staged, %d pages, %d requests (%d retried), %.0f rows/s",
            self.resource,
            staged,
            self.stats.pages,
            self.stats.requests,
            self.stats.retries,
            staged / elapsed if elapsed else 0,
        )
