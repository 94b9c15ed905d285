"""Unit tests for the resource catalogue: pure data checks, no network, no database."""

from __future__ import annotations

import ast
import decimal
import json
import typing
from pathlib import Path

import pytest
import stripe

from airflow_provider_mantrix import resources
from airflow_provider_mantrix.resources import POSTGRES_TYPES, RESOURCES, ColumnKind, Resource, get_resource

EXPECTED_NAMES = [
    "customers",
    "charges",
    "invoices",
    "subscriptions",
    "products",
    "prices",
    "events",
    "balance_transactions",
    "coupons",
    "payment_intents",
    "payment_methods",
    "refunds",
    "disputes",
    "payouts",
    "plans",
    "tax_rates",
    "credit_notes",
    "promotion_codes",
    "setup_intents",
]

# Stripe objects that have no `livemode` field.
NO_LIVEMODE = {"balance_transactions", "refunds"}

PACKAGE_FIXTURES = Path(resources.__file__).parent / "fake_stripe" / "fixtures.json"
SHARED_FIXTURES = Path("/work/shared/stripe-openapi/fixtures3.json")

VALID_KINDS = set(typing.get_args(ColumnKind))


def _load_fixtures() -> dict[str, dict]:
    for path in (PACKAGE_FIXTURES, SHARED_FIXTURES):
        if path.exists():
            data = json.loads(path.read_text())
            return data.get("resources", data)
    pytest.skip(f"no Stripe fixtures: neither {PACKAGE_FIXTURES} nor {SHARED_FIXTURES} exists")


@pytest.fixture(scope="module")
def fixtures() -> dict[str, dict]:
    return _load_fixtures()


def _event_types() -> frozenset[str]:
    """The event types stripe-python knows: the Literal annotation of ``Event.type``."""
    from stripe import _event

    annotation = _event.Event.__annotations__["type"]
    if not isinstance(annotation, str):
        types = typing.get_args(annotation)
        if types:
            return frozenset(types)
    # Fallback: read the Literal from the source.
    tree = ast.parse(Path(_event.__file__).read_text())
    for cls in tree.body:
        if not (isinstance(cls, ast.ClassDef) and cls.name == "Event"):
            continue
        for node in cls.body:
            if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "type":
                return frozenset(
                    c.value
                    for c in ast.walk(node.annotation)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)
                )
    raise AssertionError("Event.type Literal not found in stripe/_event.py")


def _model_class(resource: Resource) -> type:
    from stripe._object_classes import get_object_class

    cls = get_object_class("V1", resource.object)
    assert cls is not stripe.StripeObject, f"stripe-python has no model for {resource.object!r}"
    return cls


def _model_fields(cls: type) -> dict[str, object]:
    return {
        name: ann
        for name, ann in cls.__annotations__.items()
        if not name.isupper() and typing.get_origin(ann) is not typing.ClassVar
    }


def _strip_optional(annotation: object) -> object:
    if typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
        return typing.Union[tuple(args)]  # noqa: UP007
    return annotation


def _is_expandable(annotation: object) -> bool:
    """``ExpandableField[X]`` is ``Union[str, X]`` once evaluated: an id or the expanded object."""
    if typing.get_origin(annotation) is not typing.Union:
        return False
    args = typing.get_args(annotation)
    return str in args and any(
        isinstance(a, typing.ForwardRef) or (isinstance(a, type) and issubclass(a, stripe.StripeObject))
        for a in args
    )


def test_catalogue_names_in_order():
    assert list(RESOURCES) == [*EXPECTED_NAMES, "payout_balance_transactions"]
    for name, resource in RESOURCES.items():
        assert resource.name == name
        assert get_resource(name) is resource


def test_payout_balance_transactions_list_each_payouts_transactions():
    spec = RESOURCES["payout_balance_transactions"]
    assert (spec.parent, spec.parent_param, spec.parent_column) == ("payouts", "payout", "payout")
    assert spec.window_by_parent and not spec.created_filter and not spec.mutable
    assert spec.columns["payout"] == "ref"
    assert spec.retrieve_path == "/v1/balance_transactions/{id}"
    assert RESOURCES["payment_methods"].retrieve_path == "/v1/payment_methods/{id}"


def test_catalogue_is_read_only():
    with pytest.raises(TypeError):
        RESOURCES["x"] = RESOURCES["customers"]  # type: ignore[index]
    with pytest.raises(TypeError):
        RESOURCES["customers"].columns["x"] = "text"  # type: ignore[index]


def test_get_resource_unknown_lists_valid_names():
    with pytest.raises(ValueError, match="nope") as excinfo:
        get_resource("nope")
    for name in EXPECTED_NAMES:
        assert name in str(excinfo.value)


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_column_kinds_valid(name):
    resource = RESOURCES[name]
    assert resource.columns
    assert "id" not in resource.columns
    for column, kind in resource.columns.items():
        assert kind in VALID_KINDS, f"{name}.{column}: {kind!r}"
        assert kind in POSTGRES_TYPES


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_standard_columns(name):
    columns = RESOURCES[name].columns
    assert columns["created"] == "timestamptz"
    assert columns["object"] == "text"
    if name in NO_LIVEMODE:
        assert "livemode" not in columns
    else:
        assert columns["livemode"] == "boolean"
    assert all(kind == "jsonb" for column, kind in columns.items() if column == "metadata")


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_list_paths(name):
    resource = RESOURCES[name]
    assert resource.list_path.startswith("/v1/")
    assert ("{parent_id}" in resource.list_path) == (resource.parent is not None)
    if resource.parent is not None:
        assert resource.parent in RESOURCES
        assert RESOURCES[resource.parent].parent is None


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_created_filter_matches_sdk_list_params(name):
    resource = RESOURCES[name]
    params_name = (
        "CustomerPaymentMethodListParams"
        if resource.parent == "customers"
        else "".join(part.title() for part in resource.object.split("_")) + "ListParams"
    )
    params = getattr(stripe.params, params_name)
    assert resource.created_filter == ("created" in params.__annotations__)
    for key in resource.list_params:
        assert key in params.__annotations__, f"{name}: {key} is not a list parameter"


def test_subscriptions_list_all_statuses():
    assert dict(RESOURCES["subscriptions"].list_params) == {"status": "all"}


def test_products_prices_plans_unfiltered():
    for name in ("products", "prices", "plans", "tax_rates", "promotion_codes"):
        assert "active" not in RESOURCES[name].list_params


def test_payment_methods_listed_through_customers():
    resource = RESOURCES["payment_methods"]
    assert resource.parent == "customers"
    assert resource.list_path == "/v1/customers/{parent_id}/payment_methods"
    assert resource.created_filter is False


def test_immutable_resources():
    for name in ("balance_transactions", "events"):
        resource = RESOURCES[name]
        assert not resource.mutable
        assert resource.update_events == () and resource.delete_events == ()
    for name in set(EXPECTED_NAMES) - {"balance_transactions", "events"}:
        assert RESOURCES[name].mutable, name


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_events_are_real_event_types(name):
    known = _event_types()
    resource = RESOURCES[name]
    for event_type in resource.update_events + resource.delete_events:
        assert event_type in known, f"{name}: unknown event type {event_type!r}"
    assert not set(resource.update_events) & set(resource.delete_events)
    assert len(set(resource.update_events)) == len(resource.update_events)


def test_each_event_type_belongs_to_one_resource():
    seen: dict[str, str] = {}
    for name, resource in RESOURCES.items():
        for event_type in resource.update_events + resource.delete_events:
            assert event_type not in seen, f"{event_type} in {seen.get(event_type)} and {name}"
            seen[event_type] = name


def test_event_quirks():
    invoices = RESOURCES["invoices"]
    assert "invoice.upcoming" not in invoices.update_events
    assert invoices.delete_events == ("invoice.deleted",)
    subscriptions = RESOURCES["subscriptions"]
    assert "customer.subscription.deleted" in subscriptions.update_events
    assert subscriptions.delete_events == ()
    customers = RESOURCES["customers"]
    assert set(customers.update_events) == {"customer.created", "customer.updated"}
    assert customers.delete_events == ("customer.deleted",)
    assert "charge.refund.updated" in RESOURCES["refunds"].update_events
    assert all(t.startswith("charge.dispute.") for t in RESOURCES["disputes"].update_events)
    assert not any(
        t.startswith(("charge.dispute.", "charge.refund.")) for t in RESOURCES["charges"].update_events
    )
    payment_methods = RESOURCES["payment_methods"]
    assert "payment_method.detached" in payment_methods.update_events
    assert payment_methods.delete_events == ()


@pytest.mark.parametrize(
    ("name", "column"),
    [
        ("charges", "balance_transaction"),
        ("charges", "customer"),
        ("charges", "payment_intent"),
        ("invoices", "customer"),
        ("invoices", "subscription"),
        ("payouts", "balance_transaction"),
        ("payouts", "destination"),
        ("prices", "product"),
        ("refunds", "charge"),
        ("balance_transactions", "source"),
        ("subscriptions", "customer"),
        ("disputes", "charge"),
    ],
)
def test_known_expandable_references(name, column):
    assert RESOURCES[name].columns[column] == "ref"


def test_known_numeric_and_timestamp_columns():
    expected = {
        ("coupons", "percent_off"): "numeric",
        ("prices", "unit_amount_decimal"): "numeric",
        ("balance_transactions", "exchange_rate"): "numeric",
        ("tax_rates", "percentage"): "numeric",
        ("invoices", "due_date"): "timestamptz",
        ("invoices", "period_end"): "timestamptz",
        ("subscriptions", "billing_cycle_anchor"): "timestamptz",
        ("payouts", "arrival_date"): "timestamptz",
        ("balance_transactions", "available_on"): "timestamptz",
        ("charges", "amount"): "bigint",
        ("subscriptions", "days_until_due"): "bigint",
        ("invoices", "discounts"): "jsonb",  # a list of refs, not one
        ("charges", "source"): "jsonb",  # embedded, not expandable
    }
    for (name, column), kind in expected.items():
        assert RESOURCES[name].columns[column] == kind, f"{name}.{column}"


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_columns_agree_with_sdk_model(name):
    """Every field of the stripe-python model is a column, typed as its annotation says."""
    resource = RESOURCES[name]
    fields = _model_fields(_model_class(resource))
    missing = set(fields) - set(resource.columns) - {"id", "deleted"}
    assert not missing, f"{name}: SDK fields without a column: {sorted(missing)}"
    for column, kind in resource.columns.items():
        if column not in fields:
            continue
        annotation = _strip_optional(fields[column])
        where = f"{name}.{column} ({fields[column]})"
        assert (kind == "ref") == _is_expandable(annotation), where
        if annotation is bool:
            assert kind == "boolean", where
        elif annotation in (float, decimal.Decimal):
            assert kind == "numeric", where
        elif annotation is int:
            assert kind in ("bigint", "timestamptz"), where
        elif annotation is str:
            assert kind == "text", where
        if kind == "timestamptz":
            assert annotation is int, where


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_fixture_fields_have_columns(name, fixtures):
    resource = RESOURCES[name]
    example = fixtures[resource.object]
    missing = set(example) - {"id"} - set(resource.columns)
    assert not missing, f"{name}: fixture fields without a column: {sorted(missing)}"
    for key in ("created", "livemode", "object"):
        if key in example:
            assert key in resource.columns


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_fixture_values_fit_column_kinds(name, fixtures):
    resource = RESOURCES[name]
    example = fixtures[resource.object]
    assert example["object"] == resource.object
    assert example["id"].startswith(resource.id_prefix)
    for column, kind in resource.columns.items():
        value = example.get(column)
        if value is None:
            continue
        where = f"{name}.{column} = {value!r:.60}"
        if kind in ("bigint", "timestamptz"):
            assert type(value) is int, where
        elif kind == "numeric":
            assert type(value) in (int, float) or decimal.Decimal(value).is_finite(), where
        elif kind == "boolean":
            assert type(value) is bool, where
        elif kind == "text":
            assert isinstance(value, str), where
        elif kind == "ref":
            assert isinstance(value, str) or (isinstance(value, dict) and "id" in value), where
        else:
            assert isinstance(value, (dict, list)), where


def test_id_prefixes():
    prefixes = {name: RESOURCES[name].id_prefix for name in EXPECTED_NAMES}
    assert prefixes == {
        "customers": "cus_",
        "charges": "ch_",
        "invoices": "in_",
        "subscriptions": "sub_",
        "products": "prod_",
        "prices": "price_",
        "events": "evt_",
        "balance_transactions": "txn_",
        "coupons": "",
        "payment_intents": "pi_",
        "payment_methods": "pm_",
        "refunds": "re_",
        "disputes": "dp_",
        "payouts": "po_",
        "plans": "",
        "tax_rates": "txr_",
        "credit_notes": "cn_",
        "promotion_codes": "promo_",
        "setup_intents": "seti_",
    }
