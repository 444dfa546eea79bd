"""One option of the edge: its TOML key, type, default, help, environment variable, command-line
flag and mitmproxy option, and how a value of it is read from text (the environment, a flag) or
from TOML, and handed to mitmproxy (whose options are str, int, float or bool)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_origin

ENV_PREFIX = "NEXTAPI_"


@dataclass(frozen=True)
class Option:
    name: str  # the TOML key, the Settings field, NEXTAPI_<NAME> in the environment
    kind: Any  # str, int, float, bool, Path, list[str], dict[str, …]
    default: Any
    help: str
    mitm: str | None = None  # the mitmproxy option the edge's addons read; None: launcher only
    flag: bool = False  # a command-line flag --<name-with-dashes> of run_proxy.py
    choices: tuple[str, ...] | None = None
    check: Callable[[Any], str | None] | None = None  # proxy/options/checks.py

    def problem(self, value: Any) -> str | None:
        """What is wrong with a value of this option's type (None: nothing)."""
        return None if self.check is None else self.check(value)

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def cli_flag(self) -> str | None:
        return "--" + self.name.replace("_", "-") if self.flag else None

    @property
    def mitm_kind(self) -> type:
        """The option's type among mitmproxy's: lists travel comma-separated, tables as JSON."""
        return self.kind if self.kind in (str, int, float, bool) else str

    def fresh_default(self) -> Any:
        """The default, a copy of its own for every Settings (lists and tables are mutable)."""
        return copy.deepcopy(self.default)

    def coerce(self, value: Any) -> Any:
        """A value of this option's type from text (environment, flags) or TOML; ValueError or
        TypeError if it cannot be one, or is not among the choices."""
        coerced = self._coerce(value)
        if self.choices is not None and coerced not in self.choices:
            raise ValueError(f"one of {', '.join(self.choices)}")
        return coerced

    def _coerce(self, value: Any) -> Any:
        kind, origin = self.kind, get_origin(self.kind)
        if kind is bool:
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind in (float, Path, str):
            return kind(value)
        if origin is list:
            if isinstance(value, str):
                return [part.strip() for part in value.split(",") if part.strip()]
            if not isinstance(value, list):
                raise TypeError(value)
            return [str(part) for part in value]
        if origin is dict:
            if isinstance(value, str):
                value = json.loads(value)
            if not isinstance(value, dict):
                raise TypeError(value)
            return value
        raise TypeError(f"{self.name}: no reader for {kind!r}")

    def to_mitm(self, value: Any) -> Any:
        """A setting's value as its mitmproxy option holds it."""
        origin = get_origin(self.kind)
        if origin is list:
            return ",".join(value)
        if origin is dict:
            return json.dumps(value, sort_keys=True)
        if self.kind is Path:
            return str(value)
        return value
