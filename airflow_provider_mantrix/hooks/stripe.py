"""StripeHook: the one place this provider talks to Stripe's API.

It builds a ``stripe.StripeClient`` from an Airflow connection of type ``stripe``, keeps every
request under a request budget, retries what Stripe says is worth retrying, and answers the
connection form's Test button. The secret key never leaves this module: messages name at most
its last four characters.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import stripe
from airflow.sdk import BaseHook

DEFAULT_API_BASE = "https://api.stripe.com"
DEFAULT_MAX_RETRIES = 8
# Stripe allows 25 requests/s per endpoint and, per account, 100/s in live mode and 25/s in
# test mode. One task reads one endpoint, so these leave headroom for a second task.
DEFAULT_REQUESTS_PER_SECOND = {True: 24.0, False: 20.0}  # keyed by livemode
KEY_PREFIXES = ("sk_test_", "sk_live_", "rk_test_", "rk_live_")
MAX_KEY_LENGTH = 255
# Endpoints a restricted key may be allowed to read when it cannot read /v1/account.
DATA_PROBES = ("/v1/balance_transactions", "/v1/charges", "/v1/customers", "/v1/invoices", "/v1/events")
log = logging.getLogger(__name__)
_PERMISSION = re.compile(r"'(rak_[a-z0-9_]+)'")
_ACCOUNT_IN_MESSAGE = re.compile(r"on account '(acct_[A-Za-z0-9]+)'")
_ACCOUNT_ID = re.compile(r"acct_[A-Za-z0-9]+")
_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(\.[a-z]+)?")


class StripeRequestError(Exception):
    """A request failed for good: not retryable, or out of retries. Names what failed, never the key."""


def mask_key(key: str) -> str:
    """``sk_live_…abcd``: enough to tell keys apart, too little to use one."""
    prefix = next((p for p in KEY_PREFIXES + ("pk_test_", "pk_live_") if key.startswith(p)), "")
    return f"{prefix}…{key[-4:]}" if len(key) > len(prefix) + 8 else "(a short key)"


def secret_key_problem(key: str | None) -> str | None:
    """Say what is wrong with a secret key's text, before any network call; None when it looks right."""
    if key is None or not key.strip():
        return (
            "The Secret Key is empty. Paste a secret key (sk_live_... or sk_test_...) or a restricted "
            "key (rk_live_... / rk_test_...) from Stripe Dashboard → Developers → API keys."
        )
    if key != key.strip() or any(c.isspace() for c in key):
        return (
            "The Secret Key contains spaces or line breaks (often from copy and paste). "
            "Paste the key again without surrounding whitespace."
        )
    if not key.isascii() or not key.isprintable():
        return (
            "The Secret Key contains characters that are not in Stripe keys (look-alike letters or "
            "invisible characters from copy and paste). Copy the key again from the Dashboard."
        )
    if len(key) > MAX_KEY_LENGTH:
        return (
            f"The Secret Key is {len(key)} characters long; Stripe keys are at most a few hundred. "
            "Paste just the one key."
        )
    if key.startswith(("pk_live_", "pk_test_")):
        return (
            f"The key {mask_key(key)} is a publishable key, which can only be used in browsers and "
            "cannot read data. Use a secret key (sk_...) or a restricted key (rk_...) instead."
        )
    if not key.startswith(KEY_PREFIXES):
        return (
            "The Secret Key is not a Stripe secret key: it should start with sk_live_, sk_test_, "
            "rk_live_ or rk_test_. Copy it from Stripe Dashboard → Developers → API keys."
        )
    return None


@dataclass(frozen=True)
class StripeAccount:
    """Which account and mode a key reaches."""

    id: str | None
    name: str | None
    livemode: bool

    @property
    def mode(self) -> str:
        return "live" if self.livemode else "test"

    @classmethod
    def from_account(cls, account: Mapping[str, Any], livemode: bool) -> StripeAccount:
        """From ``GET /v1/account``: its id and the name the Dashboard shows."""
        dashboard = (account.get("settings") or {}).get("dashboard") or {}
        profile = account.get("business_profile") or {}
        return cls(account.get("id"), dashboard.get("display_name") or profile.get("name") or None, livemode)

    @classmethod
    def from_permission_error(cls, error: stripe.StripeError, livemode: bool) -> StripeAccount:
        """A restricted key cannot read the account, but Stripe's 403 names it."""
        match = _ACCOUNT_IN_MESSAGE.search(str(error))
        return cls(match.group(1) if match else None, None, livemode)

    def describe(self) -> str:
        who = self.id or "an account whose id this key cannot read"
        if self.name:
            who = f"{who} ({self.name})"
        return f"Stripe account {who} in {self.mode} mode"


class RequestBudget:
    """Paces requests to at most ``rate`` per second across threads, and pauses all of them on a 429."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if not self.rate:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + 1.0 / self.rate
        if slot > now:
            time.sleep(slot - now)

    def pause(self, seconds: float) -> None:
        """Hold every thread back after Stripe said we went too fast."""
        with self._lock:
            self._next = max(self._next, time.monotonic() + seconds)


@dataclass(frozen=True)
class StripeResponse:
    """One decoded JSON answer and Stripe's clock when it was sent (``Date`` header, Unix seconds)."""

    data: dict[str, Any]
    server_time: float


def _is_retryable(error: stripe.StripeError) -> bool:
    if isinstance(error, stripe.APIConnectionError):
        return True
    status = error.http_status or 0
    return status == 429 or status == 409 or status >= 500


def _error_code(error: stripe.StripeError) -> str | None:
    body = error.json_body if isinstance(error.json_body, dict) else {}
    return (body.get("error") or {}).get("code") or error.code


def describe_error(error: stripe.StripeError) -> str:
    """One sentence naming the kind of failure, with Stripe's own message and request id."""
    status = error.http_status
    detail = str(error)
    if isinstance(error, stripe.APIConnectionError):
        return f"could not reach Stripe ({error.user_message or detail})"
    if status == 429:
        return f"Stripe rate limit ({_error_code(error) or 'rate_limit'}): {detail}"
    if status == 401:
        return f"Stripe rejected the key as invalid (401): {detail}"
    if status == 403:
        return f"the key lacks a permission (403): {detail}"
    if status and status >= 500:
        return f"Stripe server error ({status}): {detail}"
    return f"Stripe error ({status}): {detail}"


class StripeHook(BaseHook):
    """Reads Stripe through the connection's secret key.

    :param stripe_conn_id: Airflow connection of type ``stripe``; its password is the secret key.
    :param retry_initial_delay: first backoff in seconds; doubles per retry up to ``retry_max_delay``.
    """

    conn_name_attr = "stripe_conn_id"
    default_conn_name = "stripe_default"
    conn_type = "stripe"
    hook_name = "Stripe"

    def __init__(
        self,
        stripe_conn_id: str = default_conn_name,
        *,
        retry_initial_delay: float = 0.5,
        retry_max_delay: float = 30.0,
    ) -> None:
        super().__init__()
        self.stripe_conn_id = stripe_conn_id
        self.retry_initial_delay = retry_initial_delay
        self.retry_max_delay = retry_max_delay

    # -- connection settings -------------------------------------------------------------------

    @cached_property
    def _connection(self):
        return self.get_connection(self.stripe_conn_id)

    @cached_property
    def _extra(self) -> Mapping[str, Any]:
        extra = self._connection.extra_dejson
        if not isinstance(extra, Mapping):
            raise ValueError(
                f"Connection {self.stripe_conn_id!r}: its extra must be a JSON object such as "
                f'{{"api_base": "https://api.stripe.com"}}, not {type(extra).__name__}.'
            )
        # The UI may store form fields with or without Airflow 2's ``extra__stripe__`` prefix, and
        # stores fields left empty as null.
        return {
            key.removeprefix("extra__stripe__"): value
            for key, value in extra.items()
            if value is not None and value != ""
        }

    @property
    def secret_key(self) -> str:
        return self._connection.password or ""

    @property
    def livemode(self) -> bool:
        """A key's mode is in its prefix: sk_live_/rk_live_ read live data."""
        return self.secret_key.startswith(("sk_live_", "rk_live_"))

    @property
    def api_base(self) -> str:
        return str(self._extra.get("api_base") or DEFAULT_API_BASE).rstrip("/")

    @property
    def stripe_account(self) -> str | None:
        return self._extra.get("stripe_account") or None

    @property
    def max_retries(self) -> int:
        value = self._extra.get("max_network_retries")
        return DEFAULT_MAX_RETRIES if value is None else _number(value, int)

    @property
    def requests_per_second(self) -> float:
        value = self._extra.get("max_requests_per_second")
        return DEFAULT_REQUESTS_PER_SECOND[self.livemode] if value is None else _number(value, float)

    def settings_problem(self) -> str | None:
        """What is wrong with the connection's settings, named field by field; None when all is well."""
        problem = secret_key_problem(self.secret_key)
        if problem:
            return problem
        try:
            extra = self._extra
        except ValueError as error:
            return str(error)
        problems = []
        base = str(extra.get("api_base") or DEFAULT_API_BASE)
        parsed = urllib.parse.urlsplit(base)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            problems.append(
                f"API base URL {base!r} is not an http(s) URL; leave it empty for {DEFAULT_API_BASE}"
            )
        elif parsed.path.rstrip("/").endswith("/v1"):
            problems.append(
                f"API base URL {base!r} must not end in /v1: give the host, e.g. {DEFAULT_API_BASE}"
            )
        account = extra.get("stripe_account")
        if account is not None and not (isinstance(account, str) and _ACCOUNT_ID.fullmatch(account)):
            problems.append(
                f"connected account (stripe_account) {account!r} is not a Stripe account id (acct_...)"
            )
        retries = extra.get("max_network_retries")
        if retries is not None and not (_is_number(retries, int) and 0 <= _number(retries, int) <= 20):
            problems.append(f"max_network_retries {retries!r} must be a whole number from 0 to 20")
        rate = extra.get("max_requests_per_second")
        if rate is not None and not (_is_number(rate, float) and 0.1 <= _number(rate, float) <= 1000):
            problems.append(f"max_requests_per_second {rate!r} must be a number from 0.1 to 1000")
        version = extra.get("api_version")
        if version is not None and not (isinstance(version, str) and _API_VERSION.fullmatch(version)):
            problems.append(
                f"api_version {version!r} is not a Stripe API version such as {stripe.api_version}"
            )
        if problems:
            return f"Connection {self.stripe_conn_id!r}: " + "; ".join(problems) + "."
        return None

    @cached_property
    def budget(self) -> RequestBudget:
        """Shared by every thread of this hook, so a task stays under its request rate as a whole."""
        return RequestBudget(self.requests_per_second)

    def get_conn(self) -> stripe.StripeClient:
        """A client for the connection's key. The SDK retries nothing itself; :meth:`get` does."""
        problem = self.settings_problem()
        if problem:
            raise ValueError(
                problem
                if problem.startswith("Connection ")
                else f"Connection {self.stripe_conn_id!r}: {problem}"
            )
        self._mask(self.secret_key)
        # The SDK logs every request at INFO; task logs want our progress lines, not those.
        logging.getLogger("stripe").setLevel(logging.WARNING)
        return stripe.StripeClient(
            self.secret_key,
            stripe_account=self.stripe_account,
            stripe_version=self._extra.get("api_version") or None,
            base_addresses={"api": self.api_base},
            max_network_retries=0,
        )

    @cached_property
    def client(self) -> stripe.StripeClient:
        return self.get_conn()

    @property
    def api_version(self) -> str:
        return self._extra.get("api_version") or stripe.api_version

    @staticmethod
    def _mask(secret: str) -> None:
        """Ask Airflow to redact the key from every log line, wherever it might show up."""
        try:
            from airflow.sdk.log import mask_secret

            mask_secret(secret)
        except Exception:  # noqa: BLE001 - masking is best effort outside a task
            pass

    # -- requests ------------------------------------------------------------------------------

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        on_retry: Callable[[str], None] | None = None,
    ) -> StripeResponse:
        """GET one path, within the request budget, retrying 429, 409, 5xx and dropped connections.

        Backoff is exponential with full jitter and starts over for each request. Raises
        :class:`StripeRequestError` naming the path and the reason once retries are spent, or at
        once for errors that retrying cannot fix (401, 403, 400, 404).
        """
        attempt = 0
        client = self.client  # settings are checked here, before any request
        while True:
            self.budget.acquire()
            try:
                response = client.raw_request("get", path, **dict(params or {}))
            except stripe.StripeError as error:
                if not _is_retryable(error) or attempt >= self.max_retries:
                    tried = f" after {attempt + 1} attempts" if attempt else ""
                    raise StripeRequestError(f"GET {path}{tried}: {describe_error(error)}") from error
                delay = min(self.retry_max_delay, self.retry_initial_delay * 2**attempt)
                delay = random.uniform(delay / 2, delay)
                if error.http_status == 429:
                    self.budget.pause(delay)
                if on_retry:
                    on_retry(describe_error(error))
                self.log.warning(
                    "GET %s: %s; retry %d in %.1fs", path, describe_error(error), attempt + 1, delay
                )
                time.sleep(delay)
                attempt += 1
                continue
            return StripeResponse(data=response.data, server_time=_server_time(response.headers))

    # -- the connection form's Test button -----------------------------------------------------

    def get_account(self) -> StripeAccount:
        """Which account and mode the key reaches; a restricted key may not be able to tell the id."""
        try:
            account = self.get("/v1/account").data
        except StripeRequestError as error:
            cause = error.__cause__
            if isinstance(cause, stripe.PermissionError):
                return StripeAccount.from_permission_error(cause, self.livemode)
            raise
        return StripeAccount.from_account(account, self.livemode)

    def test_connection(self) -> tuple[bool, str]:
        """Say which Stripe account and mode the key reaches, or exactly why it does not."""
        problem = self.settings_problem()
        if problem:
            return False, problem
        key = mask_key(self.secret_key)
        try:
            # Straight to the client: the Test button answers in seconds, without retries or pacing.
            ok, message = self._test_connection(key)
        except Exception as error:  # noqa: BLE001 - the Test button must answer, never raise
            ok, message = False, f"Testing the Stripe connection failed unexpectedly: {error}"
        message = message.replace(self.secret_key, key)
        # `airflow connections test` prints only "success" on success: the log line says where to.
        (log.info if ok else log.warning)("%s", message)
        return ok, message

    def _test_connection(self, key: str) -> tuple[bool, str]:
        try:
            response = self.client.raw_request("get", "/v1/account")
            account = StripeAccount.from_account(response.data, self.livemode)
        except stripe.PermissionError as error:
            if self.stripe_account and "does not have access to account" in str(error):
                return False, (
                    f"The key {key} cannot act for the connected account {self.stripe_account} set on "
                    "this connection (stripe_account, sent as Stripe-Account; HTTP 403): check the account "
                    "id, or that your platform still has access to it; leave it empty for your own account."
                )
            return self._test_restricted_key(key, error)
        except stripe.AuthenticationError:
            return False, (
                f"Stripe rejected the key {key} as invalid (HTTP 401). It may be mistyped, rolled or "
                "deleted: copy a current key from Stripe Dashboard → Developers → API keys."
            )
        except stripe.APIConnectionError as error:
            return False, (
                f"Could not reach Stripe at {self.api_base}: {_connection_reason(error)}. Check the "
                "API base URL on the connection, and the network or proxy of the Airflow workers."
            )
        except stripe.StripeError as error:
            return False, f"Stripe answered with an error at {self.api_base}: {describe_error(error)}."
        return True, f"Connected to {account.describe()} with key {key}.{self._events_note()}"

    def _test_restricted_key(self, key: str, account_error: stripe.PermissionError) -> tuple[bool, str]:
        """A restricted key may not read the account, yet read the data we load: that is enough."""
        missing = [_permission(account_error) or "account read"]
        for path in DATA_PROBES:
            try:
                self.client.raw_request("get", path, limit=1)
            except stripe.PermissionError as error:
                missing.append(_permission(error) or f"read {path}")
                continue
            except stripe.StripeError as error:
                return False, f"Stripe answered with an error for {path}: {describe_error(error)}."
            account = StripeAccount.from_permission_error(account_error, self.livemode)
            return True, (
                f"Connected to {account.describe()} with restricted key {key}: it can read "
                f"{path.removeprefix('/v1/')}, but not the account details (permission {missing[0]} "
                f"is not granted; not needed for loading data).{self._events_note()}"
            )
        return False, (
            f"The key {key} reaches Stripe but lacks the permissions to read data (HTTP 403): grant "
            f"{', '.join(dict.fromkeys(missing))} to this restricted key in Stripe Dashboard → "
            "Developers → API keys, or use a secret key."
        )

    def _events_note(self) -> str:
        """Loads of objects that change replay events: say so now if the key cannot read them."""
        try:
            self.client.raw_request("get", "/v1/events", limit=1)
        except stripe.PermissionError as error:
            return (
                f" Warning: it cannot read events ({_permission(error) or 'events read'} is not granted), "
                "so loads of invoices, subscriptions, customers and other objects that change will fail: "
                "grant it, or set replay_events=False on those tasks."
            )
        except stripe.StripeError:
            return ""
        return ""


def _is_number(value: Any, kind: type) -> bool:
    try:
        _number(value, kind)
    except ValueError:
        return False
    return True


def _number(value: Any, kind: type) -> Any:
    """A connection extra as int or float, whether the form stored a number or a string."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{value!r} is not a number")
    if kind is int:
        if number != int(number):
            raise ValueError(f"{value!r} is not a whole number")
        return int(number)
    return number


def _permission(error: stripe.StripeError) -> str | None:
    match = _PERMISSION.search(str(error))
    return match.group(1) if match else None


_NETWORK_REASONS = (
    ("Connection refused", "connection refused"),
    ("Name or service not known", "host name not found"),
    ("nodename nor servname", "host name not found"),
    ("Temporary failure in name resolution", "host name not found"),
    ("timed out", "timed out"),
    ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
    ("Network is unreachable", "network unreachable"),
)


def _connection_reason(error: stripe.APIConnectionError) -> str:
    text = str(error)
    for needle, reason in _NETWORK_REASONS:
        if needle in text:
            return reason
    match = re.search(r"Network error: (.*)", text, re.S)
    return " ".join((match.group(1) if match else text).split())[:300]


def _server_time(headers: Mapping[str, str]) -> float:
    """Stripe's clock for this answer; it orders fetched states against event times."""
    value = headers.get("date") or headers.get("Date")
    if value:
        try:
            return email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            pass
    return time.time()
