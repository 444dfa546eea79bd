"""The tail's lines, free of mitmproxy (the tail addon, tail.py, prints them): one per caught call,
as text for a person or JSON for a program."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

from addons.devmode import credits, redact
from proxy.core.seedance import routes


@dataclass(frozen=True)
class Call:
    """A caught call as the tail sees it (everything plain data, nothing of mitmproxy)."""

    started: float  # epoch seconds
    method: str
    host: str
    path: str  # without query
    status: int | None  # None: no answer (connection error)
    latency_ms: float
    source: str  # sim | target | replay | miss | error
    request_body: bytes = b""
    response_body: bytes = b""
    error: str | None = None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def entry(call: Call, *, bodies: bool = False) -> dict[str, Any]:
    """The tail's record of a call: time, method, route, model, task id, status, latency and
    the credits the edge would reserve (a create) or charge (a task seen finished)."""
    route = routes.match(call.method, call.path)
    request = _json(call.request_body)
    answer = _json(call.response_body)
    request = request if isinstance(request, dict) else {}
    answer = answer if isinstance(answer, dict) else {}
    model = request.get("model") or answer.get("model")
    task_id = route.task_id if route else None
    ok = call.status is not None and 200 <= call.status < 300
    if route is routes.CREATE and ok:
        task_id = answer.get("id")
    record: dict[str, Any] = {
        "time": datetime.datetime.fromtimestamp(call.started, datetime.UTC).isoformat(
            timespec="milliseconds"
        ),
        "method": call.method,
        "host": call.host,
        "route": route.template.split(" ", 1)[1] if route else call.path,
        "model": model if isinstance(model, str) else None,
        "task_id": task_id if isinstance(task_id, str) else None,
        "status": call.status,
        "task_status": answer.get("status") if isinstance(answer.get("status"), str) else None,
        "latency_ms": round(call.latency_ms, 1),
        "source": call.source,
        "credits": _credits(route, request, answer, call),
    }
    if call.error:
        record["error"] = call.error
    if bodies:
        record["request_body"] = redact.body(call.request_body)
        record["response_body"] = redact.body(call.response_body)
    return record


def _credits(
    route: routes.Route | None, request: dict[str, Any], answer: dict[str, Any], call: Call
) -> dict[str, Any] | None:
    if route is None:
        return None
    if route is routes.CREATE:
        micro = credits.estimate_credits(call.request_body)
        return None if micro is None else {"reserve": micro, "shown": credits.show(micro)}
    if route.name == "tasks.get" and answer.get("status") == "succeeded":
        usage = answer.get("usage")
        tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
        model = answer.get("model")
        if isinstance(tokens, int) and not isinstance(tokens, bool) and isinstance(model, str):
            tier = answer.get("service_tier")
            audio = answer.get("generate_audio")
            resolution = answer.get("resolution")
            micro = credits.charged_credits(
                model,
                tier if isinstance(tier, str) else "default",
                tokens,
                audio if isinstance(audio, bool) else None,
                resolution if isinstance(resolution, str) else None,
            )
            return None if micro is None else {"charge": micro, "shown": credits.show(micro)}
    return None


def text_line(record: dict[str, Any]) -> str:
    """`18:55:02.131 POST /api/v3/…/tasks seedance-1-0-pro cgt-… 200 12ms reserve 1.2 cr [sim]`"""
    clock = record["time"][11:23]
    parts = [clock, record["method"], record["route"]]
    parts.append(record["model"] or "-")
    parts.append(record["task_id"] or "-")
    status = "ERR" if record["status"] is None else str(record["status"])
    if record["task_status"]:
        status += f" {record['task_status']}"
    parts.append(status)
    parts.append(f"{record['latency_ms']:.0f}ms")
    spent = record["credits"]
    if spent:
        action = "reserve" if "reserve" in spent else "charge"
        parts.append(f"{action} {spent['shown']} cr")
    parts.append(f"[{record['source']}]")
    line = " ".join(parts)
    if record.get("error"):
        line += f" error: {record['error']}"
    for name in ("request_body", "response_body"):
        if name in record and record[name] is not None:
            line += f"\n    {name.split('_')[0]}: {json.dumps(record[name], ensure_ascii=False)}"
    return line


def json_line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))
