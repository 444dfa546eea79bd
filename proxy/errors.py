"""The error envelope the edge answers with, shaped like Seedance's so the official SDKs raise
the matching exception (they read `code`, `param` and `type` from the `error` object)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

_TYPES = {
    400: "BadRequest",
    401: "Unauthorized",
    402: "PaymentRequired",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    413: "RequestTooLarge",
    416: "RangeNotSatisfiable",
    422: "UnprocessableEntity",
    429: "TooManyRequests",
    431: "RequestHeaderFieldsTooLarge",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}

# The SDKs retry 408/409/429/5xx unless told not to; these answers will not change on a retry.
_NO_RETRY = {400, 401, 402, 403, 404, 410, 413, 416, 422, 431}


@dataclass(slots=True)
class EdgeError:
    status: int
    code: str
    message: str
    param: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        error = {
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "type": _TYPES.get(self.status, "Error"),
        }
        return json.dumps({"error": error}, separators=(",", ":")).encode()

    def response_headers(self, request_id: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "X-Request-Id": request_id}
        if self.status in _NO_RETRY:
            headers["x-should-retry"] = "false"
        headers.update(self.headers)
        return headers


def authentication_error(message: str = "The API key is missing or invalid.") -> EdgeError:
    return EdgeError(401, "AuthenticationError", message)


def access_denied(message: str) -> EdgeError:
    return EdgeError(403, "AccessDenied", message)


def not_found(message: str = "The requested resource was not found.") -> EdgeError:
    return EdgeError(404, "NotFound", message)


def model_not_found(message: str) -> EdgeError:
    """The upstream's answer for a model it does not serve (a retired one, here)."""
    return EdgeError(404, "InvalidEndpointOrModel.NotFound", message)


def invalid_parameter(message: str, param: str = "") -> EdgeError:
    return EdgeError(400, "InvalidParameter", message, param)


def missing_parameter(param: str) -> EdgeError:
    return EdgeError(400, "MissingParameter", f"The parameter `{param}` is required.", param)


def request_too_large(limit: int) -> EdgeError:
    return EdgeError(413, "RequestTooLarge", f"The request body exceeds {limit} bytes.")


def counters_unavailable() -> EdgeError:
    return EdgeError(
        503,
        "ServiceUnavailable",
        "Limits cannot be checked right now; try again shortly.",
        headers={"Retry-After": "2"},
    )


def upstream_unavailable(message: str = "The upstream service is unreachable.") -> EdgeError:
    return EdgeError(502, "UpstreamUnavailable", message)


def upstream_timeout(message: str = "The upstream service did not answer in time.") -> EdgeError:
    return EdgeError(504, "UpstreamTimeout", message)
