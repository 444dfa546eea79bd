"""How the edge marks a refused request for its security event (proxy/core/security_events.py
holds the events' fields and reasons): the reason of an authentication failure, the mark an addon
sets on the request's context, and the sample of throttled refusals that become events."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from proxy.auth.authenticator import AuthFailure
from proxy.core.security_events import Reason
from proxy.policy import Snapshot

_BY_FAILURE = {
    AuthFailure.MISSING: Reason.MISSING_KEY,
    AuthFailure.MALFORMED: Reason.MALFORMED_KEY,
    AuthFailure.UNKNOWN: Reason.UNKNOWN_KEY,
    AuthFailure.REVOKED: Reason.REVOKED,
    AuthFailure.SUSPENDED: Reason.SUSPENDED,
    AuthFailure.EXPIRED: Reason.EXPIRED,
    AuthFailure.ORG_SUSPENDED: Reason.ORG_SUSPENDED,
    AuthFailure.ORG_CLOSED: Reason.ORG_CLOSED,
    AuthFailure.THROTTLED: Reason.THROTTLED,
}


def reason_for(failure: AuthFailure, *, key_known: bool) -> Reason:
    """The code of an authentication failure. The authenticator answers UNKNOWN for a wrong
    secret too (the client must not learn which ids exist); the record says which it was."""
    if failure is AuthFailure.UNKNOWN and key_known:
        return Reason.WRONG_SECRET
    return _BY_FAILURE[failure]


@dataclass(frozen=True, slots=True)
class SecurityMark:
    """Set on a request's context by the addon that refused it; the metering addon turns it into
    a security event once the answer's status is known."""

    reason: Reason
    org_id: str | None  # the org of a key id the policy knows (unverified), else None

    @classmethod
    def for_key(cls, reason: Reason, key_id: str | None, snapshot: Snapshot) -> SecurityMark:
        key = snapshot.keys.get(key_id) if key_id is not None else None
        return cls(reason, key.org_id if key is not None else None)


class ThrottledSample:
    """Which throttled refusals become events: the first per client address per minute. A
    flood of bad keys is answered 429 at hundreds per second; one event a minute shows the
    throttle at work without letting the flood write as many rows."""

    def __init__(self, capacity: int = 100_000, clock: Any = time.monotonic) -> None:
        self.capacity = capacity
        self.clock = clock
        self._last: OrderedDict[str, float] = OrderedDict()  # address -> when recorded

    def take(self, address: object) -> bool:
        key, now = str(address), self.clock()
        last = self._last.get(key)
        if last is not None and now - last < 60:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > self.capacity:
            self._last.popitem(last=False)
        return True
