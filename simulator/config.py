"""The simulator's knobs, changeable at run time through `PATCH /_sim/config`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A knob with a value of the wrong type or out of range; `param` names the knob."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


_FLOATS = ("queued_seconds", "running_seconds", "callback_timeout", "callback_retry_delay")
_INTS = ("seed", "latency_ms", "max_queued", "video_bytes")


@dataclass(slots=True)
class SimulatorConfig:
    queued_seconds: float = 1.0
    """How long a new task stays `queued`."""
    running_seconds: float = 2.0
    """How long it then stays `running` before it succeeds (or fails)."""
    api_key: str | None = None
    """If set, every API call must carry `Authorization: Bearer <api_key>` (else 401)."""
    error_rate: float = 0.0
    """Fraction (0–1) of API calls answered 500 `InternalServiceError`, drawn from `seed`."""
    seed: int = 0
    fixed_status: int | None = None
    """If set (400–599), every API call is answered with this status and a matching envelope."""
    latency_ms: int = 0
    """Delay before answering each API call."""
    fail_tasks: bool = False
    """Tasks end `failed` with an error object instead of `succeeded`."""
    max_queued: int = 120
    """More tasks than this queued at once → 429 `QuotaExceeded`."""
    callback_timeout: float = 5.0
    """Seconds a callback receiver has to answer 2xx."""
    callback_retry_delay: float = 1.0
    """Pause between the retries of a succeeded/failed callback."""
    video_bytes: int = 32
    """Size of the videos served at `video_url` (an MP4 header, then deterministic filler)."""
    clock_offset: float = 0.0
    """Seconds added to the simulator's clock (negative: its tasks ended in the past)."""

    def __post_init__(self) -> None:
        for name in _FLOATS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(name, f"{name} must be a number >= 0")
            setattr(self, name, float(value))
        for name in _INTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(name, f"{name} must be an integer")
        offset = self.clock_offset
        if isinstance(offset, bool) or not isinstance(offset, int | float):
            raise ConfigError("clock_offset", "clock_offset must be a number")
        self.clock_offset = float(offset)
        if not 32 <= self.video_bytes <= 2**30:
            raise ConfigError("video_bytes", "video_bytes must be 32 to 2**30")
        if self.latency_ms < 0 or self.max_queued < 0:
            raise ConfigError("latency_ms" if self.latency_ms < 0 else "max_queued", "must be >= 0")
        rate = self.error_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ConfigError("error_rate", "error_rate must be a number between 0 and 1")
        self.error_rate = float(rate)
        status = self.fixed_status
        if status is not None and (
            isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599
        ):
            raise ConfigError("fixed_status", "fixed_status must be null or an integer 400–599")
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key):
            raise ConfigError("api_key", "api_key must be null or a non-empty string")
        if not isinstance(self.fail_tasks, bool):
            raise ConfigError("fail_tasks", "fail_tasks must be a boolean")

    def updated(self, changes: dict[str, Any]) -> SimulatorConfig:
        """A copy with `changes` applied; raises ConfigError for unknown knobs or bad values."""
        names = {f.name for f in dataclasses.fields(self)}
        for name in changes:
            if name not in names:
                raise ConfigError(name, f"unknown setting {name!r}")
        return dataclasses.replace(self, **changes)

    def public(self) -> dict[str, Any]:
        """The knobs as JSON, with the API key redacted."""
        data = dataclasses.asdict(self)
        if data["api_key"] is not None:
            data["api_key"] = "***"
        return data
