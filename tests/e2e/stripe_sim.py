"""The Stripe simulator (`python -m simulator.stripe`) as a child process for end-to-end tests,
and a loopback receiver for its webhook events."""

from __future__ import annotations

import http.server
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import stripe

from tests.e2e.harness import Process, address


class StripeSimulator:
    """`python -m simulator.stripe` on a free loopback port, with a fresh key and secret."""

    def __init__(self, *flags: str, webhook_url: str | None = None) -> None:
        self.api_key = "sk_test_" + secrets.token_hex(12)
        self.webhook_secret = "whsec_" + secrets.token_hex(16)
        extra = ["--webhook-url", webhook_url] if webhook_url else []
        self.process = Process(
            [
                sys.executable,
                "-m",
                "simulator.stripe",
                "--listen",
                "127.0.0.1:0",
                "--api-key-env",
                "STRIPE_SIM_API_KEY",
                "--webhook-secret-env",
                "STRIPE_SIM_WEBHOOK_SECRET",
                *extra,
                *flags,
            ],
            env={
                "STRIPE_SIM_API_KEY": self.api_key,
                "STRIPE_SIM_WEBHOOK_SECRET": self.webhook_secret,
            },
        )
        self.url = address(self.process, "stripe simulator")
        # A connection per call, as harness.Simulator does: idle keep-alives close under us.
        self.http = httpx.Client(
            base_url=self.url,
            timeout=10,
            headers={"Authorization": f"Bearer {self.api_key}"},
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def client(self, **options: Any) -> stripe.StripeClient:
        """Stripe's own client pointed at the simulator (sync and async methods both work)."""
        return stripe.StripeClient(
            self.api_key,
            base_addresses={"api": self.url},
            http_client=stripe.HTTPXClient(allow_sync_methods=True),
            **options,
        )

    def _control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.http.request(method, path, json=body).raise_for_status().json()

    def events(self) -> list[dict[str, Any]]:
        """Every event so far, in creation order: id, type, payload (the exact JSON text),
        attempts, delivered."""
        return self._control("GET", "/_sim/events")["data"]

    def resend(self, event_id: str, url: str | None = None) -> dict[str, Any]:
        return self._control("POST", f"/_sim/events/{event_id}/resend", {"url": url} if url else {})

    def set_webhook(self, url: str | None, deliver: bool = True) -> None:
        self._control("PUT", "/_sim/webhook", {"url": url, "deliver": deliver})

    def pay(self, session_id: str, async_: bool = False) -> httpx.Response:
        """Press Pay on the hosted checkout page (the redirect is answered, not followed)."""
        form = {"async": "1"} if async_ else {}
        return httpx.post(f"{self.url}/checkout/{session_id}/pay", data=form, timeout=10)

    def dispute(
        self,
        *,
        charge: str | None = None,
        payment_intent: str | None = None,
        amount: int | None = None,
    ) -> dict[str, Any]:
        body = {"charge": charge, "payment_intent": payment_intent, "amount": amount}
        return self._control("POST", "/_sim/disputes", {k: v for k, v in body.items() if v})

    def close_dispute(self, dispute_id: str, status: str) -> dict[str, Any]:
        return self._control("POST", f"/_sim/disputes/{dispute_id}/close", {"status": status})

    def declines(self, enabled: bool) -> None:
        self._control("POST", "/_sim/declines", {"enabled": enabled})

    def counts(self) -> dict[str, int]:
        return self._control("GET", "/_sim/state")["counts"]

    def stop(self) -> None:
        self.http.close()
        self.process.stop()


@dataclass(slots=True)
class Received:
    body: bytes
    signature: str | None
    content_type: str | None


class WebhookReceiver:
    """A loopback HTTP server taking webhook POSTs; `fail_next` answers that many with 500."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.fail_next = 0
        self._changed = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._changed:
                    failing = receiver.fail_next > 0
                    receiver.fail_next -= 1 if failing else 0
                    if not failing:
                        receiver.received.append(
                            Received(
                                body,
                                self.headers.get("Stripe-Signature"),
                                self.headers.get("Content-Type"),
                            )
                        )
                    receiver._changed.notify_all()
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stripe/webhook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The first `count` deliveries accepted, once that many arrived (or AssertionError)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{len(self.received)} of {count} webhooks arrived")
                self._changed.wait(remaining)
            return list(self.received[:count])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
