"""The shared parts the edge's addons use: one instance per edge process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from proxy.authn import KeyAuthenticator
from proxy.policy import PolicyStore

if TYPE_CHECKING:
    from proxy.spool import Spool


@dataclass
class EdgeServices:
    policy: PolicyStore = field(default_factory=PolicyStore)
    authenticator: KeyAuthenticator | None = None
    spool: Spool | None = None  # set once the process has started its usage spool

    def __post_init__(self) -> None:
        if self.authenticator is None:
            self.authenticator = KeyAuthenticator(self.policy)

    @property
    def auth(self) -> KeyAuthenticator:
        assert self.authenticator is not None
        return self.authenticator
