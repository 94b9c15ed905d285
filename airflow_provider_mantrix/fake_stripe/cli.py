"""`mantrix-fake-stripe`: run a seeded fake Stripe so DAGs can be demoed and tested without a key."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

from airflow_provider_mantrix.fake_stripe.server import FakeStripeServer
from airflow_provider_mantrix.fake_stripe.store import (
    ACCOUNT_ID,
    LIVE_SECRET_KEY,
    NO_PERMISSION_KEY,
    RESTRICTED_LIVE_KEY,
    RESTRICTED_TEST_KEY,
    TEST_SECRET_KEY,
    FakeStripe,
)


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
    return parser


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
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
