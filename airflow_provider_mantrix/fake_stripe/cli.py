"""`mantrix-fake-stripe`: run a seeded fake Stripe so DAGs can be demoed and tested without a key.

Besides the demo data (``--customers`` over ``--days``), ``--bulk charges=100000`` adds that many
standalone test-mode objects spread evenly over ``[--bulk-start, --bulk-end)``, for benchmarks.
Sending the process SIGUSR1 prints one ``STATS {json}`` line on stdout: the requests served
since the previous SIGUSR1 (or the start), by path and HTTP status. The Stripe API surface stays
Stripe's own: these controls are the command line and a signal, never an extra endpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence

from airflow_provider_mantrix.fake_stripe.server import FakeStripeServer
from airflow_provider_mantrix.fake_stripe.store import (
    ACCOUNT_ID,
    LIVE_SECRET_KEY,
    NO_PERMISSION_KEY,
    RESOURCES,
    RESTRICTED_LIVE_KEY,
    RESTRICTED_TEST_KEY,
    TEST_SECRET_KEY,
    FakeStripe,
)

DAY = 86400


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mantrix-fake-stripe",
        description="Serve a seeded, Stripe-compatible fake API (test and live mode) on a local port.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=12111, help="port to listen on, 0 for any free one (default: %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed: same seed, same data (default: %(default)s)"
    )
    parser.add_argument(
        "--days", type=int, default=30, help="days of history ending now (default: %(default)s)"
    )
    parser.add_argument(
        "--customers", type=int, default=300, help="customers per mode (default: %(default)s)"
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds to wait before each answer (default: %(default)s)"
    )
    parser.add_argument(
        "--rate-limit-per-endpoint",
        type=float,
        default=None,
        metavar="X",
        help="requests per second per endpoint",
    )
    parser.add_argument(
        "--rate-limit-global", type=float, default=None, metavar="Y", help="requests per second overall"
    )
    parser.add_argument(
        "--print-keys", action="store_true", help="also print the live, restricted and no-permission keys"
    )
    parser.add_argument(
        "--ready-file", default=None, metavar="PATH", help="write the URL to PATH once listening"
    )
    parser.add_argument(
        "--bulk",
        action="append",
        default=[],
        type=_bulk_spec,
        metavar="RESOURCE=COUNT",
        help="also create COUNT standalone test-mode objects of RESOURCE (e.g. charges=100000), evenly "
        "spread over [--bulk-start, --bulk-end); repeatable",
    )
    parser.add_argument(
        "--bulk-start",
        type=int,
        default=-DAY,
        metavar="T",
        help="start of the --bulk span in Unix seconds; zero or negative: relative to now (default: %(default)s)",
    )
    parser.add_argument(
        "--bulk-end",
        type=int,
        default=0,
        metavar="T",
        help="end (exclusive) of the --bulk span in Unix seconds; zero or negative: relative to now "
        "(default: %(default)s, i.e. now)",
    )
    return parser


def _bulk_spec(text: str) -> tuple[str, int]:
    name, sep, count = text.partition("=")
    name = name.strip()
    if not sep or name not in RESOURCES:
        raise argparse.ArgumentTypeError(
            f"expected RESOURCE=COUNT with RESOURCE one of {', '.join(sorted(RESOURCES))}, got {text!r}"
        )
    try:
        number = int(count)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"COUNT must be a non-negative integer, got {count!r}")
    return name, number


def _stats_since(server: FakeStripeServer, offset: int) -> tuple[dict, int]:
    """Requests served after the first ``offset`` ones: totals by status and by path and status."""
    served = server.requests
    by_status: Counter[str] = Counter()
    by_path: dict[str, Counter[str]] = {}
    for record in served[offset:]:
        status = "dropped" if record.status is None else str(record.status)
        by_status[status] += 1
        by_path.setdefault(record.path, Counter())[status] += 1
    stats = {
        "requests": len(served) - offset,
        "by_status": dict(by_status),
        "by_path": {path: dict(counts) for path, counts in by_path.items()},
    }
    return stats, len(served)


def _write_atomically(path: str, text: str) -> None:
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    store = FakeStripe(seed=args.seed)
    started = time.perf_counter()
    for livemode in (False, True):
        store.seed(customers=args.customers, days=args.days, livemode=livemode)
    seconds = time.perf_counter() - started
    bulk_start = args.bulk_start if args.bulk_start > 0 else store.now + args.bulk_start
    bulk_end = args.bulk_end if args.bulk_end > 0 else store.now + args.bulk_end
    if args.bulk and bulk_start >= bulk_end:
        print(f"mantrix-fake-stripe: the --bulk span [{bulk_start}, {bulk_end}) is empty", file=sys.stderr)
        return 2
    bulk_seconds = time.perf_counter()
    for resource, count in args.bulk:
        store.seed_bulk(resource, count, bulk_start, bulk_end)
    bulk_seconds = time.perf_counter() - bulk_seconds
    server = FakeStripeServer(
        store,
        host=args.host,
        port=args.port,
        latency=args.latency,
        rate_limit_per_endpoint=args.rate_limit_per_endpoint,
        rate_limit_global=args.rate_limit_global,
    )
    try:
        server.start()
    except OSError as error:
        print(f"mantrix-fake-stripe: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    connection = {"conn_type": "stripe", "password": TEST_SECRET_KEY, "extra": {"api_base": server.url}}
    print(f"Fake Stripe ({ACCOUNT_ID}) listening on {server.url} - test key: {TEST_SECRET_KEY}")
    print(f"AIRFLOW_CONN_STRIPE_DEFAULT='{json.dumps(connection)}'")
    print(f"Seeded {store.count('customers')} customers per mode over {args.days} days in {seconds:.1f}s.")
    if args.bulk:
        added = ", ".join(f"{count} {resource}" for resource, count in args.bulk)
        print(
            f"Bulk-seeded {added} (test mode) over [{bulk_start}, {bulk_end}) in {bulk_seconds:.1f}s; "
            f"store clock {store.now}."
        )
    if args.print_keys:
        for label, key in (
            ("live", LIVE_SECRET_KEY),
            ("restricted test", RESTRICTED_TEST_KEY),
            ("restricted live", RESTRICTED_LIVE_KEY),
            ("no permissions", NO_PERMISSION_KEY),
        ):
            print(f"{label} key: {key}")
    sys.stdout.flush()
    if args.ready_file:
        _write_atomically(args.ready_file, server.url + "\n")

    stopping = threading.Event()
    wake = threading.Event()
    reports = []  # one item per SIGUSR1 not yet answered

    def on_stop(*_: object) -> None:
        stopping.set()
        wake.set()

    def on_report(*_: object) -> None:
        reports.append(None)
        wake.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_stop)
    signal.signal(signal.SIGUSR1, on_report)
    reported = 0
    try:
        while not stopping.is_set():
            wake.wait(0.5)
            wake.clear()
            while reports:  # printed here, not in the handler: print is not reentrant
                reports.pop()
                stats, reported = _stats_since(server, reported)
                print("STATS " + json.dumps(stats, sort_keys=True), flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
