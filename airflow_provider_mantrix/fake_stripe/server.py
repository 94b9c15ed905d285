"""The fake Stripe's HTTP side: Stripe's v1 read API over a threaded standard-library server.

Answers like api.stripe.com does (paths, query encoding, list envelopes, error bodies, headers)
so the official SDK works against it unchanged, and adds test controls: latency, rate limits,
injected failures, a broken-pagination trap and a log of the requests served.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import random
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote

from airflow_provider_mantrix.fake_stripe.store import (
    RESOURCES,
    ApiKey,
    Dataset,
    FakeStripe,
    NoSuchObject,
    Record,
    Resource,
    event_type_matcher,
    random_text,
)

RATE_LIMIT_MESSAGE = (
    "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests."
)
LOCK_TIMEOUT_MESSAGE = (
    "This object cannot be accessed right now because another API request or Stripe process is "
    "currently accessing it. If you see this error intermittently, retry the request. If you see this "
    "error frequently and are making multiple concurrent requests to a single object, make your requests "
    "serially or at a lower rate."
)
MISSING_KEY_MESSAGE = (
    "You did not provide an API key. You need to provide your API key in the Authorization header, using "
    "Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication "
    "for details, or we can help at https://support.stripe.com/."
)
PUBLISHABLE_KEY_MESSAGE = (
    "This API call cannot be made with a publishable API key. Please use a secret API key. You can find a "
    "list of your API keys at https://dashboard.stripe.com/account/apikeys."
)
ACCOUNT_PERMISSION = "rak_accounts_kyc_basic_read"
FAULTS = ("drop", "rate_limit", "lock_timeout")
logger = logging.getLogger(__name__)
_DOCS = "https://stripe.com/docs/error-codes/"
_json = json.JSONEncoder(separators=(",", ":")).encode
_KEY_PREFIX = re.compile(r"^(?:sk|rk|pk)_(?:test|live)_")
_PARAM = re.compile(r"^([A-Za-z_]+)(?:\[([^\[\]]*)\])?$")
_VERSION = re.compile(r"^[\w.\-]{1,64}$")
_SUBSCRIPTION_STATUSES = (
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)
_ENDED = ("canceled", "incomplete_expired")
_INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")
_BOOLEAN_FILTERS = ("active", "inclusive")
_LIST_PARAMS = ("limit", "starting_after", "ending_before", "expand")
_EXTRA_FILTERS = {"events": ("types",), "balance_transactions": ("payout",)}
# filters with their own rules rather than plain equality
_SPECIAL_FILTERS = {("payment_methods", "customer"), ("subscriptions", "status"), ("events", "type")}


def mask_key(key: str) -> str:
    """A key as Stripe prints it in errors: prefix, stars, last four (short keys: all stars)."""
    prefix = _KEY_PREFIX.match(key)
    head = prefix.group(0) if prefix else ""
    rest = key[len(head) :]
    if len(rest) < 12:
        return head + "*" * len(rest)
    return head + "*" * (len(rest) - 4) + rest[-4:]


class RequestRecord(NamedTuple):
    """One request served: status None means the connection was dropped on purpose."""

    method: str
    path: str
    query: dict[str, str]
    status: int | None


class ApiError(Exception):
    """An error answered with Stripe's `{"error": {...}}` body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ):
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "type": kind}
        if code:
            self.body["code"] = code
            self.body["doc_url"] = _DOCS + code.replace("_", "-")
        if param:
            self.body["param"] = param
        self.headers = headers


def _unknown_parameter(name: str) -> ApiError:
    return ApiError(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)


def _no_such(error: NoSuchObject, param: str, status: int = 400) -> ApiError:
    return ApiError(status, str(error), code="resource_missing", param=param)


def _fault_error(fault: int | str) -> ApiError:
    if fault in (429, "rate_limit"):
        return ApiError(429, RATE_LIMIT_MESSAGE, code="rate_limit")
    if fault == "lock_timeout":
        return ApiError(
            429, LOCK_TIMEOUT_MESSAGE, code="lock_timeout", headers=(("Stripe-Should-Retry", "true"),)
        )
    if fault == 409:
        return ApiError(
            409, LOCK_TIMEOUT_MESSAGE, code="lock_timeout", headers=(("Stripe-Should-Retry", "true"),)
        )
    if isinstance(fault, int) and fault >= 500:
        retry = (("Stripe-Should-Retry", "true"),) if fault in (502, 503, 504) else ()
        return ApiError(fault, "An unknown error occurred", kind="api_error", headers=retry)
    return ApiError(int(fault), "An injected error occurred.")


def _api_key(headers: Any) -> str | None:
    """The key from `Authorization: Bearer KEY` (or Basic auth with the key as user, like curl -u)."""
    value = headers.get("Authorization") or ""
    scheme, _, credential = value.strip().partition(" ")
    if scheme.lower() == "bearer":
        return credential.strip() or None
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(credential.strip()).decode("utf-8").partition(":")[0] or None
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


def _parse_params(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding: `a=1`, `a[b]=1` (hash), `a[]=1` or `a[0]=1` (array)."""
    params: dict[str, Any] = {}
    for raw, value in pairs:
        match = _PARAM.match(raw)
        if match is None:
            raise _unknown_parameter(raw)
        name, sub = match.groups()
        current = params.get(name)
        if sub is None:
            if current is not None and not isinstance(current, str):
                raise ApiError(400, f"Invalid {name}: cannot be both a value and a hash or array", param=name)
            params[name] = value
        elif sub == "" or sub.isdigit():
            if current is not None and not isinstance(current, list):
                raise ApiError(400, f"Invalid array: {name}", param=name)
            params.setdefault(name, []).append(value)
        else:
            if current is not None and not isinstance(current, dict):
                raise ApiError(400, f"Invalid hash: {name}", param=name)
            params.setdefault(name, {})[sub] = value
    return params


def _string(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, f"Invalid {name}: must be a string", param=name)
    return value or None


def _integer(value: Any, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(
            400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param
        ) from None


def _boolean(value: Any, param: str) -> bool:
    if value in ("true", "false"):
        return value == "true"
    raise ApiError(400, f"Invalid boolean: {value}", param=param)


def _created_range(value: Any) -> tuple[int | None, int | None]:
    """`created=T` or `created[gt|gte|lt|lte]=T` as a half-open range [gte, lt)."""
    if isinstance(value, str):
        exact = _integer(value, "created")
        return exact, exact + 1
    if not isinstance(value, dict):
        raise ApiError(400, "Invalid hash: created", param="created")
    gte = lt = None
    for operator, raw in value.items():
        bound = _integer(raw, f"created[{operator}]")
        if operator == "gte":
            gte = bound if gte is None else max(gte, bound)
        elif operator == "gt":
            gte = bound + 1 if gte is None else max(gte, bound + 1)
        elif operator == "lt":
            lt = bound if lt is None else min(lt, bound)
        elif operator == "lte":
            lt = bound + 1 if lt is None else min(lt, bound + 1)
        else:
            raise _unknown_parameter(f"created[{operator}]")
    return gte, lt


class _TokenBuckets:
    """Per-key token buckets: `rate` requests per second, bursts of up to one second's worth."""

    def __init__(self, rate: float):
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str, now: float) -> bool:
        tokens, stamp = self.buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - stamp) * self.rate)
        allowed = tokens >= 1.0
        self.buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        return allowed


class _Route(NamedTuple):
    kind: str  # account | balance | list | retrieve | customer_payment_methods
    endpoint: str  # rate-limit key and list url
    resource: Resource | None = None
    object_id: str | None = None


def _route(path: str) -> _Route | None:
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "" or parts[1] != "v1" or "" in parts[2:]:
        return None
    if len(parts) == 3 and parts[2] in ("account", "balance"):
        return _Route(parts[2], path)
    resource = RESOURCES.get(parts[2])
    if resource is None:
        return None
    if len(parts) == 3:
        return _Route("list", resource.path, resource)
    if len(parts) == 4:
        return _Route("retrieve", resource.path, resource, unquote(parts[3]))
    if len(parts) == 5 and resource.name == "customers" and parts[4] == "payment_methods":
        return _Route("customer_payment_methods", path, RESOURCES["payment_methods"], unquote(parts[3]))
    return None


class _HTTPServer(ThreadingHTTPServer):
    """Thread per connection; remembers open connections so stop() can close idle keep-alives."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: FakeStripeServer):
        super().__init__(address, _Handler)
        self.app = app
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections
    server: _HTTPServer

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        response = self.server.app.respond(self.command, self.path, self.headers)
        if response is None:
            self.close_connection = True
            return
        self.wfile.write(response)

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: nothing is logged (request lines would be noise; keys are never in them anyway)."""


class FakeStripeServer:
    """Serves a FakeStripe store over HTTP on a background thread.

    >>> with FakeStripeServer(store) as server:
    ...     client = stripe.StripeClient(TEST_SECRET_KEY, base_addresses={"api": server.url})
    """

    def __init__(
        self,
        store: FakeStripe,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        rate_limit_per_endpoint: float | None = None,
        rate_limit_global: float | None = None,
    ):
        self.store = store
        self.host = host
        self.port = port
        self.latency = latency
        self._endpoint_limits = _TokenBuckets(rate_limit_per_endpoint) if rate_limit_per_endpoint else None
        self._global_limit = _TokenBuckets(rate_limit_global) if rate_limit_global else None
        self._lock = threading.Lock()
        self._faults: list[tuple[str, deque[int | str]]] = []
        self._broken_pagination: set[str] = set()
        self._requests: list[RequestRecord] = []
        self._random = random.Random()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> FakeStripeServer:
        """Listen and serve on a daemon thread; returns self (the port is known once this returns)."""
        self._httpd = _HTTPServer((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-stripe",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeStripeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # test controls

    def fail_next(self, path_prefix: str, statuses: int | str | Iterable[int | str]) -> None:
        """The next requests whose path starts with `path_prefix` fail, one per item, in order:
        429 (rate_limit), "lock_timeout" (429), 409, 500, 503 or any other status, or "drop"
        (the connection is closed without an answer). Then service resumes."""
        items = [statuses] if isinstance(statuses, (int, str)) else list(statuses)
        for item in items:
            if not (isinstance(item, int) and 400 <= item <= 599) and item not in FAULTS:
                raise ValueError(f"unknown failure {item!r}: use an HTTP status 400-599 or one of {FAULTS}")
        with self._lock:
            self._faults.append((path_prefix, deque(items)))

    def break_pagination(self, path: str) -> None:
        """Make the list at `path` (e.g. "/v1/customers") serve the same page forever with has_more true."""
        with self._lock:
            self._broken_pagination.add(path)

    def repair_pagination(self, path: str) -> None:
        with self._lock:
            self._broken_pagination.discard(path)

    @property
    def requests(self) -> list[RequestRecord]:
        """The requests served so far (a copy), oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # serving

    def respond(self, method: str, target: str, headers: Any) -> bytes | None:
        """The full HTTP response to one request, or None to drop the connection."""
        if self.latency:
            time.sleep(self.latency)
        path, _, query = target.partition("?")
        pairs = parse_qsl(query, keep_blank_values=True)
        version = headers.get("Stripe-Version") or ""
        version = version if _VERSION.match(version) else self.store.api_version
        fault = self._take_fault(path)
        if fault == "drop":
            self._log(method, path, pairs, None)
            return None
        try:
            if fault is not None:
                raise _fault_error(fault)
            status, body, extra = 200, self._answer(method, path, pairs, headers), ()
        except ApiError as error:
            status, body, extra = error.status, '{"error":' + _json(error.body) + "}", error.headers
        except Exception:  # a bug must still answer like Stripe's 500 rather than hang up
            logger.exception("fake Stripe failed on %s %s", method, path)
            status, body, extra = 500, '{"error":' + _json(_fault_error(500).body) + "}", ()
        self._log(method, path, pairs, status)
        return self._http(status, body, version, extra)

    def _take_fault(self, path: str) -> int | str | None:
        with self._lock:
            for index, (prefix, pending) in enumerate(self._faults):
                if path.startswith(prefix):
                    fault = pending.popleft()
                    if not pending:
                        del self._faults[index]
                    return fault
        return None

    def _log(self, method: str, path: str, pairs: list[tuple[str, str]], status: int | None) -> None:
        with self._lock:
            self._requests.append(RequestRecord(method, path, dict(pairs), status))

    def _http(self, status: int, body: str, version: str, extra: tuple[tuple[str, str], ...]) -> bytes:
        payload = body.encode("utf-8")
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            "Server: nginx",
            f"Date: {formatdate(self.store.now, usegmt=True)}",  # Stripe's clock is the store's
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
            "Cache-Control: no-cache, no-store",
            f"Request-Id: req_{random_text(self._random, 14)}",
            f"Stripe-Version: {version}",
            *(f"{name}: {value}" for name, value in extra),
        ]
        if status == 401:
            lines.append('WWW-Authenticate: Basic realm="Stripe"')
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload

    def _answer(self, method: str, path: str, pairs: list[tuple[str, str]], headers: Any) -> str:
        key = _api_key(headers)
        if key is None:
            raise ApiError(401, MISSING_KEY_MESSAGE)
        grant = self.store.keys.get(key)
        if grant is None:
            message = (
                PUBLISHABLE_KEY_MESSAGE
                if key.startswith("pk_")
                else f"Invalid API Key provided: {mask_key(key)}"
            )
            raise ApiError(401, message)
        account = headers.get("Stripe-Account") or grant.account
        if account != grant.account and account not in self.store.accounts:
            raise ApiError(
                403,
                f"The provided key '{mask_key(key)}' does not have access to account '{account}' (or that account "
                "does not exist). Application access may have been revoked.",
            )
        route = _route(path) if method == "GET" else None
        self._check_rate_limits(route.endpoint if route else path)
        if route is None:
            raise ApiError(
                404,
                f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help "
                "at https://support.stripe.com/.",
            )
        self._check_permission(key, grant, account, route)
        params = _parse_params(pairs)
        dataset = self.store.dataset(account, grant.livemode)
        if route.kind == "account":
            self._allow(params, ())
            return _json(self.store.account_object(account))
        if route.kind == "balance":
            self._allow(params, ())
            return _json(self.store.balance_object(account, grant.livemode))
        assert route.resource is not None
        if route.kind == "retrieve":
            self._allow(params, ())
            try:
                return self.store.retrieve_body(dataset, route.resource.name, route.object_id or "")
            except NoSuchObject as error:
                raise _no_such(error, "id", 404) from None
        return self._list(dataset, route, params)

    def _check_rate_limits(self, endpoint: str) -> None:
        if self._endpoint_limits is None and self._global_limit is None:
            return
        now = time.monotonic()
        with self._lock:
            allowed = self._global_limit is None or self._global_limit.allow("*", now)
            if allowed and self._endpoint_limits is not None:
                allowed = self._endpoint_limits.allow(endpoint, now)
        if not allowed:
            raise ApiError(429, RATE_LIMIT_MESSAGE, code="rate_limit")

    def _check_permission(self, key: str, grant: ApiKey, account: str, route: _Route) -> None:
        if route.kind == "account":
            permission = ACCOUNT_PERMISSION if grant.restricted else None
        elif route.kind == "balance":
            permission = None if grant.can_read else "rak_balance_read"
        else:
            assert route.resource is not None
            permission = None if grant.can_read else route.resource.permission
        if permission:
            raise ApiError(
                403,
                f"The provided key '{mask_key(key)}' does not have the required permissions for this endpoint on "
                f"account '{account}'. Having the '{permission}' permission would allow this request to continue.",
            )

    @staticmethod
    def _allow(params: dict[str, Any], allowed: Iterable[str]) -> None:
        names = {"expand", *allowed}
        for name, value in params.items():
            if name not in names:
                if isinstance(value, dict):
                    name = f"{name}[{next(iter(value))}]"
                raise _unknown_parameter(name)

    def _list(self, dataset: Dataset, route: _Route, params: dict[str, Any]) -> str:
        resource = route.resource
        assert resource is not None
        nested = route.kind == "customer_payment_methods"
        allowed: tuple[str, ...] = (
            _LIST_PARAMS + ("type",)
            if nested
            else (
                _LIST_PARAMS
                + resource.filters
                + _EXTRA_FILTERS.get(resource.name, ())
                + (("created",) if resource.created_filter else ())
            )
        )
        self._allow(params, allowed)
        limit = _integer(params.get("limit", "10"), "limit")
        if limit < 1:
            raise ApiError(400, "This value must be greater than or equal to 1.", param="limit")
        if limit > 100:
            raise ApiError(400, "This value must be less than or equal to 100.", param="limit")
        starting_after, ending_before = _string(params, "starting_after"), _string(params, "ending_before")
        if starting_after and ending_before:
            raise ApiError(
                400, "You may only specify one of these parameters: ending_before, starting_after."
            )
        created_gte, created_lt = _created_range(params["created"]) if "created" in params else (None, None)
        conditions = self._conditions(dataset, resource, params)
        if nested:
            conditions.append(self._customer_condition(dataset, route.object_id or "", "id", 404))
        elif resource.name == "payment_methods":
            if "customer" not in params:
                return _list_json(
                    [], False, route.endpoint
                )  # without a customer Stripe lists Treasury methods only
            conditions.append(
                self._customer_condition(dataset, _string(params, "customer") or "", "customer", 400)
            )
        with self._lock:
            broken = route.endpoint in self._broken_pagination
        if broken:
            starting_after = ending_before = None
        try:
            bodies, has_more = self.store.list_page(
                dataset,
                resource.name,
                created_gte=created_gte,
                created_lt=created_lt,
                starting_after=starting_after,
                ending_before=ending_before,
                limit=limit,
                match=_all_of(conditions),
            )
        except NoSuchObject as error:
            raise _no_such(error, "starting_after" if starting_after else "ending_before") from None
        return _list_json(bodies, has_more or broken, route.endpoint)

    def _customer_condition(
        self, dataset: Dataset, customer: str, param: str, status: int
    ) -> Callable[[Record], bool]:
        if not self.store.has_object(dataset, "customers", customer):
            raise ApiError(status, f"No such customer: '{customer}'", code="resource_missing", param=param)
        return lambda record: record.fields["customer"] == customer

    def _conditions(
        self, dataset: Dataset, resource: Resource, params: dict[str, Any]
    ) -> list[Callable[[Record], bool]]:
        """Predicates for the resource-specific filters present in `params`."""
        conditions: list[Callable[[Record], bool]] = []
        for name in resource.filters:
            if name not in params or (resource.name, name) in _SPECIAL_FILTERS:
                continue
            value: Any = _string(params, name)
            if name in _BOOLEAN_FILTERS:
                value = _boolean(value, name)
            elif resource.name == "invoices" and name == "status" and value not in _INVOICE_STATUSES:
                raise ApiError(
                    400, f"Invalid status: must be one of {', '.join(_INVOICE_STATUSES)}", param="status"
                )
            conditions.append(lambda record, name=name, value=value: record.fields[name] == value)
        if resource.name == "subscriptions":
            conditions.extend(_subscription_status(params.get("status")))
        elif resource.name == "events":
            conditions.extend(_event_types(params))
        elif resource.name == "balance_transactions" and "payout" in params:
            payout = _string(params, "payout")
            if not self.store.has_object(dataset, "payouts", payout):
                raise ApiError(400, f"No such payout: '{payout}'", code="resource_missing", param="payout")
            if self.store.get("payouts", payout).get("automatic") is False:
                raise ApiError(
                    400,
                    "Balance transaction history can only be filtered on automatic transfers, not manual.",
                    param="payout",
                )
            conditions.append(lambda record: record.fields.get("payout") == payout)
        return conditions


def _subscription_status(status: Any) -> list[Callable[[Record], bool]]:
    """Stripe hides ended subscriptions (canceled, incomplete_expired) unless asked for."""
    if status is None:
        return [lambda record: record.fields["status"] not in _ENDED]
    if status not in _SUBSCRIPTION_STATUSES:
        raise ApiError(
            400,
            f"Invalid status: must be one of {', '.join(_SUBSCRIPTION_STATUSES[:-1])}, or unpaid",
            param="status",
        )
    if status == "all":
        return []
    if status == "ended":
        return [lambda record: record.fields["status"] in _ENDED]
    return [lambda record: record.fields["status"] == status]


def _event_types(params: dict[str, Any]) -> list[Callable[[Record], bool]]:
    if "type" in params and "types" in params:
        raise ApiError(400, "You may only specify one of these parameters: type, types.")
    if "type" in params:
        patterns = [_string(params, "type") or ""]
    elif "types" in params:
        patterns = params["types"] if isinstance(params["types"], list) else [params["types"]]
    else:
        return []
    if not all(isinstance(pattern, str) for pattern in patterns):
        raise ApiError(400, "Invalid array", param="types")
    return [event_type_matcher(patterns)]


def _all_of(conditions: list[Callable[[Record], bool]]) -> Callable[[Record], bool] | None:
    if not conditions:
        return None
    if len(conditions) == 1:
        return conditions[0]
    return lambda record: all(condition(record) for condition in conditions)


def _list_json(bodies: list[str], has_more: bool, url: str) -> str:
    return (
        '{"object":"list","data":['
        + ",".join(bodies)
        + '],"has_more":'
        + ("true" if has_more else "false")
        + ',"url":'
        + _json(url)
        + "}"
    )
