"""`python -m proxy.options --markdown [PAGE]` writes the options table into the page (default:
docs/operators/configuration.md) between its markers; `--toml` prints every default as a
commented TOML file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from proxy.options.render import toml_file, with_table

CONFIGURATION_PAGE = Path(__file__).resolve().parents[2] / "docs" / "operators" / "configuration.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proxy.options")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--markdown", nargs="?", const=CONFIGURATION_PAGE, type=Path, metavar="PAGE")
    what.add_argument("--toml", action="store_true")
    args = parser.parse_args(argv)
    if args.toml:
        sys.stdout.write(toml_file())
        return 0
    page: Path = args.markdown
    page.write_text(with_table(page.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote the options table into {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
