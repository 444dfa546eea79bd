"""Seedance's error envelope: `{"error": {"code", "message", "param", "type"}}`."""

from __future__ import annotations

from starlette.responses import JSONResponse

# status → (default code, type) as the upstream answers them.
_DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("InvalidParameter", "BadRequest"),
    401: ("AuthenticationError", "Unauthorized"),
    403: ("AccessDenied", "Forbidden"),
    404: ("ResourceNotFound", "NotFound"),
    405: ("MethodNotAllowed", "MethodNotAllowed"),
    408: ("RequestTimeout", "RequestTimeout"),
    409: ("Conflict", "Conflict"),
    413: ("RequestTooLarge", "RequestTooLarge"),
    422: ("UnprocessableEntity", "UnprocessableEntity"),
    429: ("RateLimitExceeded.EndpointRPMExceeded", "TooManyRequests"),
    500: ("InternalServiceError", "InternalServerError"),
    502: ("BadGateway", "BadGateway"),
    503: ("ServerOverloaded", "ServiceUnavailable"),
    504: ("GatewayTimeout", "GatewayTimeout"),
}


def default_code(status: int) -> tuple[str, str]:
    """The (code, type) pair that goes with an HTTP status."""
    if status in _DEFAULTS:
        return _DEFAULTS[status]
    return ("InvalidRequest", "BadRequest") if status < 500 else ("InternalServiceError", "Unknown")


class ApiError(Exception):
    """Raised by handlers; turned into an envelope response by the app."""

    def __init__(self, status: int, code: str, message: str, param: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param


def envelope(status: int, message: str, *, code: str | None = None, param: str = "") -> dict:
    default, kind = default_code(status)
    return {"error": {"code": code or default, "message": message, "param": param, "type": kind}}


def error_response(
    status: int, message: str, *, code: str | None = None, param: str = ""
) -> JSONResponse:
    return JSONResponse(envelope(status, message, code=code, param=param), status_code=status)


def bad_request(param: str, message: str, code: str = "InvalidParameter") -> ApiError:
    return ApiError(400, code, message, param)
