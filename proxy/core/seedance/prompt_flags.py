"""Seedance 1.x's legacy flags: `--name value` pairs in a prompt's text that set a field (`--rs
480p --dur 5`). The edge reads those it checks; the simulator reads them all, as the upstream."""

from __future__ import annotations

import re
from collections.abc import Iterator

_FLAG_RE = re.compile(r"(?:^|\s)--([A-Za-z]+)\s+(\S+)")
# flag name (case-insensitive) -> the field it sets
FIELD_OF_FLAG = {
    "resolution": "resolution",
    "rs": "resolution",
    "ratio": "ratio",
    "rt": "ratio",
    "duration": "duration",
    "dur": "duration",
    "fps": "fps",
    "framespersecond": "fps",
    "seed": "seed",
    "camerafixed": "camera_fixed",
    "cf": "camera_fixed",
    "watermark": "watermark",
    "wm": "watermark",
}


def prompt_flags(text: str) -> Iterator[tuple[str, str, str]]:
    """(flag name as written, field, raw value) of each known flag, in order; unknown names are
    left alone."""
    for name, raw in _FLAG_RE.findall(text):
        field = FIELD_OF_FLAG.get(name.lower())
        if field is not None:
            yield name, field, raw
