"""The catalogue of Stripe resources this provider loads, as data.

Everything the operator needs to know about one Stripe list endpoint lives in its
``Resource`` entry: where to list it, how to filter it, which columns it gets and which
events change or delete its objects. Code elsewhere reads this table; it never special-cases
a resource by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

ColumnKind = Literal["text", "bigint", "numeric", "boolean", "timestamptz", "jsonb", "ref"]
"""How a top-level field lands in PostgreSQL.

``ref`` is an expandable reference: stored as the referenced object's id (``text``) whether
or not Stripe expanded it. ``numeric`` is for ``*_decimal`` and fractional fields.
"""

POSTGRES_TYPES: Mapping[ColumnKind, str] = MappingProxyType(
    {
        "text": "text",
        "bigint": "bigint",
        "numeric": "numeric",
        "boolean": "boolean",
        "timestamptz": "timestamptz",
        "jsonb": "jsonb",
        "ref": "text",
    }
)


@dataclass(frozen=True)
class Resource:
    """One Stripe resource as the operator loads it."""

    name: str
    """Resource name as users write it, also the default table name: ``invoices``."""
    object: str
    """Stripe's ``object`` value: ``invoice``."""
    list_path: str
    """List endpoint. ``{parent_id}`` in it is filled from each object of ``parent``."""
    id_prefix: str
    """Prefix of the object ids (``in_``); empty where ids are free-form (coupons)."""
    columns: Mapping[str, ColumnKind]
    """Typed columns: top-level field name as in the API -> kind. ``id`` is implicit."""
    list_params: Mapping[str, str] = field(default_factory=dict)
    """Extra parameters every list request needs, e.g. ``status=all`` for subscriptions."""
    created_filter: bool = True
    """Whether the list endpoint accepts ``created[gte]``/``created[lt]``."""
    parent: str | None = None
    """Resource whose objects this one is listed through (payment methods via customers)."""
    parent_param: str | None = None
    """List parameter naming the parent, where the parent id is not in the path (``payout``)."""
    parent_column: str | None = None
    """Column that records the parent a row was listed through, where the object does not say."""
    window_by_parent: bool = False
    """The window selects the parents by their ``created`` (the day's payouts), not the rows."""
    parent_filter: Mapping[str, Any] = field(default_factory=dict)
    """Only parents whose fields equal these are listed through (automatic payouts only)."""
    parent_events: tuple[str, ...] = ()
    """Events in the window whose object is a parent to list again (a payout finishing reconciliation)."""
    update_events: tuple[str, ...] = ()
    """Event types whose ``data.object`` is a changed object of this resource."""
    delete_events: tuple[str, ...] = ()
    """Event types that mean an object of this resource was deleted."""

    @property
    def retrieve_path(self) -> str:
        """Where one object is read by id, also for resources listed through a parent."""
        if "{parent_id}" in self.list_path:
            return f"/v1/{self.name}/{{id}}"
        return f"{self.list_path}/{{id}}"

    @property
    def mutable(self) -> bool:
        """Objects change after creation, so incremental runs also replay events."""
        return bool(self.update_events or self.delete_events)


def _columns(**kinds: ColumnKind) -> Mapping[str, ColumnKind]:
    return MappingProxyType(dict(kinds))


# Columns: every top-level field of Stripe's example object (openapi fixtures3.json) and of the
# stripe-python model, except `id` (implicit) and `deleted` (set only on the deleted-object form,
# which list endpoints never return). Kinds follow the SDK annotations: ExpandableField -> ref,
# int amounts/counts -> bigint, Unix times -> timestamptz, float and *_decimal -> numeric,
# nested objects, lists and hashes -> jsonb.

_PAYMENT_METHOD_TYPE_HASHES = (
    "acss_debit",
    "affirm",
    "afterpay_clearpay",
    "alipay",
    "alma",
    "amazon_pay",
    "au_becs_debit",
    "bacs_debit",
    "bancontact",
    "billie",
    "bizum",
    "blik",
    "boleto",
    "card",
    "card_present",
    "cashapp",
    "crypto",
    "custom",
    "customer_balance",
    "eps",
    "fpx",
    "giropay",
    "grabpay",
    "ideal",
    "interac_present",
    "kakao_pay",
    "klarna",
    "konbini",
    "kr_card",
    "link",
    "mb_way",
    "mobilepay",
    "multibanco",
    "naver_pay",
    "nz_bank_account",
    "oxxo",
    "p24",
    "pay_by_bank",
    "payco",
    "paynow",
    "paypal",
    "paypay",
    "payto",
    "pix",
    "promptpay",
    "revolut_pay",
    "samsung_pay",
    "satispay",
    "scalapay",
    "sepa_debit",
    "sequra",
    "sofort",
    "sunbit",
    "swish",
    "twint",
    "upi",
    "us_bank_account",
    "wechat_pay",
    "zip",
)

_CUSTOMERS_COLUMNS = _columns(
    address="jsonb",
    balance="bigint",
    business_name="text",
    cash_balance="jsonb",  # only set when expanded (includable)
    created="timestamptz",
    currency="text",
    customer_account="text",
    default_source="ref",
    delinquent="boolean",
    description="text",
    discount="jsonb",
    email="text",
    individual_name="text",
    invoice_credit_balance="jsonb",  # only set when expanded (includable)
    invoice_prefix="text",
    invoice_settings="jsonb",
    livemode="boolean",
    metadata="jsonb",
    name="text",
    next_invoice_sequence="bigint",
    object="text",
    phone="text",
    preferred_locales="jsonb",
    shipping="jsonb",
    sources="jsonb",  # only set when expanded (includable)
    subscriptions="jsonb",  # only set when expanded (includable)
    tax="jsonb",  # only set when expanded (includable)
    tax_exempt="text",
    tax_ids="jsonb",  # only set when expanded (includable)
    test_clock="ref",
)

_CHARGES_COLUMNS = _columns(
    amount="bigint",
    amount_captured="bigint",
    amount_refunded="bigint",
    application="ref",
    application_fee="ref",
    application_fee_amount="bigint",
    authorization_code="text",
    balance_transaction="ref",
    billing_details="jsonb",
    calculated_statement_descriptor="text",
    captured="boolean",
    created="timestamptz",
    currency="text",
    customer="ref",
    description="text",
    disputed="boolean",
    failure_balance_transaction="ref",
    failure_code="text",
    failure_message="text",
    fraud_details="jsonb",
    level3="jsonb",
    livemode="boolean",
    metadata="jsonb",
    object="text",
    on_behalf_of="ref",
    outcome="jsonb",
    paid="boolean",
    payment_intent="ref",
    payment_method="text",  # a plain id string in the API, never expanded
    payment_method_details="jsonb",
    presentment_details="jsonb",
    radar_options="jsonb",
    receipt_email="text",
    receipt_number="text",
    receipt_url="text",
    refunded="boolean",
    refunds="jsonb",
    review="ref",
    shipping="jsonb",
    source="jsonb",  # legacy embedded Card/Source object, not an expandable id
    source_transfer="ref",
    statement_descriptor="text",
    statement_descriptor_suffix="text",
    status="text",
    transfer="ref",
    transfer_data="jsonb",
    transfer_group="text",
)

_INVOICES_COLUMNS = _columns(
    account_country="text",
    account_name="text",
    account_tax_ids="jsonb",  # list of expandable ids, not a single ref
    amount_due="bigint",
    amount_overpaid="bigint",
    amount_paid="bigint",
    amount_paid_off_stripe="bigint",
    amount_remaining="bigint",
    amount_shipping="bigint",
    application="ref",
    attempt_count="bigint",
    attempted="boolean",
    auto_advance="boolean",
    automatic_tax="jsonb",
    automatically_finalizes_at="timestamptz",
    billing_reason="text",
    collection_method="text",
    confirmation_secret="jsonb",
    created="timestamptz",
    currency="text",
    custom_fields="jsonb",
    customer="ref",
    customer_account="text",
    customer_address="jsonb",
    customer_email="text",
    customer_name="text",
    customer_phone="text",
    customer_shipping="jsonb",
    customer_tax_exempt="text",
    customer_tax_ids="jsonb",
    default_payment_method="ref",
    default_source="ref",
    default_tax_rates="jsonb",
    description="text",
    discounts="jsonb",  # list of expandable ids, not a single ref
    due_date="timestamptz",
    effective_at="timestamptz",
    ending_balance="bigint",
    footer="text",
    from_invoice="jsonb",
    hosted_invoice_url="text",
    invoice_pdf="text",
    issuer="jsonb",
    last_finalization_error="jsonb",
    latest_revision="ref",
    lines="jsonb",
    livemode="boolean",
    metadata="jsonb",
    next_payment_attempt="timestamptz",
    number="text",
    object="text",
    on_behalf_of="ref",
    parent="jsonb",
    payment_settings="jsonb",
    payments="jsonb",
    period_end="timestamptz",
    period_start="timestamptz",
    post_payment_credit_notes_amount="bigint",
    pre_payment_credit_notes_amount="bigint",
    receipt_number="text",
    rendering="jsonb",
    shipping_cost="jsonb",
    shipping_details="jsonb",
    starting_balance="bigint",
    statement_descriptor="text",
    status="text",
    status_details="jsonb",
    status_transitions="jsonb",
    subscription="ref",  # in the fixture, not in the SDK model (moved to parent.subscription_details)
    subtotal="bigint",
    subtotal_excluding_tax="bigint",
    test_clock="ref",
    threshold_reason="jsonb",
    total="bigint",
    total_discount_amounts="jsonb",
    total_excluding_tax="bigint",
    total_pretax_credit_amounts="jsonb",
    total_taxes="jsonb",
    webhooks_delivered_at="timestamptz",
)

_SUBSCRIPTIONS_COLUMNS = _columns(
    application="ref",
    application_fee_percent="numeric",
    automatic_tax="jsonb",
    billing_cycle_anchor="timestamptz",
    billing_cycle_anchor_config="jsonb",
    billing_mode="jsonb",
    billing_schedules="jsonb",
    billing_thresholds="jsonb",
    cancel_at="timestamptz",
    cancel_at_period_end="boolean",
    canceled_at="timestamptz",
    cancellation_details="jsonb",
    collection_method="text",
    created="timestamptz",
    currency="text",
    customer="ref",
    customer_account="text",
    days_until_due="bigint",
    default_payment_method="ref",
    default_source="ref",
    default_tax_rates="jsonb",
    description="text",
    discounts="jsonb",  # list of expandable ids, not a single ref
    ended_at="timestamptz",
    invoice_settings="jsonb",
    items="jsonb",
    latest_invoice="ref",
    livemode="boolean",
    managed_payments="jsonb",
    metadata="jsonb",
    next_pending_invoice_item_invoice="timestamptz",
    object="text",
    on_behalf_of="ref",
    pause_collection="jsonb",
    payment_settings="jsonb",
    pending_invoice_item_interval="jsonb",
    pending_setup_intent="ref",
    pending_update="jsonb",
    presentment_details="jsonb",
    schedule="ref",
    start_date="timestamptz",
    status="text",
    status_details="jsonb",
    test_clock="ref",
    transfer_data="jsonb",
    trial_end="timestamptz",
    trial_settings="jsonb",
    trial_start="timestamptz",
)

_PRODUCTS_COLUMNS = _columns(
    active="boolean",
    created="timestamptz",
    default_price="ref",
    description="text",
    images="jsonb",
    livemode="boolean",
    marketing_features="jsonb",
    metadata="jsonb",
    name="text",
    object="text",
    package_dimensions="jsonb",
    shippable="boolean",
    statement_descriptor="text",
    tax_code="ref",
    tax_details="jsonb",
    type="text",
    unit_label="text",
    updated="timestamptz",
    url="text",
)

_PRICES_COLUMNS = _columns(
    active="boolean",
    billing_scheme="text",
    created="timestamptz",
    currency="text",
    currency_options="jsonb",  # only set when expanded (includable)
    custom_unit_amount="jsonb",
    livemode="boolean",
    lookup_key="text",
    metadata="jsonb",
    nickname="text",
    object="text",
    product="ref",
    recurring="jsonb",
    tax_behavior="text",
    tiers="jsonb",  # only set when expanded (includable)
    tiers_mode="text",
    transform_quantity="jsonb",
    type="text",
    unit_amount="bigint",
    unit_amount_decimal="numeric",
)

_EVENTS_COLUMNS = _columns(
    account="text",
    api_version="text",
    context="text",
    created="timestamptz",
    data="jsonb",
    livemode="boolean",
    object="text",
    pending_webhooks="bigint",
    request="jsonb",
    type="text",
)

_BALANCE_TRANSACTIONS_COLUMNS = _columns(
    amount="bigint",
    available_on="timestamptz",
    balance_type="text",
    created="timestamptz",
    currency="text",
    description="text",
    exchange_rate="numeric",
    fee="bigint",
    fee_details="jsonb",
    net="bigint",
    object="text",
    reporting_category="text",
    source="ref",  # polymorphic expandable (charge, refund, payout, ...)
    status="text",
    type="text",
)

_COUPONS_COLUMNS = _columns(
    amount_off="bigint",
    applies_to="jsonb",
    created="timestamptz",
    currency="text",
    currency_options="jsonb",
    duration="text",
    duration_in_months="bigint",
    livemode="boolean",
    max_redemptions="bigint",
    metadata="jsonb",
    name="text",
    object="text",
    percent_off="numeric",
    redeem_by="timestamptz",
    times_redeemed="bigint",
    valid="boolean",
)

_PAYMENT_INTENTS_COLUMNS = _columns(
    allowed_payment_method_types="jsonb",
    amount="bigint",
    amount_capturable="bigint",
    amount_details="jsonb",
    amount_received="bigint",
    application="ref",
    application_fee_amount="bigint",
    automatic_payment_methods="jsonb",
    canceled_at="timestamptz",
    cancellation_reason="text",
    capture_method="text",
    client_secret="text",
    confirmation_method="text",
    created="timestamptz",
    currency="text",
    customer="ref",
    customer_account="text",
    description="text",
    excluded_payment_method_types="jsonb",
    hooks="jsonb",
    last_payment_error="jsonb",
    latest_charge="ref",
    livemode="boolean",
    managed_payments="jsonb",
    metadata="jsonb",
    next_action="jsonb",
    object="text",
    on_behalf_of="ref",
    payment_details="jsonb",
    payment_method="ref",
    payment_method_configuration_details="jsonb",
    payment_method_options="jsonb",
    payment_method_types="jsonb",
    payment_record="ref",
    presentment_details="jsonb",
    processing="jsonb",
    receipt_email="text",
    review="ref",
    setup_future_usage="text",
    shipping="jsonb",
    source="ref",
    statement_descriptor="text",
    statement_descriptor_suffix="text",
    status="text",
    transfer_data="jsonb",
    transfer_group="text",
)

_PAYMENT_METHODS_COLUMNS = _columns(
    allow_redisplay="text",
    billing_details="jsonb",
    created="timestamptz",
    customer="ref",
    customer_account="text",
    livemode="boolean",
    metadata="jsonb",
    object="text",
    radar_options="jsonb",
    type="text",
    # One hash per payment method type; only the one named by `type` is set.
    **dict.fromkeys(_PAYMENT_METHOD_TYPE_HASHES, "jsonb"),
)

_REFUNDS_COLUMNS = _columns(
    amount="bigint",
    balance_transaction="ref",
    charge="ref",
    created="timestamptz",
    currency="text",
    customer="ref",
    customer_account="text",
    description="text",
    destination_details="jsonb",
    failure_balance_transaction="ref",
    failure_reason="text",
    instructions_email="text",
    metadata="jsonb",
    next_action="jsonb",
    object="text",
    payment_intent="ref",
    payment_method="ref",
    pending_reason="text",
    presentment_details="jsonb",
    reason="text",
    receipt_number="text",
    source_transfer_reversal="ref",
    status="text",
    transfer_reversal="ref",
)

_DISPUTES_COLUMNS = _columns(
    amount="bigint",
    balance_transactions="jsonb",
    charge="ref",
    created="timestamptz",
    currency="text",
    enhanced_eligibility_types="jsonb",
    evidence="jsonb",
    evidence_details="jsonb",
    intended_submission_method="text",
    is_charge_refundable="boolean",
    livemode="boolean",
    metadata="jsonb",
    network_reason_code="text",
    object="text",
    payment_intent="ref",
    payment_method_details="jsonb",
    reason="text",
    status="text",
)

_PAYOUTS_COLUMNS = _columns(
    amount="bigint",
    application_fee="ref",
    application_fee_amount="bigint",
    arrival_date="timestamptz",
    automatic="boolean",
    balance_transaction="ref",
    created="timestamptz",
    currency="text",
    description="text",
    destination="ref",  # expandable bank account or card
    failure_balance_transaction="ref",
    failure_code="text",
    failure_message="text",
    livemode="boolean",
    metadata="jsonb",
    method="text",
    object="text",
    original_payout="ref",
    payout_method="text",
    reconciliation_status="text",
    reversed_by="ref",
    source_type="text",
    statement_descriptor="text",
    status="text",
    trace_id="jsonb",
    type="text",
)

_PLANS_COLUMNS = _columns(
    active="boolean",
    amount="bigint",
    amount_decimal="numeric",
    billing_scheme="text",
    created="timestamptz",
    currency="text",
    interval="text",
    interval_count="bigint",
    livemode="boolean",
    metadata="jsonb",
    meter="text",
    nickname="text",
    object="text",
    product="ref",
    tiers="jsonb",
    tiers_mode="text",
    transform_usage="jsonb",
    trial_period_days="bigint",
    usage_type="text",
)

_TAX_RATES_COLUMNS = _columns(
    active="boolean",
    country="text",
    created="timestamptz",
    description="text",
    display_name="text",
    effective_percentage="numeric",
    flat_amount="jsonb",
    inclusive="boolean",
    jurisdiction="text",
    jurisdiction_level="text",
    livemode="boolean",
    metadata="jsonb",
    object="text",
    percentage="numeric",
    rate_type="text",
    state="text",
    tax_type="text",
)

_CREDIT_NOTES_COLUMNS = _columns(
    amount="bigint",
    amount_shipping="bigint",
    created="timestamptz",
    currency="text",
    customer="ref",
    customer_account="text",
    customer_balance_transaction="ref",
    discount_amount="bigint",
    discount_amounts="jsonb",
    effective_at="timestamptz",
    invoice="ref",
    lines="jsonb",
    livemode="boolean",
    memo="text",
    metadata="jsonb",
    number="text",
    object="text",
    out_of_band_amount="bigint",
    pdf="text",
    post_payment_amount="bigint",
    pre_payment_amount="bigint",
    pretax_credit_amounts="jsonb",
    reason="text",
    refunds="jsonb",
    shipping_cost="jsonb",
    status="text",
    subtotal="bigint",
    subtotal_excluding_tax="bigint",
    total="bigint",
    total_excluding_tax="bigint",
    total_taxes="jsonb",
    type="text",
    voided_at="timestamptz",
)

_PROMOTION_CODES_COLUMNS = _columns(
    active="boolean",
    code="text",
    created="timestamptz",
    customer="ref",
    customer_account="text",
    expires_at="timestamptz",
    livemode="boolean",
    max_redemptions="bigint",
    metadata="jsonb",
    object="text",
    promotion="jsonb",
    restrictions="jsonb",
    times_redeemed="bigint",
)

_SETUP_INTENTS_COLUMNS = _columns(
    allowed_payment_method_types="jsonb",
    application="ref",
    attach_to_self="boolean",
    automatic_payment_methods="jsonb",
    cancellation_reason="text",
    client_secret="text",
    created="timestamptz",
    customer="ref",
    customer_account="text",
    description="text",
    excluded_payment_method_types="jsonb",
    flow_directions="jsonb",
    last_setup_error="jsonb",
    latest_attempt="ref",
    livemode="boolean",
    managed_payments="jsonb",
    mandate="ref",
    metadata="jsonb",
    next_action="jsonb",
    object="text",
    on_behalf_of="ref",
    payment_method="ref",
    payment_method_configuration_details="jsonb",
    payment_method_options="jsonb",
    payment_method_types="jsonb",
    single_use_mandate="ref",
    status="text",
    usage="text",
)

RESOURCES: Mapping[str, Resource] = MappingProxyType(
    {
        r.name: r
        for r in (
            Resource(
                name="customers",
                object="customer",
                list_path="/v1/customers",
                id_prefix="cus_",
                columns=_CUSTOMERS_COLUMNS,
                # Deleted customers are not listed; customer.deleted removes them. Customers on a
                # test clock are listed only when `test_clock` names that clock.
                # customer.discount.*, .source.*, .tax_id.*, .subscription.* carry other objects.
                update_events=("customer.created", "customer.updated"),
                delete_events=("customer.deleted",),
            ),
            Resource(
                name="charges",
                object="charge",
                list_path="/v1/charges",
                id_prefix="ch_",
                columns=_CHARGES_COLUMNS,
                # charge.dispute.* carry a dispute and charge.refund.updated a refund.
                update_events=(
                    "charge.captured",
                    "charge.expired",
                    "charge.failed",
                    "charge.pending",
                    "charge.refunded",
                    "charge.succeeded",
                    "charge.updated",
                ),
            ),
            Resource(
                name="invoices",
                object="invoice",
                list_path="/v1/invoices",
                id_prefix="in_",
                columns=_INVOICES_COLUMNS,
                # invoice.upcoming is left out: it carries a preview invoice that has no id.
                update_events=(
                    "invoice.created",
                    "invoice.finalization_failed",
                    "invoice.finalized",
                    "invoice.marked_uncollectible",
                    "invoice.overdue",
                    "invoice.overpaid",
                    "invoice.paid",
                    "invoice.payment_action_required",
                    "invoice.payment_attempt_required",
                    "invoice.payment_failed",
                    "invoice.payment_succeeded",
                    "invoice.sent",
                    "invoice.updated",
                    "invoice.voided",
                    "invoice.will_be_due",
                ),
                # Only drafts can be deleted.
                delete_events=("invoice.deleted",),
            ),
            Resource(
                name="subscriptions",
                object="subscription",
                list_path="/v1/subscriptions",
                id_prefix="sub_",
                columns=_SUBSCRIPTIONS_COLUMNS,
                # Without status the list omits canceled subscriptions. Like customers, it skips
                # test-clock subscriptions unless `test_clock` (or `customer`) is given.
                list_params=MappingProxyType({"status": "all"}),
                # customer.subscription.deleted means canceled: the subscription still exists
                # with status=canceled, so it is an update, not a deletion.
                update_events=(
                    "customer.subscription.created",
                    "customer.subscription.deleted",
                    "customer.subscription.paused",
                    "customer.subscription.pending_update_applied",
                    "customer.subscription.pending_update_expired",
                    "customer.subscription.resumed",
                    "customer.subscription.trial_will_end",
                    "customer.subscription.updated",
                ),
            ),
            Resource(
                name="products",
                object="product",
                list_path="/v1/products",
                id_prefix="prod_",
                columns=_PRODUCTS_COLUMNS,
                # No `active` filter: omitted, the list returns active and archived products.
                update_events=("product.created", "product.updated"),
                delete_events=("product.deleted",),
            ),
            Resource(
                name="prices",
                object="price",
                list_path="/v1/prices",
                id_prefix="price_",
                columns=_PRICES_COLUMNS,
                # No `active` filter: omitted, the list returns active and inactive prices.
                update_events=("price.created", "price.updated"),
                delete_events=("price.deleted",),
            ),
            Resource(
                name="events",
                object="event",
                list_path="/v1/events",
                id_prefix="evt_",
                columns=_EVENTS_COLUMNS,
                # Immutable, so no events. The list only reaches back 30 days.
            ),
            Resource(
                name="balance_transactions",
                object="balance_transaction",
                list_path="/v1/balance_transactions",
                id_prefix="txn_",
                columns=_BALANCE_TRANSACTIONS_COLUMNS,
                # Immutable ledger entries: no events change them.
            ),
            Resource(
                name="coupons",
                object="coupon",
                list_path="/v1/coupons",
                # Coupon ids are chosen by the user (or random), no prefix.
                id_prefix="",
                columns=_COUPONS_COLUMNS,
                update_events=("coupon.created", "coupon.updated"),
                delete_events=("coupon.deleted",),
            ),
            Resource(
                name="payment_intents",
                object="payment_intent",
                list_path="/v1/payment_intents",
                id_prefix="pi_",
                columns=_PAYMENT_INTENTS_COLUMNS,
                update_events=(
                    "payment_intent.amount_capturable_updated",
                    "payment_intent.canceled",
                    "payment_intent.created",
                    "payment_intent.partially_funded",
                    "payment_intent.payment_failed",
                    "payment_intent.processing",
                    "payment_intent.requires_action",
                    "payment_intent.succeeded",
                ),
            ),
            Resource(
                name="payment_methods",
                object="payment_method",
                # /v1/payment_methods without `customer` lists only Treasury payment methods, so
                # list per customer. That endpoint has no `created` filter; without `type` it
                # returns every type.
                list_path="/v1/customers/{parent_id}/payment_methods",
                id_prefix="pm_",
                columns=_PAYMENT_METHODS_COLUMNS,
                created_filter=False,
                parent="customers",
                # Detaching leaves the payment method in place with customer=null: an update.
                update_events=(
                    "payment_method.attached",
                    "payment_method.automatically_updated",
                    "payment_method.detached",
                    "payment_method.updated",
                ),
            ),
            Resource(
                name="refunds",
                object="refund",
                list_path="/v1/refunds",
                id_prefix="re_",
                columns=_REFUNDS_COLUMNS,
                # charge.refund.updated carries the refund, not the charge.
                update_events=(
                    "charge.refund.updated",
                    "refund.created",
                    "refund.failed",
                    "refund.updated",
                ),
            ),
            Resource(
                name="disputes",
                object="dispute",
                list_path="/v1/disputes",
                id_prefix="dp_",
                columns=_DISPUTES_COLUMNS,
                # Dispute events are named charge.dispute.* but carry the dispute.
                update_events=(
                    "charge.dispute.closed",
                    "charge.dispute.created",
                    "charge.dispute.funds_reinstated",
                    "charge.dispute.funds_withdrawn",
                    "charge.dispute.updated",
                ),
            ),
            Resource(
                name="payouts",
                object="payout",
                list_path="/v1/payouts",
                id_prefix="po_",
                columns=_PAYOUTS_COLUMNS,
                update_events=(
                    "payout.canceled",
                    "payout.created",
                    "payout.failed",
                    "payout.paid",
                    "payout.reconciliation_completed",
                    "payout.updated",
                ),
            ),
            Resource(
                name="plans",
                object="plan",
                list_path="/v1/plans",
                # Plan ids are user-chosen, or the id of the price the plan mirrors (price_...).
                id_prefix="",
                columns=_PLANS_COLUMNS,
                # No `active` filter: omitted, the list returns active and inactive plans.
                update_events=("plan.created", "plan.updated"),
                delete_events=("plan.deleted",),
            ),
            Resource(
                name="tax_rates",
                object="tax_rate",
                list_path="/v1/tax_rates",
                id_prefix="txr_",
                columns=_TAX_RATES_COLUMNS,
                # No `active` filter: omitted, the list returns active and archived tax rates.
                update_events=("tax_rate.created", "tax_rate.updated"),
            ),
            Resource(
                name="credit_notes",
                object="credit_note",
                list_path="/v1/credit_notes",
                id_prefix="cn_",
                columns=_CREDIT_NOTES_COLUMNS,
                # Voiding keeps the credit note (status=void): an update.
                update_events=(
                    "credit_note.created",
                    "credit_note.updated",
                    "credit_note.voided",
                ),
            ),
            Resource(
                name="promotion_codes",
                object="promotion_code",
                list_path="/v1/promotion_codes",
                id_prefix="promo_",
                columns=_PROMOTION_CODES_COLUMNS,
                # No `active` filter: omitted, the list returns active and inactive codes.
                update_events=("promotion_code.created", "promotion_code.updated"),
            ),
            Resource(
                name="setup_intents",
                object="setup_intent",
                list_path="/v1/setup_intents",
                id_prefix="seti_",
                columns=_SETUP_INTENTS_COLUMNS,
                update_events=(
                    "setup_intent.canceled",
                    "setup_intent.created",
                    "setup_intent.requires_action",
                    "setup_intent.setup_failed",
                    "setup_intent.succeeded",
                ),
            ),
            # Not one of Stripe's list endpoints of its own: the balance transactions each payout
            # paid out (`payout` filter of /v1/balance_transactions), for payout reconciliation.
            # A run takes the payouts created in its window and lists every transaction of each.
            # Stripe answers 400 to the filter for manual payouts, so only automatic ones; a payout
            # whose reconciliation completes later is listed again by the run of that day.
            Resource(
                name="payout_balance_transactions",
                object="balance_transaction",
                list_path="/v1/balance_transactions",
                id_prefix="txn_",
                columns=MappingProxyType({**_BALANCE_TRANSACTIONS_COLUMNS, "payout": "ref"}),
                created_filter=False,
                parent="payouts",
                parent_param="payout",
                parent_column="payout",
                window_by_parent=True,
                parent_filter=MappingProxyType({"automatic": True}),
                parent_events=("payout.reconciliation_completed",),
            ),
        )
    }
)


def get_resource(name: str) -> Resource:
    """Look a resource up by name; an unknown name lists the valid ones."""
    try:
        return RESOURCES[name]
    except KeyError:
        valid = ", ".join(sorted(RESOURCES))
        raise ValueError(f"Unknown Stripe resource {name!r}. Valid resources: {valid}.") from None
