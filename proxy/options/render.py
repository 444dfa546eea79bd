"""The schema as text: the table of docs/operators/configuration.md, and a commented TOML file of
every default (a start for a `--config` file); the dev proxy's options as the table of
docs/developers/dev-proxy.md."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

from proxy.options.dev_schema import DEV_OPTIONS
from proxy.options.schema import OPTIONS

TABLE_START = "<!-- options:start (generated: python -m proxy.options --markdown) -->"
TABLE_END = "<!-- options:end -->"
DEV_TABLE_START = "<!-- dev-options:start (generated: python -m proxy.options --dev-markdown) -->"
DEV_TABLE_END = "<!-- dev-options:end -->"
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


def dev_markdown_table() -> str:
    """One row per option of `run_proxy.py dev`: its flag, the variable that gives its default,
    the default and help."""
    rows = ["| flag | environment | default | meaning |", "|---|---|---|---|"]
    for option in DEV_OPTIONS:
        flag = f"{option.cli_flag} {option.metavar}" if option.metavar else option.cli_flag
        if option.choices:
            flag = f"{option.cli_flag} {'|'.join(option.choices)}"
        cells = [
            f"`{flag}`",
            f"`{option.env}`" if option.env else "—",
            dev_default(option.default),
            option.help,
        ]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"


def dev_default(value: Any) -> str:
    if value is None or value == []:
        return "—"
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"`{value}`"


def with_table(page: str, dev: bool = False) -> str:
    """`page` with the generated table between its markers (ValueError: the markers are not
    there): the edge's, or with `dev` the dev proxy's."""
    start_marker, end_marker = (DEV_TABLE_START, DEV_TABLE_END) if dev else (TABLE_START, TABLE_END)
    table = dev_markdown_table() if dev else markdown_table()
    start, end = page.index(start_marker), page.index(end_marker)
    return page[: start + len(start_marker)] + "\n" + table + page[end:]


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
