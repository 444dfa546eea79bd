"""`python -m proxy.options --markdown [PAGE]` writes the options table into the page (default:
docs/operators/configuration.md) between its markers; `--dev-markdown [PAGE]`, the dev proxy's
(default: docs/developers/dev-proxy.md); `--toml` prints every default as a commented TOML
file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from proxy.options.render import toml_file, with_table

DOCS = Path(__file__).resolve().parents[2] / "docs"
CONFIGURATION_PAGE = DOCS / "operators" / "configuration.md"
DEV_PROXY_PAGE = DOCS / "developers" / "dev-proxy.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proxy.options")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--markdown", nargs="?", const=CONFIGURATION_PAGE, type=Path, metavar="PAGE")
    what.add_argument("--dev-markdown", nargs="?", const=DEV_PROXY_PAGE, type=Path, metavar="PAGE")
    what.add_argument("--toml", action="store_true")
    args = parser.parse_args(argv)
    if args.toml:
        sys.stdout.write(toml_file())
        return 0
    dev = args.dev_markdown is not None
    page: Path = args.dev_markdown if dev else args.markdown
    page.write_text(with_table(page.read_text(encoding="utf-8"), dev=dev), encoding="utf-8")
    print(f"wrote the options table into {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
