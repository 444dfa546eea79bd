"""The edge's addon chain, in order.

`mitmdump -s addons/gateway.py --mode reverse:https://ark.ap-southeast.bytepluses.com` runs it
on its own; it then pulls policy from, and ships usage to, `--set nextapi_control_url=…`.
Its options' defaults are run_proxy.py's (proxy/options/schema.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # loaded by path with `mitmdump -s`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from addons.auth import Auth
from addons.billing import Billing
from addons.callback_ingress import Callbacks
from addons.edge import Edge
from addons.failclosed import FailClosed, guard
from addons.idempotency import Idempotency
from addons.ipallow import IpAllow
from addons.metering import Metering
from addons.options import OptionCheck
from addons.quota import Quota
from addons.ratelimit import RateLimit
from addons.relay import Relay
from addons.standalone import Standalone
from addons.tasks import Tasks
from addons.validation import Validation
from addons.videos import Videos
from proxy.services import EdgeServices


def chain(services: EdgeServices, first: tuple[object, ...] = ()) -> list[object]:
    """The addons in order, each request-path hook guarded: one that raises answers the flow
    (addons/failclosed.py) instead of letting a half-checked request reach the relay. The
    options' check comes before all (`first` too): no addon sees a value it refused."""
    addons = [
        OptionCheck(),
        *first,
        Edge(),
        Auth(services),
        IpAllow(),
        RateLimit(services),
        Validation(services),
        Idempotency(services),
        Callbacks(services),
        Videos(services),
        Quota(services),
        Billing(services),
        Tasks(services),
        Relay(services),
        FailClosed(),
        Metering(services),
    ]
    return [guard(addon) for addon in addons]


def __getattr__(name: str) -> list[object]:
    """`addons`, the chain on its own (Standalone first), built when mitmproxy's script loader
    first asks for it rather than at import: importing `chain` from here builds nothing (no
    services, no verifier threads)."""
    if name != "addons":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    services = EdgeServices()  # configured whole by Standalone once the options are final
    built = chain(services, first=(Standalone(services),))
    globals()["addons"] = built  # from now on a plain attribute: the same list every time
    return built
