"""The model catalog operations (`/v1/models…`)."""

from __future__ import annotations

from control.api import schemas as s
from control.api.openapi.describe import Op

FAMILY_EXAMPLE = {
    "ids": ["dreamina-seedance-3-0-270101"],
    "resolutions": {"720p": {"16:9": [1280, 720], "9:16": [720, 1280]}},
    "default_resolution": "720p",
    "durations": {"min": 4, "max": 20, "default": 5, "auto": True},
    "audio": {"supported": True, "default": True},
    "prices": [{"usd_per_million_tokens": "9"}],
}

OPERATIONS: dict[tuple[str, str], Op] = {
    ("GET", "/v1/models"): Op(
        "The model catalog: every family, and the markup and credits per USD of all prices.",
        s.ModelCatalog,
    ),
    ("GET", "/v1/models/{family}"): Op("Read a model family.", s.ModelFamily),
    ("PUT", "/v1/models/{family}"): Op(
        "Add or replace a model family; live on every edge within a second.",
        s.ModelFamily,
        body=s.ModelFamilyPut,
        also=(201,),
        example=FAMILY_EXAMPLE,
    ),
    ("PATCH", "/v1/models/{family}"): Op(
        "Change fields of a model family: a price, a limit, a retirement.",
        s.ModelFamily,
        body=s.ModelFamilyPatch,
        example={"status": "retired", "retired_at": "2026-12-15", "replacement": "m-2"},
    ),
    ("DELETE", "/v1/models/{family}"): Op(
        "Remove a model family: its models are refused as unknown from then on.",
        s.ModelDeleted,
    ),
}
