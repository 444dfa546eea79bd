"""`python -m simulator.stripe --listen 127.0.0.1:0 --api-key-env K --webhook-secret-env S …`:
run the Stripe simulator until SIGINT/SIGTERM.

Prints exactly one line, `stripe simulator listening on HOST:PORT`, once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from simulator.serving import parse_listen, serve
from simulator.stripe.app import create_app
from simulator.stripe.state import StripeState
from simulator.stripe.webhooks import DeliveryPolicy


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m simulator.stripe", description=__doc__)
    p.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 0), metavar="HOST:PORT")
    p.add_argument(
        "--api-key-env",
        metavar="NAME",
        required=True,
        help="env var holding the secret key (sk_test_…) callers must present",
    )
    p.add_argument(
        "--webhook-secret-env",
        metavar="NAME",
        required=True,
        help="env var holding the endpoint's signing secret (whsec_…)",
    )
    p.add_argument("--webhook-url", metavar="URL", help="where events are POSTed")
    p.add_argument(
        "--public-url",
        metavar="URL",
        help="base of checkout and invoice URLs (default: as the API was called)",
    )
    p.add_argument("--webhook-attempts", type=int, default=5)
    p.add_argument(
        "--webhook-backoff",
        type=float,
        default=0.1,
        help="seconds before the first retry; doubles after each",
    )
    p.add_argument("--webhook-timeout", type=float, default=5.0)
    return p


def _secret(name: str, prefix: str) -> str:
    value = os.environ.get(name, "")
    if not value.startswith(prefix):
        raise SystemExit(f"stripe simulator: ${name} must be set to a {prefix}… value")
    return value


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.webhook_attempts < 1 or args.webhook_backoff < 0 or args.webhook_timeout <= 0:
        print(
            "stripe simulator: webhook attempts, backoff and timeout out of range", file=sys.stderr
        )
        return 2
    state = StripeState(
        api_key=_secret(args.api_key_env, "sk_test_"),
        webhook_secret=_secret(args.webhook_secret_env, "whsec_"),
        webhook_url=args.webhook_url,
        public_url=args.public_url,
    )
    policy = DeliveryPolicy(args.webhook_attempts, args.webhook_backoff, args.webhook_timeout)
    try:
        asyncio.run(serve(create_app(state, policy), args.listen, "stripe simulator"))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
