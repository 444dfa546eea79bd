"""What every admin shape is made of: the field types (text, time, limits, amounts), the error
envelope, the rate and spend limits orgs and keys share, and `body_of`, which reads a request body
against a shape."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType
from starlette.requests import Request

from control.api.validate import MAX_AMOUNT, MAX_LIMIT, NO_CONTROL_PATTERN
from control.http import ApiError, bad_request, json_body

Text = Annotated[str, Meta(max_length=200, pattern=NO_CONTROL_PATTERN)]
LongText = Annotated[str, Meta(max_length=500, pattern=NO_CONTROL_PATTERN)]
Email = Annotated[
    str, Meta(max_length=320, pattern=NO_CONTROL_PATTERN, examples=["ops@acme.example"])
]
Time = Annotated[
    str,
    Meta(
        description="RFC 3339, UTC (`Z`)",
        examples=["2026-11-29T18:00:00.000Z"],
        extra_json_schema={"format": "date-time"},
    ),
]
Limit = Annotated[int, Meta(ge=1, le=MAX_LIMIT)]
Amount = Annotated[int, Meta(ge=0, le=MAX_AMOUNT, description="micro-credits")]
Grant = Annotated[int, Meta(ge=1, le=MAX_AMOUNT, description="micro-credits")]
Cidrs = Annotated[
    list[Annotated[str, Meta(max_length=64)]],
    Meta(max_length=1000, examples=[["203.0.113.0/24", "2001:db8::/32"]]),
]
ModelIds = list[Annotated[str, Meta(pattern=NO_CONTROL_PATTERN)]]


class ErrorDetail(Struct):
    code: Annotated[str, Meta(examples=["InvalidParameter"])]
    message: Annotated[str, Meta(examples=["`name` must be a non-empty string."])]


class Error(Struct):
    """Every error: `{"error": {"code", "message"}}`."""

    error: ErrorDetail


class RateLimit(Struct, forbid_unknown_fields=True):
    requests_per_minute: Limit | UnsetType | None = UNSET
    requests_per_day: Limit | UnsetType | None = UNSET
    concurrent_tasks: Limit | UnsetType | None = UNSET


class SpendLimit(Struct, forbid_unknown_fields=True):
    amount: Amount
    period: Literal["day", "month"] = "month"


async def body_of(request: Request, shape: type[Struct]) -> dict[str, Any]:
    """The request's JSON object with only the fields `shape` declares and every field it
    requires, in the messages clients know ("Unknown fields: …", "`name` is required."); the
    values are then checked by the validators (control/api/validate.py)."""
    body = await json_body(request)
    fields = msgspec.structs.fields(shape)
    unknown = set(body) - {f.encode_name for f in fields}
    if unknown:
        raise bad_request(f"Unknown fields: {', '.join(sorted(unknown))}.")
    for f in fields:
        if f.required and f.encode_name not in body:
            raise ApiError(400, "MissingParameter", f"`{f.encode_name}` is required.")
    return body
