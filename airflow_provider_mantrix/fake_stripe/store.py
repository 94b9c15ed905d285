"""The fake Stripe's data: accounts, API keys, objects per resource and mode, events, a clock.

Every object is built from Stripe's own example object for its resource (``fixtures.json``):
copied, given a fresh id and ``created``, and varied only in fields the example has. Objects are
kept as compact JSON text next to the few fields list filters need, so serving a page is a
bisect plus a string join, and a hundred thousand objects fit comfortably in memory.
"""

from __future__ import annotations

import bisect
import calendar
import datetime
import fnmatch
import itertools
import json
import random
import string
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCOUNT_ID = "acct_1Qm9e9rBsqlqSkV9"
ACCOUNT_NAME = "Mantrix Demo Ltd"
API_VERSION = "2026-10-28.endive"
CURRENCY = "gbp"

# FAKE keys, shaped like Stripe's so that key checks treat them as real ones: Stripe never issued
# them and they open nothing but this fake server's demo data. The live-mode ones are written in
# two parts so that secret scanners do not mistake them for a leaked live key.
TEST_SECRET_KEY = "sk_test_51Qm9e9rBsqlqSkV9ADZu4CMWxRed8ZbNem3h2lzN03cOEd9PGS2TINL3eKRpVPLpKA3TmrVlUKuUFXtCuctj7apOxgFedPiaLY"
LIVE_SECRET_KEY = (
    "sk_live_"
    + "51Qm9e9rBsqlqSkV959x3h0bGOYENbWVy3jycdLvwBeaeKOrwa8za7oTejVRXW0i4b8phtA2Dn6YjNJTTldyaqiGYqSXYQLQM3Q"
)
RESTRICTED_TEST_KEY = "rk_test_51Qm9e9rBsqlqSkV9GT8XYj1pgOzPxG9aNv6qveIK4x6isSjjXvoimQixpAe2Za2AljPxFBRBis9RDHrmj3J0083KqTjDIIaakD"
RESTRICTED_LIVE_KEY = (
    "rk_live_"
    + "51Qm9e9rBsqlqSkV9fIqkm6nmhUGMqSTmdFkYejnmWL1mlkHT33Y6hiIIE7DiCGkS9zIgLtXBzoGPjCU8S7Bai4aCD7RF0LBBNd"
)
NO_PERMISSION_KEY = "rk_test_51Qm9e9rBsqlqSkV9nOvn1mBVgxr7jhZd93ahAJI6EIMCLHWmlNd5glSgSyP1HVLBV9M0N5iAdPhkdsRE5hcdWNieexnHTmdK5U"

DAY = 86_400
EVENT_RETENTION_SECONDS = 30 * DAY

_ALPHANUMERIC = string.ascii_letters + string.digits
_UPPER_ALPHANUMERIC = string.ascii_uppercase + string.digits
# byte -> character tables for fast random text (the slight bias towards early letters is harmless)
_ALPHANUMERIC_TABLE = (_ALPHANUMERIC * 5)[:256].encode("ascii")
_UPPER_ALPHANUMERIC_TABLE = (_UPPER_ALPHANUMERIC * 8)[:256].encode("ascii")


def random_text(rng: random.Random, length: int, table: bytes = _ALPHANUMERIC_TABLE) -> str:
    """`length` random letters and digits (ids, secrets, tokens), fast."""
    return rng.randbytes(length).translate(table).decode("ascii")


# --- resources -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """One listable Stripe resource: its URL segment, object name, id shape and events."""

    name: str
    object: str
    id_prefix: str
    id_style: str = "long"  # long: "1" + 5 random + account tail + 8 random (24); short: 14; code: 8 upper
    filters: tuple[str, ...] = ()  # top-level fields list endpoints can filter on
    event_prefix: str | None = None  # None: Stripe sends no events about this object
    created_event: str | None = None
    updated_event: bool = True
    deletable: bool = False
    created_filter: bool = True  # whether the list endpoint accepts `created`
    permission: str = ""

    @property
    def path(self) -> str:
        return f"/v1/{self.name}"


def _resource(name: str, obj: str, prefix: str, **kwargs: Any) -> Resource:
    prefix_events = kwargs.pop("event_prefix", obj)
    kwargs.setdefault("created_event", f"{prefix_events}.created" if prefix_events else None)
    kwargs.setdefault("permission", f"rak_{obj}_read")
    return Resource(name, obj, prefix, event_prefix=prefix_events, **kwargs)


RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in (
        _resource("customers", "customer", "cus_", id_style="short", filters=("email",), deletable=True),
        _resource(
            "charges",
            "charge",
            "ch_",
            filters=("customer", "payment_intent"),
            created_event="charge.succeeded",
        ),
        _resource(
            "invoices",
            "invoice",
            "in_",
            filters=("customer", "status", "subscription", "collection_method"),
            deletable=True,
        ),
        _resource(
            "subscriptions",
            "subscription",
            "sub_",
            filters=("customer", "status", "collection_method"),
            event_prefix="customer.subscription",
        ),
        _resource("products", "product", "prod_", id_style="short", filters=("active",), deletable=True),
        _resource("prices", "price", "price_", filters=("active", "product", "type", "currency")),
        _resource("events", "event", "evt_", filters=("type",), event_prefix=None),
        _resource(
            "balance_transactions",
            "balance_transaction",
            "txn_",
            filters=("type", "source", "currency"),
            event_prefix=None,
            permission="rak_balance_read",
        ),
        _resource("coupons", "coupon", "", id_style="code", deletable=True),
        _resource("payment_intents", "payment_intent", "pi_", filters=("customer",), updated_event=False),
        _resource(
            "payment_methods",
            "payment_method",
            "pm_",
            filters=("customer", "type"),
            created_event="payment_method.attached",
            created_filter=False,
        ),
        _resource("refunds", "refund", "re_", filters=("charge", "payment_intent")),
        _resource(
            "disputes", "dispute", "dp_", filters=("charge", "payment_intent"), event_prefix="charge.dispute"
        ),
        _resource("payouts", "payout", "po_", filters=("status", "destination")),
        _resource("plans", "plan", "price_", filters=("active", "product"), deletable=True),
        _resource("tax_rates", "tax_rate", "txr_", filters=("active", "inclusive")),
        _resource("credit_notes", "credit_note", "cn_", filters=("customer", "invoice")),
        _resource("promotion_codes", "promotion_code", "promo_", filters=("active", "code", "customer")),
        _resource(
            "setup_intents",
            "setup_intent",
            "seti_",
            filters=("customer", "payment_method"),
            updated_event=False,
        ),
    )
}
RESOURCE_BY_OBJECT: dict[str, Resource] = {r.object: r for r in RESOURCES.values()}
# Deleting these leaves a `{"id", "object", "deleted": true}` stub behind; a deleted draft invoice is gone.
_DELETED_STUBS = ("customer", "product", "plan", "coupon")


class NoSuchObject(LookupError):
    """An id that names no object of the resource (Stripe's `resource_missing`)."""

    def __init__(self, resource: Resource, object_id: str):
        super().__init__(f"No such {resource.object}: '{object_id}'")
        self.resource = resource
        self.object_id = object_id


# --- templates and encoding ------------------------------------------------------------------

_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_MISSING = object()
_KEY_JSON: dict[str, str] = {}


def _key_json(key: str) -> str:
    text = _KEY_JSON.get(key)
    if text is None:
        text = _KEY_JSON[key] = _ENCODE(key) + ":"
    return text


class _RawJson(str):
    """Already-encoded JSON, spliced in as is by `encode_object`."""


def _value_json(value: Any) -> str:
    kind = value.__class__
    if kind is _RawJson:
        return str.__str__(value)
    if kind is str:
        return _ENCODE(value)
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    return _ENCODE(value)


class _Template:
    """A fixture object with its fields pre-encoded, so copies that still share a field with it
    reuse that field's JSON instead of encoding it again."""

    __slots__ = ("fields", "parts")

    def __init__(self, fields: dict):
        self.fields = fields
        self.parts = {key: _key_json(key) + _ENCODE(value) for key, value in fields.items()}


def encode_object(obj: dict) -> str:
    """Compact JSON for an object (the same text as json.dumps), faster for template copies."""
    template = TEMPLATES.get(obj.get("object"))  # type: ignore[arg-type]
    if template is None:
        return _ENCODE(obj)
    fields, parts = template.fields, template.parts
    out = []
    for key, value in obj.items():
        if value is fields.get(key, _MISSING):
            out.append(parts[key])
        else:
            out.append(_key_json(key) + _value_json(value))
    return "{" + ",".join(out) + "}"


def _load_fixtures() -> dict[str, dict]:
    with open(Path(__file__).with_name("fixtures.json"), encoding="utf-8") as handle:
        return json.load(handle)["resources"]


FIXTURES = _load_fixtures()

_NULL_ADDRESS = FIXTURES["customer"]["address"]
_NORMALISED: dict[str, dict[str, Any]] = {
    # The fixtures are mock-generated: nullable sub-objects are filled with placeholder values.
    # Real objects of a plain card-payments account have them null, and are in the account's currency.
    "customer": {"discount": None, "shipping": None, "currency": CURRENCY, "preferred_locales": ["en-GB"]},
    "charge": {
        "source": None,
        "transfer_data": None,
        "description": None,
        "shipping": None,
        "currency": CURRENCY,
        "calculated_statement_descriptor": "MANTRIX DEMO",
        "captured": True,
        "receipt_url": None,
    },
    "invoice": {
        "last_finalization_error": None,
        "from_invoice": None,
        "shipping_cost": None,
        "shipping_details": None,
        "amount_overpaid": 0,
        "account_name": ACCOUNT_NAME,
        "account_country": "GB",
        "currency": CURRENCY,
        "customer_shipping": None,
        "parent": None,
        "due_date": None,
        "next_payment_attempt": None,
        "webhooks_delivered_at": None,
        "effective_at": None,
    },
    "subscription": {
        "cancel_at": None,
        "canceled_at": None,
        "ended_at": None,
        "trial_start": None,
        "trial_end": None,
        "pause_collection": None,
        "pending_update": None,
        "pending_invoice_item_interval": None,
        "next_pending_invoice_item_invoice": None,
        "transfer_data": None,
        "billing_cycle_anchor_config": None,
        "billing_thresholds": None,
        "cancel_at_period_end": False,
        "currency": CURRENCY,
        "managed_payments": {"enabled": False},
        "billing_schedules": [],
    },
    "payment_intent": {
        "canceled_at": None,
        "last_payment_error": None,
        "next_action": None,
        "processing": None,
        "transfer_data": None,
        "payment_method_configuration_details": None,
        "currency": CURRENCY,
        "managed_payments": {"enabled": False},
        "shipping": None,
    },
    "setup_intent": {
        "last_setup_error": None,
        "next_action": None,
        "payment_method_configuration_details": None,
        "automatic_payment_methods": {"enabled": True},
    },
    "product": {"package_dimensions": None, "type": "service", "description": None},
    "price": {"transform_quantity": None, "currency": CURRENCY},
    "plan": {"transform_usage": None, "currency": CURRENCY},
    "tax_rate": {"flat_amount": None, "rate_type": "percentage"},
    "coupon": {"redeem_by": None, "duration_in_months": None, "currency": None},
    "promotion_code": {"expires_at": None, "active": True},
    "payment_method": {"metadata": {}},
    "credit_note": {
        "shipping_cost": None,
        "refunds": [],
        "pretax_credit_amounts": [],
        "voided_at": None,
        "currency": CURRENCY,
        "type": "post_payment",
        "pre_payment_amount": 0,
    },
    "refund": {"currency": CURRENCY, "destination_details": {"card": {"type": "refund"}, "type": "card"}},
    "dispute": {"currency": CURRENCY, "enhanced_eligibility_types": []},
    "payout": {"currency": CURRENCY, "trace_id": {"status": "unsupported", "value": None}},
    "balance_transaction": {"currency": CURRENCY},
    "event": {"request": {"id": None, "idempotency_key": None}},
}
TEMPLATES: dict[str, _Template] = {
    name: _Template({**FIXTURES[name], **_NORMALISED[name]}) for name in _NORMALISED
}
# Nested examples reused when building objects.
_CARD_DETAILS = {
    **FIXTURES["charge"]["payment_method_details"]["card"],
    "wallet": None,
    "installments": None,
    "three_d_secure": None,
    "mandate": None,
}
_PM_CARD = {**FIXTURES["payment_method"]["card"], "generated_from": None, "wallet": None}
_INVOICE_LINE = FIXTURES["invoice"]["lines"]["data"][0]
_SUBSCRIPTION_ITEM = FIXTURES["subscription"]["items"]["data"][0]
_CREDIT_NOTE_LINE = FIXTURES["credit_note"]["lines"]["data"][1]


def previous_attributes(old: dict, new: dict) -> dict:
    """Stripe's `data.previous_attributes`: the old values of changed keys (nested dicts: changed parts)."""
    previous = {}
    for key, value in new.items():
        before = old.get(key)
        if before == value:
            continue
        if isinstance(before, dict) and isinstance(value, dict):
            previous[key] = previous_attributes(before, value)
        else:
            previous[key] = before
    return previous


def _merged(old: Any, change: Any) -> Any:
    """Stripe's update semantics for hashes (e.g. metadata): given keys replace, others stay."""
    if isinstance(old, dict) and isinstance(change, dict):
        return {**old, **{key: _merged(old.get(key), value) for key, value in change.items()}}
    return change


# --- records, collections, datasets ----------------------------------------------------------


class Record:
    """One stored object: sort key (created, insertion sequence), id, JSON body, filterable fields."""

    __slots__ = ("key", "id", "body", "fields")

    def __init__(self, key: tuple[int, int], object_id: str, body: str, fields: dict[str, Any]):
        self.key = key
        self.id = object_id
        self.body = body
        self.fields = fields


class Collection:
    """The objects of one resource in one dataset, sorted oldest first by (created, sequence)."""

    def __init__(self, resource: Resource):
        self.resource = resource
        self.keys: list[tuple[int, int]] = []
        self.records: list[Record] = []
        self.by_id: dict[str, Record] = {}
        self.deleted: dict[str, Record] = {}

    def __len__(self) -> int:
        return len(self.records)

    def add(self, record: Record) -> None:
        index = bisect.bisect_right(self.keys, record.key)
        self.keys.insert(index, record.key)
        self.records.insert(index, record)
        self.by_id[record.id] = record

    def add_many(self, records: list[Record]) -> None:
        if not records:
            return
        records.sort(key=lambda record: record.key)
        in_order = not self.keys or self.keys[-1] < records[0].key
        self.records.extend(records)
        if not in_order:
            self.records.sort(key=lambda record: record.key)
        self.keys = [record.key for record in self.records]
        self.by_id.update((record.id, record) for record in records)

    def _index(self, record: Record) -> int:
        return bisect.bisect_left(self.keys, record.key)

    def replace(self, record: Record) -> None:
        self.records[self._index(record)] = record
        self.by_id[record.id] = record

    def remove(self, object_id: str) -> Record:
        record = self.by_id.pop(object_id)
        index = self._index(record)
        del self.keys[index]
        del self.records[index]
        self.deleted[object_id] = record
        return record

    def cursor_key(self, object_id: str) -> tuple[int, int]:
        record = self.by_id.get(object_id) or self.deleted.get(object_id)
        if record is None:
            raise NoSuchObject(self.resource, object_id)
        return record.key

    def page(
        self,
        *,
        created_gte: int | None = None,
        created_lt: int | None = None,
        after: tuple[int, int] | None = None,
        before: tuple[int, int] | None = None,
        limit: int = 10,
        match: Callable[[Record], bool] | None = None,
    ) -> tuple[list[Record], bool]:
        """Stripe list semantics, newest first: the records older than `after`, or the ones just
        newer than `before`, within [created_gte, created_lt); plus whether more remain."""
        keys, records = self.keys, self.records
        lo = 0 if created_gte is None else bisect.bisect_left(keys, (created_gte,))
        hi = len(keys) if created_lt is None else bisect.bisect_left(keys, (created_lt,))
        if after is not None:
            hi = min(hi, bisect.bisect_left(keys, after))
        if before is not None:
            lo = max(lo, bisect.bisect_right(keys, before))
        if lo >= hi:
            return [], False
        if match is None:
            if before is not None:
                stop = min(lo + limit, hi)
                return records[lo:stop][::-1], stop < hi
            start = max(lo, hi - limit)
            return records[start:hi][::-1], start > lo
        chosen: list[Record] = []
        indexes = range(lo, hi) if before is not None else range(hi - 1, lo - 1, -1)
        more = False
        for index in indexes:
            record = records[index]
            if match(record):
                if len(chosen) == limit:
                    more = True
                    break
                chosen.append(record)
        if before is not None:
            chosen.reverse()
        return chosen, more


class Dataset:
    """All objects of one account in one mode (test or live)."""

    def __init__(self, account: str, livemode: bool):
        self.account = account
        self.livemode = livemode
        self.collections = {name: Collection(resource) for name, resource in RESOURCES.items()}
        self.bank_account: str | None = None

    def __getitem__(self, resource: str) -> Collection:
        return self.collections[resource]


@dataclass(frozen=True)
class ApiKey:
    """What a key may do: restricted keys read data but not the account; can_read=False reads nothing."""

    account: str
    livemode: bool
    restricted: bool = False
    can_read: bool = True


# --- time helpers ----------------------------------------------------------------------------


def _add_months(timestamp: int, months: int) -> int:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def _next_period(timestamp: int, interval: str) -> int:
    return _add_months(timestamp, 12 if interval == "year" else 1)


def _midnight(timestamp: int) -> int:
    return timestamp - timestamp % DAY


# --- object builders -------------------------------------------------------------------------

_FIRST_NAMES = (
    "Olivia Noah Amelia Oliver Isla George Ava Arthur Mia Leo Ivy Harry Freya Oscar Lily Theo Florence "
    "Jack Grace Charlie Ella Muhammad Sophia Alfie Aisha Kai Priya Mateo Yuki Zara Niamh Tomasz"
).split()
_LAST_NAMES = (
    "Smith Jones Taylor Brown Williams Wilson Johnson Davies Patel Robinson Wright Thompson Evans Walker "
    "White Roberts Green Hall Wood Jackson Clarke Khan Lewis Harris Martin Cooper Hughes Edwards Chen Okafor"
).split()
_CITIES = (
    ("London", "GB", "EC1A 1BB", "1 Finsbury Square"),
    ("Manchester", "GB", "M1 1AE", "22 Piccadilly"),
    ("Bristol", "GB", "BS1 4DJ", "5 Queen Square"),
    ("Edinburgh", "GB", "EH1 1YZ", "9 Royal Mile"),
    ("Dublin", "IE", "D02 X285", "14 Grafton Street"),
    ("Berlin", "DE", "10115", "Invalidenstrasse 3"),
    ("Paris", "FR", "75001", "8 Rue de Rivoli"),
    ("Leeds", "GB", "LS1 4DY", "40 Park Row"),
)
_CARDS = (  # brand, last4, funding, country
    ("visa", "4242", "credit", "GB"),
    ("visa", "5556", "debit", "GB"),
    ("mastercard", "4444", "credit", "GB"),
    ("mastercard", "8210", "debit", "IE"),
    ("amex", "8431", "credit", "US"),
    ("visa", "0077", "credit", "DE"),
)
_PRODUCTS = (  # name, monthly amount, unit label for per-seat pricing
    ("Starter plan", 1900, None),
    ("Team plan", 4900, None),
    ("Business plan", 14900, None),
    ("Enterprise plan", 49900, None),
    ("Extra seats", 900, "seat"),
    ("Priority support", 9900, None),
    ("Analytics add-on", 2900, None),
    ("Data export add-on", 1500, None),
)
_TAX_RATES = (  # display name, description, country, jurisdiction, percentage, tax type, state, active
    ("VAT", "VAT United Kingdom", "GB", "GB", 20.0, "vat", None, True),
    ("VAT", "VAT Germany", "DE", "DE", 19.0, "vat", None, True),
    ("VAT", "VAT France", "FR", "FR", 20.0, "vat", None, True),
    ("Sales Tax", "California sales tax", "US", "US - CA", 7.25, "sales_tax", "CA", False),
)
_COUPONS = (  # name, percent_off, amount_off, duration, months, promotion code, code active
    ("25% off for 3 months", 25.0, None, "repeating", 3, "SPRING25", True),
    ("£10 off your first invoice", None, 1000, "once", None, "WELCOME10", True),
    ("15% loyalty discount", 15.0, None, "forever", None, "LOYALTY15", True),
    ("Black Friday 40%", 40.0, None, "once", None, "BF40", False),
)


class _Factory:
    """Builds objects of one dataset from the templates: fresh ids, given times, varied fields."""

    def __init__(self, store: FakeStripe, dataset: Dataset, rng: random.Random):
        self.store = store
        self.dataset = dataset
        self.rng = rng
        self.livemode = dataset.livemode
        self.mode = "live" if dataset.livemode else "test"
        self.account_tail = dataset.account[-10:]

    # ids and plumbing

    def new_id(self, prefix: str, style: str = "long") -> str:
        return self.store._new_id(prefix, style, self.rng, self.account_tail)

    def resource_id(self, resource: str) -> str:
        spec = RESOURCES[resource]
        return self.new_id(spec.id_prefix, spec.id_style)

    def random_text(self, length: int, table: bytes = _ALPHANUMERIC_TABLE) -> str:
        return random_text(self.rng, length, table)

    def build(self, object_name: str, /, **fields: Any) -> dict:
        """A copy of the example `object_name` with `fields` replaced (never fields it lacks)."""
        template = TEMPLATES[object_name].fields
        unknown = fields.keys() - template.keys()
        if unknown:
            raise ValueError(f"Stripe's {object_name} has no field(s) {sorted(unknown)}")
        obj = dict(template)
        obj.update(fields)
        if "livemode" in obj and self.livemode:
            obj["livemode"] = True
        return obj

    def card(self) -> dict:
        brand, last4, funding, country = self.rng.choice(_CARDS)
        return {
            "brand": brand,
            "last4": last4,
            "funding": funding,
            "country": country,
            "exp_month": self.rng.randint(1, 12),
            "exp_year": self.rng.randint(2027, 2032),
            "fingerprint": self.random_text(16),
        }

    def address(self) -> dict:
        city, country, postal_code, line1 = self.rng.choice(_CITIES)
        return {
            "city": city,
            "country": country,
            "line1": line1,
            "line2": None,
            "postal_code": postal_code,
            "state": None,
        }

    def existing_id(self, resource: str) -> str | None:
        """An existing object's id for standalone objects that refer to one, if any exists."""
        records = self.dataset[resource].records
        return self.rng.choice(records).id if records else None

    # catalog

    def product(
        self, created: int, name: str = "Starter plan", unit_label: str | None = None, **fields: Any
    ) -> dict:
        return self.build(
            "product",
            id=self.resource_id("products"),
            created=created,
            updated=created,
            name=name,
            unit_label=unit_label,
            default_price=None,
            images=[],
            marketing_features=[],
            metadata={},
            **fields,
        )

    def price(
        self,
        created: int,
        product: str | None = None,
        unit_amount: int = 1900,
        interval: str | None = "month",
        active: bool = True,
        nickname: str | None = None,
        lookup_key: str | None = None,
    ) -> dict:
        recurring = None
        if interval:
            recurring = {
                "interval": interval,
                "interval_count": 1,
                "meter": None,
                "usage_type": "licensed",
                "trial_period_days": None,
            }
        return self.build(
            "price",
            id=self.resource_id("prices"),
            created=created,
            product=product,
            unit_amount=unit_amount,
            unit_amount_decimal=str(unit_amount),
            recurring=recurring,
            type="recurring" if interval else "one_time",
            active=active,
            nickname=nickname,
            lookup_key=lookup_key,
            custom_unit_amount=None,
        )

    def plan_for(self, price: dict) -> dict:
        """The plan Stripe shows for a recurring price: same id, same terms."""
        recurring = price["recurring"] or {"interval": "month", "interval_count": 1}
        return self.build(
            "plan",
            id=price["id"],
            created=price["created"],
            product=price["product"],
            active=price["active"],
            amount=price["unit_amount"],
            amount_decimal=price["unit_amount_decimal"],
            nickname=price["nickname"],
            interval=recurring["interval"],
            interval_count=recurring["interval_count"],
        )

    def plan(self, created: int) -> dict:
        return self.plan_for(self.price(created, product=self.existing_id("products")))

    def tax_rate(self, created: int, spec: tuple = _TAX_RATES[0]) -> dict:
        display_name, description, country, jurisdiction, percentage, tax_type, state, active = spec
        return self.build(
            "tax_rate",
            id=self.resource_id("tax_rates"),
            created=created,
            display_name=display_name,
            description=description,
            country=country,
            jurisdiction=jurisdiction,
            percentage=percentage,
            effective_percentage=percentage,
            tax_type=tax_type,
            state=state,
            active=active,
            inclusive=False,
        )

    def coupon(self, created: int, spec: tuple = _COUPONS[2], valid: bool = True) -> dict:
        name, percent_off, amount_off, duration, months, _code, _active = spec
        return self.build(
            "coupon",
            id=self.resource_id("coupons"),
            created=created,
            name=name,
            percent_off=percent_off,
            amount_off=amount_off,
            currency=CURRENCY if amount_off else None,
            duration=duration,
            duration_in_months=months,
            valid=valid,
        )

    def promotion_code(
        self, created: int, coupon: str | None = None, code: str = "WELCOME10", active: bool = True
    ) -> dict:
        return self.build(
            "promotion_code",
            id=self.resource_id("promotion_codes"),
            created=created,
            code=code,
            active=active,
            promotion={"coupon": coupon, "type": "coupon"},
        )

    # customers and payment methods

    def customer(self, created: int) -> dict:
        first, last = self.rng.choice(_FIRST_NAMES), self.rng.choice(_LAST_NAMES)
        email = f"{first}.{last}{self.rng.randint(1, 999)}@example.com".lower()
        has_address = self.rng.random() < 0.7
        return self.build(
            "customer",
            id=self.resource_id("customers"),
            created=created,
            name=f"{first} {last}",
            email=email,
            address=self.address() if has_address else None,
            currency=None,
            phone=f"+4479{self.rng.randint(10_000_000, 99_999_999)}" if self.rng.random() < 0.4 else None,
            invoice_prefix=self.random_text(8, _UPPER_ALPHANUMERIC_TABLE),
            next_invoice_sequence=1,
            invoice_settings={
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            metadata={},
        )

    def payment_method(self, created: int, customer: dict | None = None) -> dict:
        card = self.card()
        name = customer["name"] if customer else None
        return self.build(
            "payment_method",
            id=self.resource_id("payment_methods"),
            created=created,
            customer=customer["id"] if customer else None,
            billing_details={
                "address": (customer and customer["address"]) or _NULL_ADDRESS,
                "email": customer["email"] if customer else None,
                "name": name,
                "phone": None,
                "tax_id": None,
            },
            card={
                **_PM_CARD,
                **card,
                "display_brand": card["brand"],
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": "pass",
                    "cvc_check": "pass",
                },
                "networks": {"available": [card["brand"]], "preferred": None},
                "regulated_status": "unregulated",
            },
        )

    def setup_intent(
        self, created: int, customer: str | None = None, payment_method: str | None = None
    ) -> dict:
        setup_id = self.resource_id("setup_intents")
        return self.build(
            "setup_intent",
            id=setup_id,
            created=created,
            customer=customer,
            payment_method=payment_method,
            client_secret=f"{setup_id}_secret_{self.random_text(32)}",
            status="succeeded" if payment_method else "requires_payment_method",
        )

    # payments

    def payment_intent(
        self,
        created: int,
        amount: int,
        customer: str | None = None,
        payment_method: str | None = None,
        description: str | None = None,
        succeeded: bool = True,
    ) -> dict:
        intent_id = self.resource_id("payment_intents")
        return self.build(
            "payment_intent",
            id=intent_id,
            created=created,
            amount=amount,
            amount_received=amount if succeeded else 0,
            customer=customer,
            payment_method=payment_method,
            description=description,
            client_secret=f"{intent_id}_secret_{self.random_text(25)}",
            status="succeeded" if succeeded else "requires_payment_method",
            last_payment_error=None if succeeded else {"type": "card_error"},
        )

    def charge(
        self,
        created: int,
        amount: int,
        customer: dict | None = None,
        payment_method: dict | None = None,
        payment_intent: str | None = None,
        balance_transaction: str | None = None,
        description: str | None = None,
        succeeded: bool = True,
    ) -> dict:
        charge_id = self.resource_id("charges")
        if payment_method:
            card = payment_method["card"]
        else:
            card = self.card()
        details = {
            **_CARD_DETAILS,
            "brand": card["brand"],
            "last4": card["last4"],
            "funding": card["funding"],
            "country": card["country"],
            "exp_month": card["exp_month"],
            "exp_year": card["exp_year"],
            "fingerprint": card["fingerprint"],
            "network": card["brand"],
            "amount_authorized": amount,
            "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
        }
        if succeeded:
            outcome = {
                "advice_code": None,
                "network_advice_code": None,
                "network_decline_code": None,
                "network_status": "approved_by_network",
                "reason": None,
                "seller_message": "Payment complete.",
                "type": "authorized",
            }
        else:
            outcome = {
                "advice_code": "try_again_later",
                "network_advice_code": None,
                "network_decline_code": None,
                "network_status": "declined_by_network",
                "reason": "generic_decline",
                "seller_message": "The bank did not return any further details with this decline.",
                "type": "issuer_declined",
            }
        email = customer["email"] if customer else None
        return self.build(
            "charge",
            id=charge_id,
            created=created,
            amount=amount,
            amount_captured=amount if succeeded else 0,
            amount_refunded=0,
            refunded=False,
            disputed=False,
            customer=customer["id"] if customer else None,
            payment_intent=payment_intent,
            payment_method=payment_method["id"] if payment_method else None,
            balance_transaction=balance_transaction if succeeded else None,
            description=description,
            billing_details={
                "address": (customer and customer["address"]) or _NULL_ADDRESS,
                "email": email,
                "name": customer["name"] if customer else None,
                "phone": None,
                "tax_id": None,
            },
            payment_method_details={"card": details, "type": "card"},
            outcome=outcome,
            paid=succeeded,
            captured=succeeded,
            status="succeeded" if succeeded else "failed",
            receipt_email=email,
            failure_code=None if succeeded else "card_declined",
            failure_message=None if succeeded else "Your card was declined.",
            receipt_url=(
                f"https://pay.stripe.com/receipts/payment/{self.random_text(64)}" if succeeded else None
            ),
            refunds={
                "data": [],
                "has_more": False,
                "object": "list",
                "url": f"/v1/charges/{charge_id}/refunds",
            },
        )

    def balance_transaction(
        self,
        created: int,
        amount: int,
        fee: int = 0,
        source: str | None = None,
        kind: str = "charge",
        category: str | None = None,
        description: str | None = None,
        available_on: int | None = None,
    ) -> dict:
        available_on = _midnight(created) + 2 * DAY if available_on is None else available_on
        return self.build(
            "balance_transaction",
            id=self.resource_id("balance_transactions"),
            created=created,
            amount=amount,
            fee=fee,
            net=amount - fee,
            source=source,
            type=kind,
            reporting_category=category or kind,
            description=description,
            available_on=available_on,
            status="available" if available_on <= self.store.now else "pending",
        )

    def refund(
        self,
        created: int,
        amount: int,
        charge: dict | None = None,
        balance_transaction: str | None = None,
        reason: str | None = None,
    ) -> dict:
        return self.build(
            "refund",
            id=self.resource_id("refunds"),
            created=created,
            amount=amount,
            charge=charge["id"] if charge else None,
            payment_intent=charge["payment_intent"] if charge else None,
            customer=charge["customer"] if charge else None,
            payment_method=charge["payment_method"] if charge else None,
            balance_transaction=balance_transaction,
            reason=reason,
            status="succeeded",
            metadata={},
        )

    def dispute(self, created: int, charge: dict | None = None, transaction: dict | None = None) -> dict:
        amount = charge["amount"] if charge else self.rng.randint(10, 300) * 100
        brand = charge["payment_method_details"]["card"]["brand"] if charge else "visa"
        status = self.rng.choice(
            ("needs_response", "needs_response", "under_review", "lost", "warning_needs_response")
        )
        return self.build(
            "dispute",
            id=self.resource_id("disputes"),
            created=created,
            amount=amount,
            charge=charge["id"] if charge else None,
            payment_intent=charge["payment_intent"] if charge else None,
            balance_transactions=[transaction] if transaction else [],
            status=status,
            is_charge_refundable=False,
            reason=self.rng.choice(
                ("fraudulent", "product_not_received", "subscription_canceled", "duplicate")
            ),
            evidence_details={
                "due_by": _midnight(created) + 9 * DAY - 1,
                "has_evidence": status == "under_review",
                "past_due": False,
                "submission_count": int(status == "under_review"),
                "enhanced_eligibility": {},
            },
            payment_method_details={
                "card": {
                    "brand": brand,
                    "case_type": "chargeback",
                    "network_reason_code": "10.4",
                    "network": brand,
                },
                "type": "card",
            },
        )

    def payout(self, created: int, amount: int, balance_transaction: str | None = None) -> dict:
        if self.dataset.bank_account is None:
            self.dataset.bank_account = self.new_id("ba_")
        arrival = _midnight(created) + DAY
        paid = arrival <= self.store.now
        return self.build(
            "payout",
            id=self.resource_id("payouts"),
            created=created,
            amount=amount,
            arrival_date=arrival,
            balance_transaction=balance_transaction,
            destination=self.dataset.bank_account,
            status="paid" if paid else "in_transit",
            reconciliation_status="completed" if paid else "in_progress",
        )

    # billing

    def invoice(
        self,
        created: int,
        amount: int,
        customer: dict | None = None,
        subscription: str | None = None,
        item: dict | None = None,
        period: tuple[int, int] | None = None,
        billing_reason: str = "manual",
        collection_method: str = "charge_automatically",
        description: str | None = None,
    ) -> dict:
        invoice_id = self.resource_id("invoices")
        period_start, period_end = period or (created, created)
        if subscription and item:
            price = item["price"]
            line_description = f"{item['quantity']} × {price['nickname'] or 'subscription'}"
            line_parent = {
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": None,
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": subscription,
                    "subscription_item": item["id"],
                },
                "type": "subscription_item_details",
            }
            quantity, unit_amount = item["quantity"], price["unit_amount"]
        else:
            line_description = description or "Professional services"
            line_parent = {
                "invoice_item_details": {
                    "invoice_item": self.new_id("ii_"),
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": None,
                },
                "subscription_item_details": None,
                "type": "invoice_item_details",
            }
            quantity, unit_amount = 1, amount
        line = {
            **_INVOICE_LINE,
            "id": self.new_id("il_"),
            "invoice": invoice_id,
            "livemode": self.livemode,
            "amount": amount,
            "currency": CURRENCY,
            "description": line_description,
            "metadata": {},
            "period": {"end": period_end, "start": period_start},
            "quantity": quantity,
            "subscription": subscription,
            "parent": line_parent,
            "subtotal": amount,
            "taxes": [],
            "pretax_credit_amounts": [],
            "pricing": {"type": "price_details", "unit_amount_decimal": str(unit_amount)},
        }
        parent = None
        if subscription:
            parent = {
                "quote_details": None,
                "subscription_details": {"metadata": {}, "subscription": subscription},
                "type": "subscription_details",
            }
        return self.build(
            "invoice",
            id=invoice_id,
            created=created,
            customer=customer["id"] if customer else None,
            customer_email=customer["email"] if customer else None,
            customer_name=customer["name"] if customer else None,
            customer_address=customer["address"] if customer else None,
            customer_phone=customer["phone"] if customer else None,
            amount_due=amount,
            amount_paid=0,
            amount_remaining=amount,
            subtotal=amount,
            subtotal_excluding_tax=amount,
            total=amount,
            total_excluding_tax=amount,
            subscription=subscription,
            parent=parent,
            billing_reason=billing_reason,
            collection_method=collection_method,
            description=description,
            period_start=period_start,
            period_end=period_end,
            status="draft",
            number=None,
            auto_advance=True,
            automatically_finalizes_at=created + 3600,
            ending_balance=None,
            attempt_count=0,
            attempted=False,
            status_transitions={
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            lines={
                "data": [line],
                "has_more": False,
                "object": "list",
                "url": f"/v1/invoices/{invoice_id}/lines",
            },
            hosted_invoice_url=None,
            invoice_pdf=None,
            customer_tax_ids=[],
            metadata={},
        )

    def subscription_item(
        self, created: int, subscription: str, price: dict, plan: dict, quantity: int, period: tuple[int, int]
    ) -> dict:
        return {
            **_SUBSCRIPTION_ITEM,
            "id": self.new_id("si_", "short"),
            "created": created,
            "subscription": subscription,
            "price": price,
            "plan": plan,
            "quantity": quantity,
            "metadata": {},
            "discounts": [],
            "tax_rates": [],
            "current_period_start": period[0],
            "current_period_end": period[1],
            "billing_thresholds": None,
        }

    def subscription(
        self,
        created: int,
        customer: str | None,
        price: dict,
        plan: dict,
        quantity: int = 1,
        payment_method: str | None = None,
        trial_end: int | None = None,
    ) -> dict:
        subscription_id = self.resource_id("subscriptions")
        interval = (price["recurring"] or {}).get("interval", "month")
        anchor = trial_end or created
        period = (created, trial_end) if trial_end else (created, _next_period(created, interval))
        item = self.subscription_item(created, subscription_id, price, plan, quantity, period)
        return self.build(
            "subscription",
            id=subscription_id,
            created=created,
            start_date=created,
            billing_cycle_anchor=anchor,
            customer=customer,
            default_payment_method=payment_method,
            status="trialing" if trial_end else "active",
            trial_start=created if trial_end else None,
            trial_end=trial_end,
            latest_invoice=None,
            metadata={},
            cancellation_details={"comment": None, "feedback": None, "reason": None},
            items={
                "data": [item],
                "has_more": False,
                "object": "list",
                "url": f"/v1/subscription_items?subscription={subscription_id}",
            },
        )

    def credit_note(self, created: int, invoice: dict, amount: int) -> dict:
        credit_note_id = self.resource_id("credit_notes")
        line = {
            **_CREDIT_NOTE_LINE,
            "id": self.new_id("cnli_"),
            "livemode": self.livemode,
            "amount": amount,
            "unit_amount": amount,
            "unit_amount_decimal": str(amount),
            "description": "Goodwill credit",
            "pretax_credit_amounts": [],
            "taxes": [],
            "metadata": {},
        }
        number = f"{invoice['number'] or invoice['id'][-8:].upper()}-CN-01"
        return self.build(
            "credit_note",
            id=credit_note_id,
            created=created,
            effective_at=created,
            amount=amount,
            subtotal=amount,
            subtotal_excluding_tax=amount,
            total=amount,
            total_excluding_tax=amount,
            customer=invoice["customer"],
            invoice=invoice["id"],
            number=number,
            memo="Goodwill credit",
            out_of_band_amount=amount,
            post_payment_amount=amount,
            reason=self.rng.choice((None, "product_unsatisfactory", "order_change")),
            pdf=f"https://pay.stripe.com/credit_notes/{self.dataset.account}/{self.mode}_{self.random_text(40)}/pdf?s=ap",
            lines={
                "data": [line],
                "has_more": False,
                "object": "list",
                "url": f"/v1/credit_notes/{credit_note_id}/lines",
            },
        )

    # standalone objects (bulk seeding, store.create)

    def standalone(self, resource: str, created: int) -> dict:
        """One plausible object of `resource` on its own; references point at existing objects or are null."""
        rng = self.rng
        amount = rng.randint(5, 500) * 100
        if resource == "customers":
            return self.customer(created)
        if resource == "charges":
            return self.charge(created, amount)
        if resource == "invoices":
            return self.invoice(created, amount)
        if resource == "subscriptions":
            price = self.price(created)
            return self.subscription(created, self.existing_id("customers"), price, self.plan_for(price))
        if resource == "products":
            name, _amount, unit_label = rng.choice(_PRODUCTS)
            return self.product(created, name, unit_label)
        if resource == "prices":
            return self.price(created, product=self.existing_id("products"), unit_amount=amount)
        if resource == "plans":
            return self.plan(created)
        if resource == "events":
            return self.event("customer.created", self.customer(created), created)
        if resource == "balance_transactions":
            return self.balance_transaction(created, amount, fee=round(amount * 0.015) + 20)
        if resource == "coupons":
            return self.coupon(created, rng.choice(_COUPONS))
        if resource == "payment_intents":
            return self.payment_intent(created, amount)
        if resource == "payment_methods":
            # Attached to an existing customer where there is one: only those are listed.
            records = self.dataset["customers"].records
            customer = json.loads(self.rng.choice(records).body) if records else None
            return self.payment_method(created, customer)
        if resource == "refunds":
            return self.refund(created, amount)
        if resource == "disputes":
            return self.dispute(created)
        if resource == "payouts":
            return self.payout(created, amount)
        if resource == "tax_rates":
            return self.tax_rate(created, rng.choice(_TAX_RATES))
        if resource == "credit_notes":
            return self.credit_note(created, self.invoice(created, amount), amount)
        if resource == "promotion_codes":
            return self.promotion_code(
                created, self.existing_id("coupons"), self.random_text(8, _UPPER_ALPHANUMERIC_TABLE)
            )
        if resource == "setup_intents":
            return self.setup_intent(created)
        raise KeyError(resource)

    # events

    def event(
        self,
        event_type: str,
        obj: dict,
        created: int,
        previous: dict | None = None,
        api_version: str | None = None,
    ) -> dict:
        data: dict[str, Any] = {"object": obj}
        if previous is not None:
            data["previous_attributes"] = previous
        return self.build(
            "event",
            id=self.resource_id("events"),
            created=created,
            type=event_type,
            data=data,
            api_version=api_version or self.store.api_version,
        )


def _encode_event(event: dict) -> str:
    """An event's JSON with its embedded object encoded through its template (the costly part)."""
    data = event["data"]
    body = '{"object":' + encode_object(data["object"])
    if "previous_attributes" in data:
        body += ',"previous_attributes":' + _ENCODE(data["previous_attributes"])
    return encode_object({**event, "data": _RawJson(body + "}")})


# --- realistic seeding -----------------------------------------------------------------------


class _Seeder:
    """Simulates an account's activity over a time range, oldest first, then stores the result.

    Objects are collected as dicts (later changes such as refunds update them in place) and are
    encoded once at the end; events are encoded when emitted so they show the object as it was.
    """

    def __init__(self, store: FakeStripe, dataset: Dataset, rng: random.Random, start: int, end: int):
        self.store = store
        self.make = _Factory(store, dataset, rng)
        self.rng = rng
        self.start, self.end = start, end
        self.latest = end - 600  # the last moment an activity starts, so its follow-ups stay before `end`
        self.objects: dict[str, list[dict]] = {name: [] for name in RESOURCES}
        self.events: list[dict] = []
        self.plans: dict[str, dict] = {}
        self.subscribable: list[tuple[dict, str | None]] = []
        self.transactions: list[dict] = []  # charge, refund and dispute transactions, for payouts
        self.payout_of: dict[str, str] = {}  # balance transaction id -> the payout that paid it out
        # one-off invoices go through every status in turn, so even small datasets have them all
        self.manual_outcomes = itertools.cycle(
            ("draft", "open", "paid", "void", "uncollectible", "paid", "open")
        )

    def add(self, resource: str, obj: dict) -> dict:
        self.objects[resource].append(obj)
        return obj

    def emit(self, event_type: str, obj: dict, created: int, previous: dict | None = None) -> None:
        event = self.make.event(event_type, obj, created, previous)
        self.events.append(
            {"created": created, "type": event_type, "body": _encode_event(event), "id": event["id"]}
        )

    def change(self, obj: dict, created: int, event_type: str | None, **changes: Any) -> None:
        previous = previous_attributes(obj, changes)
        obj.update(changes)
        if event_type:
            self.emit(event_type, obj, created, previous)

    # the story

    def run(self, customers: int, payments_per_customer: float, products: int) -> None:
        self.seed_catalog(self.start, products)
        times = sorted(
            self.rng.randint(self.start + 3600, max(self.start + 3600, self.latest - 3600))
            for _ in range(customers)
        )
        for created in times:
            self.seed_customer(created, payments_per_customer)
        self.seed_payouts()

    def seed_catalog(self, t: int, products: int) -> None:
        make, rng = self.make, self.rng
        for index, spec in enumerate(_TAX_RATES):
            self.emit("tax_rate.created", self.add("tax_rates", make.tax_rate(t + index, spec)), t + index)
        t += 60
        for index, spec in enumerate(_COUPONS):
            coupon = self.add("coupons", make.coupon(t + index, spec, valid=spec[6]))
            self.emit("coupon.created", coupon, t + index)
            expires = None if spec[6] else t + 3600
            code = make.promotion_code(t + index + 30, coupon["id"], spec[5], active=spec[6])
            code["expires_at"] = expires
            self.emit("promotion_code.created", self.add("promotion_codes", code), t + index + 30)
        t += 600
        for index in range(products):
            name, monthly, unit_label = _PRODUCTS[index % len(_PRODUCTS)]
            product = self.add("products", make.product(t, name, unit_label))
            self.emit("product.created", product, t)
            slug = name.lower().replace(" ", "_").replace("-", "_")
            prices = [
                make.price(
                    t + 1,
                    product["id"],
                    monthly,
                    "month",
                    nickname=f"{name} monthly",
                    lookup_key=f"{slug}_monthly",
                ),
                make.price(
                    t + 2,
                    product["id"],
                    monthly * 10,
                    "year",
                    nickname=f"{name} yearly",
                    lookup_key=f"{slug}_yearly",
                ),
            ]
            if index % 2 == 0:
                prices.append(
                    make.price(
                        t + 3,
                        product["id"],
                        monthly * 4 // 5,
                        "month",
                        active=False,
                        nickname=f"{name} monthly (legacy)",
                    )
                )
            if index == 0:
                prices.append(make.price(t + 4, product["id"], 25000, None, nickname="Onboarding package"))
            for price in prices:
                self.add("prices", price)
                self.emit("price.created", price, price["created"])
                if price["recurring"]:
                    plan = self.add("plans", make.plan_for(price))
                    self.plans[price["id"]] = plan
                    self.emit("plan.created", plan, price["created"])
                    if price["active"]:
                        self.subscribable.append((price, unit_label))
            self.change(product, t + 5, "product.updated", default_price=prices[0]["id"])
            t += rng.randint(60, 600)

    def seed_customer(self, t: int, payments_per_customer: float) -> None:
        make, rng = self.make, self.rng
        customer = self.add("customers", make.customer(t))
        self.emit("customer.created", customer, t)
        methods: list[dict] = []
        if rng.random() < 0.9:
            for attach_time in self.attach_times(t):
                method = self.add("payment_methods", make.payment_method(attach_time, customer))
                setup = self.add("setup_intents", make.setup_intent(attach_time - 5, customer["id"]))
                self.emit("setup_intent.created", setup, attach_time - 5)
                self.change(
                    setup,
                    attach_time,
                    "setup_intent.succeeded",
                    status="succeeded",
                    payment_method=method["id"],
                )
                self.emit("payment_method.attached", method, attach_time)
                if not methods:
                    settings = {**customer["invoice_settings"], "default_payment_method": method["id"]}
                    self.change(customer, attach_time + 1, "customer.updated", invoice_settings=settings)
                methods.append(method)
        else:
            abandoned = self.add("setup_intents", make.setup_intent(t + 30, customer["id"]))
            self.emit("setup_intent.created", abandoned, t + 30)
        if not methods:
            return
        customer["currency"] = CURRENCY  # set by Stripe with the customer's first payment or subscription
        if self.subscribable and rng.random() < 0.6:
            self.seed_subscription(customer, methods[0], t + rng.randint(60, 900))
        payments = rng.randint(0, round(2 * payments_per_customer))
        for _ in range(payments):
            when = rng.randint(t + 3600, self.latest) if t + 3600 < self.latest else self.latest
            amount = int(rng.lognormvariate(8.0, 0.8)) // 100 * 100 + 99
            self.seed_payment(
                customer, rng.choice(methods), when, amount, f"Order #{rng.randint(10_000, 99_999)}"
            )
        if rng.random() < 0.12:
            self.seed_manual_invoice(customer, methods[0], rng.randint(t + 600, max(t + 601, self.latest)))

    def attach_times(self, t: int) -> list[int]:
        first = t + self.rng.randint(20, 600)
        extra = self.rng.choice((0, 0, 0, 0, 0, 1, 1, 2))
        later = sorted(self.rng.randint(first + 1, max(first + 2, self.latest)) for _ in range(extra))
        return [first, *later]

    def seed_payment(
        self,
        customer: dict,
        method: dict,
        t: int,
        amount: int,
        description: str,
        succeeded: bool | None = None,
    ) -> bool:
        """A PaymentIntent and its charge (7% of cards decline unless `succeeded` is given); a
        succeeded charge gets its balance transaction and maybe a later refund or dispute."""
        make, rng = self.make, self.rng
        if succeeded is None:
            succeeded = rng.random() >= 0.07
        intent = self.add(
            "payment_intents",
            make.payment_intent(t, amount, customer["id"], method["id"], description, succeeded),
        )
        self.emit("payment_intent.created", intent, t)
        fee = round(amount * 0.015) + 20
        transaction = (
            make.balance_transaction(t + 2, amount, fee, description=description) if succeeded else None
        )
        charge = make.charge(
            t + 2,
            amount,
            customer,
            method,
            intent["id"],
            transaction["id"] if transaction else None,
            description,
            succeeded,
        )
        intent["latest_charge"] = charge["id"]
        self.add("charges", charge)
        if transaction:
            transaction["source"] = charge["id"]
            self.add_transaction(transaction)
            self.emit("charge.succeeded", charge, t + 2)
            self.emit("payment_intent.succeeded", intent, t + 2)
            self.maybe_refund_or_dispute(charge)
        else:
            self.emit("charge.failed", charge, t + 2)
            self.emit("payment_intent.payment_failed", intent, t + 2)
        return succeeded

    def add_transaction(self, transaction: dict) -> None:
        self.transactions.append(transaction)
        self.add("balance_transactions", transaction)

    def maybe_refund_or_dispute(self, charge: dict) -> None:
        make, rng = self.make, self.rng
        roll = rng.random()
        if roll < 0.05:
            t = charge["created"] + rng.randint(3600, 7 * DAY)
            if t >= self.end:
                return
            amount = charge["amount"] if rng.random() < 0.7 else charge["amount"] // 2
            transaction = make.balance_transaction(
                t,
                -amount,
                source=None,
                kind="refund",
                description=f"REFUND FOR CHARGE ({charge['description']})",
            )
            refund = make.refund(
                t, amount, charge, transaction["id"], rng.choice((None, "requested_by_customer", "duplicate"))
            )
            transaction["source"] = refund["id"]
            self.add("refunds", refund)
            self.add_transaction(transaction)
            self.emit("refund.created", refund, t)
            refunds = {**charge["refunds"], "data": [refund]}
            self.change(
                charge,
                t,
                "charge.refunded",
                amount_refunded=amount,
                refunded=amount == charge["amount"],
                refunds=refunds,
            )
        elif roll < 0.058:
            t = charge["created"] + rng.randint(2 * DAY, 20 * DAY)
            if t >= self.end:
                return
            transaction = make.balance_transaction(
                t,
                -charge["amount"],
                2000,
                kind="adjustment",
                category="dispute",
                description=f"Chargeback withdrawal for {charge['id']}",
            )
            dispute = make.dispute(t, charge, transaction)
            transaction["source"] = dispute["id"]
            self.add("disputes", dispute)
            self.add_transaction(transaction)
            self.emit("charge.dispute.created", dispute, t)
            charge["disputed"] = True

    def seed_subscription(self, customer: dict, method: dict, t: int) -> None:
        make, rng = self.make, self.rng
        weights = [1 if price["recurring"]["interval"] == "year" else 4 for price, _ in self.subscribable]
        price, unit_label = rng.choices(self.subscribable, weights)[0]
        quantity = rng.randint(2, 12) if unit_label else 1
        interval = price["recurring"]["interval"]
        fate = rng.random()
        trial_end = t + 14 * DAY if fate < 0.08 else None
        sub = make.subscription(
            t, customer["id"], price, self.plans[price["id"]], quantity, method["id"], trial_end
        )
        self.add("subscriptions", sub)
        self.emit("customer.subscription.created", sub, t)
        cancel_at = (
            rng.randint(t + DAY, self.latest) if 0.08 <= fate < 0.2 and t + DAY < self.latest else None
        )
        horizon = min(self.latest, cancel_at or self.latest)
        amount = price["unit_amount"] * quantity
        billing = [(t, 0 if trial_end else amount, "subscription_create")]
        boundary = trial_end or _next_period(t, interval)
        while boundary < horizon:
            billing.append((boundary, amount, "subscription_cycle"))
            boundary = _next_period(boundary, interval)
        failing = None
        if 0.2 <= fate < 0.22:
            failing = 0  # the first payment fails: incomplete, expired a day later
            billing = billing[:1]
        elif 0.22 <= fate < 0.27 and len(billing) > 1 and billing[-1][1]:
            failing = len(billing) - 1  # a renewal fails: past_due
        for index, (when, due, reason) in enumerate(billing):
            if index + 1 < len(billing):
                nxt = billing[index + 1][0]
            else:
                nxt = trial_end if index == 0 and trial_end else _next_period(when, interval)
            item = sub["items"]["data"][0]
            item.update(current_period_start=when, current_period_end=nxt)
            invoice = make.invoice(when, due, customer, sub["id"], item, (when, nxt), reason)
            self.add("invoices", invoice)
            sub["latest_invoice"] = invoice["id"]
            paid = self.bill(
                customer,
                method,
                invoice,
                when,
                "Subscription creation" if index == 0 else "Subscription update",
                index != failing,
            )
            if index == 0 and trial_end and trial_end < self.end:
                self.change(sub, trial_end, "customer.subscription.updated", status="active")
            if not paid and index == 0:
                expiry = when + 23 * 3600
                if expiry < self.end:
                    self.void(invoice, expiry)
                    self.change(
                        sub,
                        expiry,
                        "customer.subscription.updated",
                        status="incomplete_expired",
                        ended_at=expiry,
                    )
                else:
                    sub["status"] = "incomplete"
                return
            if not paid:
                self.change(sub, when + 60, "customer.subscription.updated", status="past_due")
                customer["delinquent"] = True
        if cancel_at:
            self.change(
                sub,
                cancel_at,
                "customer.subscription.deleted",
                status="canceled",
                canceled_at=cancel_at,
                ended_at=cancel_at,
                cancellation_details={"comment": None, "feedback": None, "reason": "cancellation_requested"},
            )

    def finalize(self, customer: dict, invoice: dict, t: int) -> None:
        number = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
        customer["next_invoice_sequence"] += 1
        token = self.make.random_text(48)
        url = f"https://invoice.stripe.com/i/{self.make.dataset.account}/{self.make.mode}_{token}?s=ap"
        self.change(
            invoice,
            t,
            "invoice.finalized",
            status="open",
            number=number,
            hosted_invoice_url=url,
            invoice_pdf=url.replace("?s=ap", "/pdf?s=ap"),
            effective_at=t,
            ending_balance=0,
            automatically_finalizes_at=None,
            status_transitions={**invoice["status_transitions"], "finalized_at": t},
        )

    def bill(
        self, customer: dict, method: dict, invoice: dict, t: int, description: str, succeed: bool = True
    ) -> bool:
        """Finalize an invoice and try to collect it; returns whether it got paid."""
        self.emit("invoice.created", invoice, t)
        self.finalize(customer, invoice, t)
        paid = True
        if invoice["amount_due"]:
            paid = self.seed_payment(
                customer, method, t + 1, invoice["amount_due"], description, succeeded=succeed
            )
        if paid:
            self.mark_paid(invoice, t + 3)
        else:
            self.change(
                invoice,
                t + 3,
                "invoice.payment_failed",
                attempted=True,
                attempt_count=1,
                next_payment_attempt=t + 3 * DAY,
            )
        return paid

    def mark_paid(self, invoice: dict, t: int) -> None:
        self.change(
            invoice,
            t,
            "invoice.paid",
            status="paid",
            amount_paid=invoice["amount_due"],
            amount_remaining=0,
            attempted=True,
            attempt_count=1,
            status_transitions={**invoice["status_transitions"], "paid_at": t},
        )
        if invoice["amount_due"] and self.rng.random() < 0.04:
            when = t + self.rng.randint(DAY, 10 * DAY)
            if when < self.end:
                note = self.add(
                    "credit_notes", self.make.credit_note(when, invoice, invoice["amount_due"] // 4)
                )
                self.emit("credit_note.created", note, when)
                self.change(invoice, when, "invoice.updated", post_payment_credit_notes_amount=note["amount"])

    def void(self, invoice: dict, t: int) -> None:
        transitions = {**invoice["status_transitions"], "voided_at": t}
        self.change(invoice, t, "invoice.voided", status="void", status_transitions=transitions)

    def seed_manual_invoice(self, customer: dict, method: dict, t: int) -> None:
        amount = self.rng.randint(2, 40) * 2500
        invoice = self.make.invoice(
            t, amount, customer, collection_method="send_invoice", description="Consulting services"
        )
        invoice["due_date"] = t + 30 * DAY
        self.add("invoices", invoice)
        outcome = next(self.manual_outcomes)
        self.emit("invoice.created", invoice, t)
        if outcome == "draft":
            return
        self.finalize(customer, invoice, t + 60)
        later = t + self.rng.randint(DAY, 12 * DAY)
        if later >= self.latest or outcome == "open":
            return
        if outcome == "paid":
            self.seed_payment(customer, method, later, amount, "Payment for Invoice", succeeded=True)
            self.mark_paid(invoice, later + 3)
        elif outcome == "void":
            self.void(invoice, later)
        else:
            transitions = {**invoice["status_transitions"], "marked_uncollectible_at": later}
            self.change(
                invoice,
                later,
                "invoice.marked_uncollectible",
                status="uncollectible",
                status_transitions=transitions,
            )

    def seed_payouts(self) -> None:
        """Daily automatic payouts: each sweeps every balance transaction that became available."""
        make = self.make
        queue = sorted(self.transactions, key=lambda txn: (txn["available_on"], txn["created"]))
        pending: list[dict] = []
        position = 0
        horizon = min(self.end, self.store.now)
        day = _midnight(self.start) + DAY
        while day < horizon:
            while position < len(queue) and queue[position]["available_on"] <= day:
                pending.append(queue[position])
                position += 1
            created = day + self.rng.randint(3600, 4 * 3600)
            amount = sum(txn["net"] for txn in pending)
            if amount > 0 and created < horizon:
                own = make.balance_transaction(
                    created, -amount, kind="payout", description="STRIPE PAYOUT", available_on=created
                )
                payout = make.payout(created, amount, own["id"])
                own["source"] = payout["id"]
                self.add("payouts", payout)
                self.emit("payout.created", payout, created)
                if payout["status"] == "paid" and payout["arrival_date"] < horizon:
                    self.emit("payout.paid", payout, payout["arrival_date"])
                for txn in pending:
                    self.payout_of[txn["id"]] = payout["id"]
                self.payout_of[own["id"]] = payout["id"]
                self.add("balance_transactions", own)
                pending = []
            day += DAY

    def store_all(self) -> dict[str, int]:
        """Encode every collected object and event and add them to the dataset."""
        dataset, store = self.make.dataset, self.store
        counts = {}
        for resource, items in self.objects.items():
            spec = RESOURCES[resource]
            if resource == "balance_transactions":
                records = [
                    store._record(spec, obj, internal={"payout": self.payout_of.get(obj["id"])})
                    for obj in items
                ]
            else:
                records = [store._record(spec, obj) for obj in items]
            dataset[resource].add_many(records)
            counts[resource] = len(records)
        self.events.sort(key=lambda event: event["created"])
        events = [
            Record(
                (event["created"], next(store._sequence)), event["id"], event["body"], {"type": event["type"]}
            )
            for event in self.events
        ]
        dataset["events"].add_many(events)
        counts["events"] = len(events)
        return counts


# --- the store -------------------------------------------------------------------------------


class FakeStripe:
    """A Stripe platform account (plus connected accounts) with test- and live-mode data.

    All `created` values come from seeding or from the clock (`now`, settable; `advance()`).
    Mutations emit the events Stripe sends, rendered at `api_version`. Thread-safe: the HTTP
    server reads while tests mutate.
    """

    def __init__(self, now: int | None = None, seed: int = 0, api_version: str = API_VERSION):
        self.lock = threading.RLock()
        self._now = int(time.time()) if now is None else int(now)
        self.random_seed = seed
        self.api_version = api_version
        self._rng = random.Random(f"fake-stripe:{seed}")
        self._sequence = itertools.count()
        self._ids: set[str] = set()
        self._datasets: dict[tuple[str, bool], Dataset] = {}
        self.accounts: dict[str, str] = {ACCOUNT_ID: ACCOUNT_NAME}
        self.keys: dict[str, ApiKey] = {}
        self.add_key(TEST_SECRET_KEY, livemode=False)
        self.add_key(LIVE_SECRET_KEY, livemode=True)
        self.add_key(RESTRICTED_TEST_KEY, livemode=False, restricted=True)
        self.add_key(RESTRICTED_LIVE_KEY, livemode=True, restricted=True)
        self.add_key(NO_PERMISSION_KEY, livemode=False, restricted=True, can_read=False)

    # clock

    @property
    def now(self) -> int:
        return self._now

    @now.setter
    def now(self, value: int) -> None:
        self._now = int(value)

    def advance(self, seconds: int) -> int:
        """Move the clock forward; returns the new time."""
        self._now += int(seconds)
        return self._now

    # accounts and keys

    def add_key(
        self,
        key: str,
        livemode: bool,
        restricted: bool = False,
        account: str = ACCOUNT_ID,
        can_read: bool = True,
    ) -> None:
        """Accept `key` for `account` (registered if new) in test or live mode."""
        self.accounts.setdefault(account, f"Account {account[-6:]}")
        self.keys[key] = ApiKey(account, livemode, restricted, can_read)

    def add_connected_account(self, account_id: str, name: str | None = None) -> None:
        """Let the platform's keys act on `account_id` through the Stripe-Account header."""
        self.accounts[account_id] = name or f"Connected account {account_id[-6:]}"

    def dataset(self, account: str = ACCOUNT_ID, livemode: bool = False) -> Dataset:
        with self.lock:
            dataset = self._datasets.get((account, livemode))
            if dataset is None:
                if account not in self.accounts:
                    raise KeyError(f"unknown account {account!r}")
                dataset = self._datasets[account, livemode] = Dataset(account, livemode)
            return dataset

    def account_object(self, account: str = ACCOUNT_ID) -> dict:
        fixture = FIXTURES["account"]
        name = self.accounts[account]
        profile = {
            **fixture["business_profile"],
            "name": name,
            "support_email": "support@mantrix.example",
            "mcc": "5734",
        }
        settings = {**fixture["settings"], "dashboard": {"display_name": name, "timezone": "Europe/London"}}
        requirements = {
            **fixture["requirements"],
            "currently_due": [],
            "eventually_due": [],
            "disabled_reason": None,
        }
        return {
            **fixture,
            "id": account,
            "business_profile": profile,
            "settings": settings,
            "country": "GB",
            "default_currency": CURRENCY,
            "email": "billing@mantrix.example",
            "charges_enabled": True,
            "payouts_enabled": True,
            "details_submitted": True,
            "requirements": requirements,
            "business_type": "company",
            "created": 1_577_836_800,
            "external_accounts": {
                **fixture["external_accounts"],
                "url": f"/v1/accounts/{account}/external_accounts",
            },
        }

    def balance_object(self, account: str = ACCOUNT_ID, livemode: bool = False) -> dict:
        with self.lock:
            totals = {"available": 0, "pending": 0}
            for record in self.dataset(account, livemode)["balance_transactions"].records:
                totals[record.fields["status"]] += record.fields["net"]
        fixture = FIXTURES["balance"]
        return {
            **fixture,
            "livemode": livemode,
            "available": [
                {
                    "amount": totals["available"],
                    "currency": CURRENCY,
                    "source_types": {"card": totals["available"]},
                }
            ],
            "pending": [
                {
                    "amount": totals["pending"],
                    "currency": CURRENCY,
                    "source_types": {"card": totals["pending"]},
                }
            ],
            "connect_reserved": [{"amount": 0, "currency": CURRENCY}],
        }

    # ids and records

    def _new_id(self, prefix: str, style: str, rng: random.Random, account_tail: str) -> str:
        while True:
            if style == "long":
                random_part = random_text(rng, 13)
                object_id = prefix + "1" + random_part[:5] + account_tail + random_part[5:]
            elif style == "code":
                object_id = prefix + random_text(rng, 8, _UPPER_ALPHANUMERIC_TABLE)
            else:
                object_id = prefix + random_text(rng, 14)
            if object_id not in self._ids:
                self._ids.add(object_id)
                return object_id

    def _record(
        self,
        resource: Resource,
        obj: dict,
        key: tuple[int, int] | None = None,
        internal: dict | None = None,
    ) -> Record:
        """A stored object: `internal` holds bookkeeping that is not part of the object (a
        balance transaction's payout); the object's own filterable fields are extracted."""
        fields = dict(internal or {})
        fields.update((name, obj.get(name)) for name in resource.filters)
        if resource.name == "balance_transactions":
            fields["net"], fields["status"] = obj["net"], obj["status"]
        key = key or (obj["created"], next(self._sequence))
        return Record(key, obj["id"], encode_object(obj), fields)

    # seeding

    def seed(
        self,
        customers: int = 300,
        days: int = 30,
        start: int | None = None,
        livemode: bool = False,
        account: str = ACCOUNT_ID,
        payments_per_customer: float = 8.0,
        products: int = 6,
    ) -> dict[str, int]:
        """Simulate `days` of an account's life from `start` (default: ending now) and store it.

        Creates a catalog (products, prices, plans, tax rates, coupons, promotion codes), then
        customers with payment methods and setup intents, subscriptions and their invoices,
        one-off payments (payment intents, charges, balance transactions), refunds, disputes,
        credit notes, manual invoices in every status, daily payouts sweeping the available
        balance, and the events for all of it. Deterministic for a given store seed and
        arguments. Returns the number of objects stored per resource.
        """
        start = self.now - days * DAY if start is None else int(start)
        rng = random.Random(f"seed:{self.random_seed}:{account}:{livemode}:{start}:{customers}:{days}")
        with self.lock:
            seeder = _Seeder(self, self.dataset(account, livemode), rng, start, start + days * DAY)
            seeder.run(customers, payments_per_customer, products)
            return seeder.store_all()

    def seed_bulk(
        self,
        resource: str,
        count: int,
        start: int,
        end: int,
        livemode: bool = False,
        account: str = ACCOUNT_ID,
    ) -> list[str]:
        """Create `count` standalone objects of one resource spread evenly over [start, end), fast
        (benchmarks). No events are emitted; references point at existing objects or are null."""
        spec = RESOURCES[resource]
        rng = random.Random(f"bulk:{self.random_seed}:{resource}:{count}:{start}:{end}:{livemode}")
        with self.lock:
            dataset = self.dataset(account, livemode)
            make = _Factory(self, dataset, rng)
            span = max(0, end - start)
            records = []
            for index in range(count):
                created = start + span * index // count
                obj = make.standalone(resource, created)
                if resource == "events":
                    records.append(
                        Record(
                            (created, next(self._sequence)),
                            obj["id"],
                            _encode_event(obj),
                            {"type": obj["type"]},
                        )
                    )
                else:
                    records.append(self._record(spec, obj))
            dataset[resource].add_many(records)
            return [record.id for record in records]

    # reading

    def _locate(self, resource: str, object_id: str) -> tuple[Dataset, Collection, Record]:
        for dataset in self._datasets.values():
            collection = dataset[resource]
            record = collection.by_id.get(object_id)
            if record is not None:
                return dataset, collection, record
        raise NoSuchObject(RESOURCES[resource], object_id)

    def get(self, resource: str, object_id: str) -> dict:
        """The object as the API would return it (raises NoSuchObject)."""
        with self.lock:
            return json.loads(self._locate(resource, object_id)[2].body)

    def objects(self, resource: str, livemode: bool = False, account: str = ACCOUNT_ID) -> list[dict]:
        """All live objects of a resource, newest first (for tests; not subject to event retention)."""
        with self.lock:
            return [
                json.loads(record.body)
                for record in reversed(self.dataset(account, livemode)[resource].records)
            ]

    def count(self, resource: str, livemode: bool = False, account: str = ACCOUNT_ID) -> int:
        with self.lock:
            return len(self.dataset(account, livemode)[resource])

    def retrieve_body(self, dataset: Dataset, resource: str, object_id: str) -> str:
        """JSON of one object as `GET /v1/<resource>/<id>` returns it; raises NoSuchObject."""
        spec = RESOURCES[resource]
        with self.lock:
            collection = dataset[resource]
            record = collection.by_id.get(object_id)
            if record is not None:
                if resource == "events" and record.key[0] < self.now - EVENT_RETENTION_SECONDS:
                    raise NoSuchObject(spec, object_id)
                return record.body
            if object_id in collection.deleted and spec.object in _DELETED_STUBS:
                return _ENCODE({**FIXTURES[f"deleted_{spec.object}"], "id": object_id})
        raise NoSuchObject(spec, object_id)

    def list_page(
        self,
        dataset: Dataset,
        resource: str,
        *,
        created_gte: int | None = None,
        created_lt: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
        limit: int = 10,
        match: Callable[[Record], bool] | None = None,
    ) -> tuple[list[str], bool]:
        """One page of JSON bodies, newest first, and has_more; unknown cursors raise NoSuchObject."""
        with self.lock:
            collection = dataset[resource]
            if resource == "events":
                oldest = self.now - EVENT_RETENTION_SECONDS
                created_gte = oldest if created_gte is None else max(created_gte, oldest)
            records, more = collection.page(
                created_gte=created_gte,
                created_lt=created_lt,
                after=collection.cursor_key(starting_after) if starting_after else None,
                before=collection.cursor_key(ending_before) if ending_before else None,
                limit=limit,
                match=match,
            )
            return [record.body for record in records], more

    def has_object(self, dataset: Dataset, resource: str, object_id: str) -> bool:
        with self.lock:
            return object_id in dataset[resource].by_id

    # mutations

    def create(self, resource: str, livemode: bool = False, account: str = ACCOUNT_ID, **fields: Any) -> dict:
        """Add one object created now (fields override the built example) and emit its creation event."""
        spec = RESOURCES[resource]
        with self.lock:
            dataset = self.dataset(account, livemode)
            make = _Factory(self, dataset, self._rng)
            obj = make.standalone(resource, self.now)
            unknown = fields.keys() - obj.keys()
            if unknown:
                raise ValueError(f"Stripe's {spec.object} has no field(s) {sorted(unknown)}")
            obj.update(fields)
            if resource == "events":
                dataset[resource].add(
                    Record(
                        (self.now, next(self._sequence)), obj["id"], _encode_event(obj), {"type": obj["type"]}
                    )
                )
                return obj
            dataset[resource].add(self._record(spec, obj))
            if spec.created_event:
                self._emit(dataset, spec.created_event, obj)
            return json.loads(encode_object(obj))

    def _apply(
        self, resource: str, object_id: str, changes: dict[str, Any], event_types: Iterable[str]
    ) -> dict:
        spec = RESOURCES[resource]
        with self.lock:
            dataset, collection, record = self._locate(resource, object_id)
            obj = json.loads(record.body)
            unknown = changes.keys() - obj.keys()
            if unknown:
                raise ValueError(f"Stripe's {spec.object} has no field(s) {sorted(unknown)}")
            fixed = changes.keys() & {"id", "object", "created", "livemode"}
            if fixed:
                raise ValueError(f"cannot change {sorted(fixed)}")
            new_values = {key: _merged(obj[key], value) for key, value in changes.items()}
            previous = previous_attributes(obj, new_values)
            obj.update(new_values)
            collection.replace(self._record(spec, obj, record.key, record.fields))
            for event_type in event_types:
                self._emit(dataset, event_type, obj, previous)
            return obj

    def update(self, resource: str, object_id: str, **changes: Any) -> dict:
        """Change fields (hashes such as metadata are merged) and emit `<object>.updated`."""
        spec = RESOURCES[resource]
        events = [f"{spec.event_prefix}.updated"] if spec.event_prefix and spec.updated_event else []
        with self.lock:
            if "updated" in self.get(resource, object_id) and "updated" not in changes:
                changes["updated"] = self.now  # products record their last change
            return self._apply(resource, object_id, changes, events)

    def pay_invoice(self, invoice_id: str) -> dict:
        """Mark a draft or open invoice paid; emits `invoice.paid` and `invoice.updated`."""
        with self.lock:
            invoice = self.get("invoices", invoice_id)
            if invoice["status"] not in ("draft", "open"):
                raise ValueError(
                    f"invoice {invoice_id} is {invoice['status']}; only draft or open invoices can be paid"
                )
            changes: dict[str, Any] = {
                "status": "paid",
                "amount_paid": invoice["amount_due"],
                "amount_remaining": 0,
                "attempted": True,
                "attempt_count": invoice["attempt_count"] + 1,
            }
            if "status_transitions" in invoice:
                changes["status_transitions"] = {"paid_at": self.now}
                if invoice["status"] == "draft":
                    changes["status_transitions"]["finalized_at"] = self.now
            return self._apply("invoices", invoice_id, changes, ["invoice.paid", "invoice.updated"])

    def void_invoice(self, invoice_id: str) -> dict:
        """Void an open or uncollectible invoice; emits `invoice.voided` and `invoice.updated`."""
        with self.lock:
            invoice = self.get("invoices", invoice_id)
            if invoice["status"] not in ("open", "uncollectible"):
                raise ValueError(
                    f"invoice {invoice_id} is {invoice['status']}; only open or uncollectible invoices can be voided"
                )
            changes: dict[str, Any] = {"status": "void"}
            if "status_transitions" in invoice:
                changes["status_transitions"] = {"voided_at": self.now}
            return self._apply("invoices", invoice_id, changes, ["invoice.voided", "invoice.updated"])

    def cancel_subscription(self, subscription_id: str) -> dict:
        """Cancel now; the subscription stays retrievable with status canceled. Emits
        `customer.subscription.deleted`."""
        with self.lock:
            subscription = self.get("subscriptions", subscription_id)
            if subscription["status"] in ("canceled", "incomplete_expired"):
                raise ValueError(f"subscription {subscription_id} has already ended")
            changes = {
                "status": "canceled",
                "canceled_at": self.now,
                "ended_at": self.now,
                "cancellation_details": {"reason": "cancellation_requested"},
            }
            return self._apply("subscriptions", subscription_id, changes, ["customer.subscription.deleted"])

    def delete(self, resource: str, object_id: str) -> dict:
        """Delete as Stripe does: customers, products, plans, coupons, and draft invoices only.
        Emits `<object>.deleted` (data.object: the object at deletion); returns the deleted stub."""
        spec = RESOURCES[resource]
        if not spec.deletable:
            raise ValueError(f"Stripe does not delete {spec.object} objects")
        with self.lock:
            dataset, collection, record = self._locate(resource, object_id)
            obj = json.loads(record.body)
            if resource == "invoices" and obj["status"] != "draft":
                raise ValueError(
                    f"invoice {object_id} is {obj['status']}; only draft invoices can be deleted"
                )
            collection.remove(object_id)
            self._emit(dataset, f"{spec.event_prefix}.deleted", obj)
            return {"deleted": True, "id": object_id, "object": spec.object}

    def emit_event(
        self,
        event_type: str,
        obj: dict,
        previous_attributes: dict | None = None,
        api_version: str | None = None,
        livemode: bool | None = None,
        account: str = ACCOUNT_ID,
    ) -> dict:
        """Record an event about `obj` at the current time (e.g. one rendered with an older
        api_version). The dataset is `obj['livemode']` unless `livemode` is given."""
        if livemode is None:
            livemode = bool(obj.get("livemode", False))
        with self.lock:
            return self._emit(
                self.dataset(account, livemode), event_type, obj, previous_attributes, api_version
            )

    def _emit(
        self,
        dataset: Dataset,
        event_type: str,
        obj: dict,
        previous: dict | None = None,
        api_version: str | None = None,
    ) -> dict:
        event = _Factory(self, dataset, self._rng).event(event_type, obj, self.now, previous, api_version)
        body = _encode_event(event)
        dataset["events"].add(
            Record((self.now, next(self._sequence)), event["id"], body, {"type": event_type})
        )
        return json.loads(body)


def event_type_matcher(patterns: Iterable[str]) -> Callable[[Record], bool]:
    """Match event records whose type equals one of `patterns` (`*` is a wildcard: `invoice.*`)."""
    exact = {pattern for pattern in patterns if "*" not in pattern}
    wildcards = [pattern for pattern in patterns if "*" in pattern]

    def match(record: Record) -> bool:
        event_type = record.fields["type"]
        return event_type in exact or any(fnmatch.fnmatchcase(event_type, pattern) for pattern in wildcards)

    return match
