"""Stripe's error envelope: `{"error": {"type", "message", "code", "param", …}}`."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


class StripeError(Exception):
    """An API error answered in Stripe's shape; `extra` adds fields such as `decline_code`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": type_, "message": message}
        if code is not None:
            self.body["code"] = code
        if param is not None:
            self.body["param"] = param
        self.body.update(extra or {})

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.body}, status_code=self.status)


def missing(param: str) -> StripeError:
    return StripeError(
        400, f"Missing required param: {param}.", code="parameter_missing", param=param
    )


def invalid(param: str, message: str, code: str = "parameter_invalid") -> StripeError:
    return StripeError(400, message, code=code, param=param)


def unknown_params(params: dict[str, Any], allowed: frozenset[str]) -> None:
    """Stripe refuses parameters it does not know; so does the simulator (a typo in the caller
    shows here, not as a silently ignored field)."""
    for name in params:
        if name not in allowed:
            raise StripeError(
                400,
                f"Received unknown parameter: {name}",
                code="parameter_unknown",
                param=name,
            )


def no_such(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(
        404 if param == "id" else 400,
        f"No such {kind}: '{object_id}'",
        code="resource_missing",
        param=param,
    )
