"""The schema as text: the table of docs/operators/configuration.md, and a commented TOML file of
every default (a start for a `--config` file)."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

from proxy.options.schema import OPTIONS

TABLE_START = "<!-- options:start (generated: python -m proxy.options --markdown) -->"
TABLE_END = "<!-- options:end -->"
BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_value(value: Any) -> str:
    """`value` written as TOML (inline tables for tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        pairs = (f"{toml_key(key)} = {toml_value(item)}" for key, item in value.items())
        return "{ " + ", ".join(pairs) + " }"
    raise TypeError(f"no TOML for {value!r}")


def toml_key(key: str) -> str:
    return key if BARE_KEY.match(key) else json.dumps(key)


def markdown_table() -> str:
    """One row per option: its TOML key, environment variable, flag, mitmproxy option, default
    and help."""
    rows = [
        "| TOML key | environment | flag | mitmproxy option | default | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for option in OPTIONS:
        cells = [
            f"`{option.name}`",
            f"`{option.env}`",
            f"`{option.cli_flag}`" if option.cli_flag else "—",
            f"`{option.mitm}`" if option.mitm else "—",
            f"`{toml_value(option.default)}`",
            option.help,
        ]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"


def with_table(page: str) -> str:
    """`page` with the generated table between its markers (ValueError: the markers are not
    there)."""
    start, end = page.index(TABLE_START), page.index(TABLE_END)
    return page[: start + len(TABLE_START)] + "\n" + markdown_table() + page[end:]


def toml_file() -> str:
    """Every option at its default, each after its help as a comment."""
    lines = [
        "# NextAPI Edge: every setting at its default (generated: python -m proxy.options --toml).",
        "# Give a file like this one with --config FILE; NEXTAPI_<KEY> in the environment and the",
        "# command-line flags override it. Secrets never live here.",
    ]
    for option in OPTIONS:
        lines.append("")
        lines.extend(textwrap.wrap(option.help, 98, initial_indent="# ", subsequent_indent="# "))
        lines.append(f"{option.name} = {toml_value(option.default)}")
    return "\n".join(lines) + "\n"
