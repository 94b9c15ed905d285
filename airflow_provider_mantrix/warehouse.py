"""The PostgreSQL side: one typed table per Stripe resource, written in bulk and idempotently.

A load stages rows with ``COPY`` into a temporary table, then merges them into the target with
one ``INSERT ... ON CONFLICT (id) DO UPDATE`` and commits once, so a load that fails midway
leaves the table as it was. Each row remembers the Stripe-side time of the state it holds
(``_updated_at``); an older state never overwrites a newer one, whatever order runs happen in.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
import psycopg
from psycopg import sql

from airflow_provider_mantrix.resources import POSTGRES_TYPES, ColumnKind, Resource

METADATA_COLUMNS: Mapping[str, str] = {
    "_raw": "jsonb",
    "_account_id": "text",
    "_updated_at": "timestamptz",
    "_deleted_at": "timestamptz",
    "_synced_at": "timestamptz",
}
"""Columns every table gets besides the resource's own.

``_raw`` is the object as Stripe served it; ``_updated_at`` the Stripe-side time of that state
(the answer's ``Date``, or the event's ``created``); ``_deleted_at`` when Stripe deleted it.
"""

MAX_IDENTIFIER_BYTES = 63
_FORMATTED = {"timestamptz": "timestamp with time zone"}
"""Type names as PostgreSQL's format_type() spells them, where they differ."""


def postgres_connection_json(uri: str) -> str:
    """An Airflow connection (JSON form) for a libpq URI; a socket directory becomes the host."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(uri)
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": info.get("host") or "127.0.0.1",
            "port": int(info.get("port") or 5432),
            "login": info.get("user") or "postgres",
            "password": info.get("password") or "",
            "schema": info.get("dbname") or "postgres",
        }
    )


def check_identifier(value: str, what: str) -> str:
    """PostgreSQL silently truncates long names and rejects NUL; say so before it matters."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"The {what} name must be a non-empty string, got {value!r}.")
    if "\x00" in value:
        raise ValueError(f"The {what} name {value!r} contains a NUL character; choose another name.")
    if len(value.encode()) > MAX_IDENTIFIER_BYTES:
        raise ValueError(
            f"The {what} name {value!r} is longer than PostgreSQL's {MAX_IDENTIFIER_BYTES} bytes; "
            "choose a shorter name."
        )
    return value


_encode = msgspec.json.Encoder().encode


def to_json(value: Any) -> str:
    """JSON text for jsonb columns; msgspec (an Airflow dependency) is several times faster than json."""
    try:
        return _encode(value).decode()
    except (TypeError, msgspec.EncodeError):  # e.g. a Decimal: fall back to the standard library
        return json.dumps(value, separators=(",", ":"), default=str)


def _timestamp(value: Any) -> dt.datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)


def _to_column(kind: ColumnKind, value: Any) -> Any:
    """Convert one top-level field to its column; a value of the wrong shape stays only in ``_raw``."""
    if value is None:
        return None
    if kind == "jsonb":
        return to_json(value)
    if kind == "ref":
        if isinstance(value, Mapping):
            value = value.get("id")
        return value if isinstance(value, str) else None
    if kind == "text":
        if isinstance(value, str):
            return value
        return to_json(value) if isinstance(value, Mapping | list) else str(value)
    if kind == "bigint":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if kind == "numeric":
        if isinstance(value, bool):
            return None
        try:
            return Decimal(str(value)) if isinstance(value, int | float | str | Decimal) else None
        except InvalidOperation:
            return None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "timestamptz":
        return _timestamp(value)
    raise AssertionError(kind)


@dataclass
class MergeResult:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    ahead: int = 0
    """Rows left alone because the table holds a state stamped later than Stripe's clock."""


class StripeTable:
    """A resource's table in ``schema``: created and widened as needed, loaded through :meth:`load`."""

    def __init__(self, conn: psycopg.Connection, resource: Resource, schema: str, table: str | None = None):
        self.conn = conn
        self.resource = resource
        self.schema = check_identifier(schema, "schema")
        self.table = check_identifier(resource.name if table is None else table, "table")
        self.columns: dict[str, ColumnKind] = {
            name: kind for name, kind in resource.columns.items() if name != "id"
        }
        self.ident = sql.Identifier(self.schema, self.table)

    @property
    def all_columns(self) -> list[str]:
        return ["id", *self.columns, *METADATA_COLUMNS]

    def ensure(self) -> None:
        """Create the schema and table if missing, and add any column a newer catalogue knows.

        Columns already there are left alone, so a table being loaded by another task is not
        locked; two tasks creating the same table at once is retried once. An existing table
        whose columns would silently change what lands (wrong types, no key on ``id``) is refused.
        """
        typed = {**{n: POSTGRES_TYPES[k] for n, k in self.columns.items()}, **METADATA_COLUMNS}
        for attempt in (1, 2):
            try:
                with self.conn.transaction(), self.conn.cursor() as cur:
                    existing = self._existing_columns(cur)
                    if not existing:
                        self._create(cur, typed)
                    else:
                        self._check(cur, existing, {"id": "text", **typed})
                    for name in (n for n in typed if existing and n not in existing):
                        cur.execute(
                            sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                                self.ident, sql.Identifier(name), sql.SQL(typed[name])
                            )
                        )
                return
            except (
                psycopg.errors.UniqueViolation,
                psycopg.errors.DuplicateTable,
                psycopg.errors.DuplicateSchema,
            ):
                if attempt == 2:
                    raise

    @property
    def qualified_name(self) -> str:
        return self.ident.as_string(self.conn)

    def _existing_columns(self, cur: psycopg.Cursor) -> dict[str, str]:
        cur.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
            (self.qualified_name,),
        )
        return dict(cur.fetchall())

    def _check(self, cur: psycopg.Cursor, existing: Mapping[str, str], expected: Mapping[str, str]) -> None:
        cur.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (self.qualified_name,))
        kind = {"v": "a view", "m": "a materialized view", "f": "a foreign table"}.get(cur.fetchone()[0])
        if kind:
            raise ValueError(
                f"{self.qualified_name} is {kind}, not a table; load into another table with table=..."
            )
        wrong = [
            f"{name} is {existing[name]}, not {_FORMATTED.get(pg_type, pg_type)}"
            for name, pg_type in expected.items()
            if name in existing and existing[name] != _FORMATTED.get(pg_type, pg_type)
        ]
        if wrong:
            raise ValueError(
                f"Table {self.qualified_name} exists with columns of other types than this provider "
                f"writes: {'; '.join(wrong)}. Change them (ALTER TABLE ... ALTER COLUMN ... TYPE ...) "
                "or load into another table with table=..."
            )
        cur.execute(
            "SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indnkeyatts = 1 AND a.attname = 'id'",
            (self.qualified_name,),
        )
        if cur.fetchone() is None:
            raise ValueError(
                f"Table {self.qualified_name} exists without a primary key or unique index on id, so "
                f"reruns could duplicate rows. Add one (ALTER TABLE {self.qualified_name} ADD PRIMARY KEY "
                "(id)) or load into another table with table=..."
            )

    def _create(self, cur: psycopg.Cursor, typed: Mapping[str, str]) -> None:
        definitions = [sql.SQL("{} text PRIMARY KEY").format(sql.Identifier("id"))]
        definitions += [sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in typed.items()]
        cur.execute("SELECT to_regnamespace(%s)", (sql.Identifier(self.schema).as_string(self.conn),))
        if cur.fetchone()[0] is None:  # a role may create tables in a schema it could not create
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
        cur.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(self.ident, sql.SQL(", ").join(definitions))
        )

    def load(self) -> TableLoad:
        return TableLoad(self)


class TableLoad:
    """One transaction: stage rows with COPY, then merge them into the table at :meth:`merge`."""

    STAGE = sql.Identifier("_mantrix_stage")

    def __init__(self, table: StripeTable):
        self.table = table
        self.conn = table.conn
        self._transaction: psycopg.Transaction | None = None
        self.staged = 0
        self.stubs = 0

    def __enter__(self) -> TableLoad:
        self._transaction = self.conn.transaction()
        self._transaction.__enter__()
        with self.conn.cursor() as cur:
            cur.execute(
                # Only the columns we write, without the target's constraints.
                sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
                    self.STAGE,
                    sql.SQL(", ").join(map(sql.Identifier, self.table.all_columns)),
                    self.table.ident,
                )
            )
            cur.execute(
                sql.SQL(
                    "ALTER TABLE {} ADD COLUMN _seq bigserial, ADD COLUMN _stub boolean NOT NULL DEFAULT false"
                ).format(self.STAGE)
            )
        return self

    def __exit__(self, *exc_info) -> None:
        assert self._transaction is not None
        self._transaction.__exit__(*exc_info)

    def stage(
        self,
        objects: Iterable[Mapping[str, Any]],
        *,
        observed_at: float,
        account_id: str | None,
        deleted_at: float | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> int:
        """COPY objects read together into the staging table, as of Stripe time ``observed_at``.

        ``overrides`` sets typed columns the object itself does not carry (the parent a row was
        listed through); ``_raw`` stays exactly what Stripe sent.
        """
        return self.stage_states(
            ((obj, observed_at, deleted_at) for obj in objects), account_id=account_id, overrides=overrides
        )

    def stage_states(
        self,
        states: Iterable[tuple[Mapping[str, Any], float, float | None]],
        *,
        account_id: str | None,
        overrides: Mapping[str, Any] | None = None,
    ) -> int:
        """COPY ``(object, observed_at, deleted_at)`` states, each as of its own Stripe time.

        An object that carries only ``id``/``object``/``deleted`` (a deletion stub) is staged as
        a stub: merging it sets ``_deleted_at`` and leaves every other column as it was.
        """
        table = self.table
        synced = dt.datetime.now(dt.timezone.utc)
        columns = sql.SQL(", ").join(map(sql.Identifier, [*table.all_columns, "_stub"]))
        kinds = list(table.columns.items())
        count = 0
        with self.conn.cursor() as cur:
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(self.STAGE, columns)) as copy:
                for obj, observed_at, deleted_at in states:
                    stub = _is_stub(obj)
                    self.stubs += stub
                    values = {**obj, **overrides} if overrides else obj
                    updated = _timestamp(observed_at)
                    if deleted_at is not None:
                        deleted = _timestamp(deleted_at)
                    else:
                        deleted = updated if obj.get("deleted") is True else None
                    typed = [None] * len(kinds) if stub else [_to_column(k, values.get(n)) for n, k in kinds]
                    copy.write_row(
                        [
                            obj["id"],
                            *typed,
                            to_json(obj),
                            account_id,
                            updated,
                            deleted,
                            synced,
                            stub,
                        ]
                    )
                    count += 1
        self.staged += count
        return count

    def merge(self) -> MergeResult:
        """Merge the newest staged state of each id into the table; older states lose.

        One statement per kind of row, counted in SQL, so nothing per row comes back to Python.
        """
        table = self.table
        target = table.ident
        newer = sql.SQL("{t}._updated_at IS NULL OR EXCLUDED._updated_at >= {t}._updated_at").format(t=target)
        newest = sql.SQL(
            "SELECT DISTINCT ON (id) * FROM {} WHERE {}_stub ORDER BY id, _updated_at DESC, _seq DESC"
        )
        full = sql.SQL(", ").join(map(sql.Identifier, table.all_columns))
        assignments = sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in table.all_columns[1:]
        )
        result = MergeResult()
        with self.conn.cursor() as cur:
            cur.execute(
                sql.SQL(
                    "WITH newest AS ({newest}), merged AS ("
                    "INSERT INTO {t} ({cols}) SELECT {cols} FROM newest "
                    "ON CONFLICT (id) DO UPDATE SET {set} WHERE {newer} "
                    "RETURNING (xmax = 0) AS inserted, _deleted_at IS NOT NULL AS deleted) "
                    "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted), "
                    "count(*) FILTER (WHERE deleted), (SELECT count(*) FROM newest) FROM merged"
                ).format(
                    newest=newest.format(self.STAGE, sql.SQL("NOT ")),
                    t=target,
                    cols=full,
                    set=assignments,
                    newer=newer,
                )
            )
            result.inserted, result.updated, result.deleted, candidates = cur.fetchone()
            if candidates > result.inserted + result.updated:
                # Some rows kept a newer state. One stamped after every state we read cannot be from
                # Stripe's clock: count those, so the task can say so.
                cur.execute(
                    sql.SQL(
                        "WITH newest AS ({newest}) SELECT count(*) FROM {t} t JOIN newest n USING (id) "
                        "WHERE t._updated_at > (SELECT max(_updated_at) FROM newest) AND t._updated_at > n._updated_at"
                    ).format(newest=newest.format(self.STAGE, sql.SQL("NOT ")), t=target)
                )
                result.ahead = cur.fetchone()[0]
            if self.stubs:
                stub_cols = sql.SQL(", ").join(
                    map(
                        sql.Identifier,
                        ["id", "_raw", "_account_id", "_updated_at", "_deleted_at", "_synced_at"],
                    )
                )
                cur.execute(
                    sql.SQL(
                        "WITH merged AS (INSERT INTO {t} ({cols}) SELECT {cols} FROM ({newest}) AS newest "
                        "ON CONFLICT (id) DO UPDATE SET _deleted_at = EXCLUDED._deleted_at, "
                        "_updated_at = EXCLUDED._updated_at, _synced_at = EXCLUDED._synced_at WHERE {newer} "
                        "RETURNING (xmax = 0) AS inserted) "
                        "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged"
                    ).format(
                        t=target, cols=stub_cols, newest=newest.format(self.STAGE, sql.SQL("")), newer=newer
                    )
                )
                inserted, updated = cur.fetchone()
                result.inserted += inserted
                result.updated += updated
                result.deleted += inserted + updated
        return result

    def mark_unstaged_deleted(self, *, account_id: str | None, livemode: bool) -> int:
        """After a full listing: rows of this account and mode that Stripe no longer lists were deleted."""
        table = self.table
        mode = sql.SQL("")
        if "livemode" in table.columns:
            mode = sql.SQL(" AND (t.livemode IS NULL OR t.livemode = {})").format(sql.Literal(livemode))
        with self.conn.cursor() as cur:
            cur.execute(
                sql.SQL(
                    "UPDATE {t} AS t SET _deleted_at = now(), _updated_at = now(), _synced_at = now() "
                    "WHERE t._deleted_at IS NULL AND t._account_id IS NOT DISTINCT FROM %s{mode} "
                    "AND NOT EXISTS (SELECT 1 FROM {stage} s WHERE s.id = t.id)"
                ).format(t=table.ident, stage=self.STAGE, mode=mode),
                (account_id,),
            )
            return cur.rowcount


def _is_stub(obj: Mapping[str, Any]) -> bool:
    """Stripe answers a deleted object's retrieve with only ``id``, ``object`` and ``deleted``."""
    return obj.get("deleted") is True and set(obj) <= {"id", "object", "deleted"}
