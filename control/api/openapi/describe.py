"""How an operation is described: `Op` (its summary, shapes, statuses, links) and `Param` (a query
parameter), the parameters many lists share, and `listing`, the description of a list that pages
and answers CSV. Rendered into OpenAPI by control/api/openapi/document.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MSGPACK, ZIP, CSV = "application/msgpack", "application/zip", "text/csv"


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True, slots=True)
class Op:
    summary: str
    ok: type | None = None  # the success body's type (None: see `media`)
    status: int = 200
    body: type | None = None
    query: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    media: str = "application/json"  # of the success body
    csv: bool = False  # also answers text/csv (`?format=csv`, `Accept: text/csv`)
    public: bool = False  # no token needed
    edge: bool = False  # the `edge` scope's calls (msgpack)
    customer: bool = False  # the customer API's: a Clerk session token, not an admin token
    links: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    example: dict[str, Any] | None = None  # a request body
    also: tuple[int, ...] = ()  # other success statuses with the same body (PUT: 200 and 201)


def link(operation: str, **parameters: str) -> tuple[str, dict[str, str]]:
    return operation, parameters


TIME = {"type": "string", "format": "date-time"}
LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Page size (100).")
CURSOR = Param(
    "cursor", {"type": "string", "maxLength": 1024}, "`next_cursor` of the previous page."
)
FORMAT = Param("format", {"enum": ["json", "csv"]}, "`csv`: the whole list as CSV.")
FROM = Param("from", TIME, "Inclusive, RFC 3339.")
TO = Param("to", TIME, "Exclusive, RFC 3339.")
PAGE = (LIMIT, CURSOR)


def listing(summary: str, page: type, query: tuple[Param, ...] = PAGE) -> Op:
    """A list answered a page at a time (`query` holds `limit` and `cursor`) that also answers
    whole as CSV: `format` is always its last parameter."""
    return Op(summary, page, query=(*query, FORMAT), csv=True)
