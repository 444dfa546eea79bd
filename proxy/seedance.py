"""Parsing of Seedance create bodies: enough to refuse malformed input before anything is relayed
and to know the model. The body itself is forwarded untouched."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from proxy.errors import EdgeError, invalid_parameter, missing_parameter


@dataclass(frozen=True, slots=True)
class CreateRequest:
    model: str
    body: dict[str, Any]


def parse_create(raw: bytes) -> CreateRequest | EdgeError:
    if not raw:
        return invalid_parameter("The request body must be a JSON object.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return invalid_parameter("The request body is not valid JSON.")
    if not isinstance(body, dict):
        return invalid_parameter("The request body must be a JSON object.")
    model = body.get("model")
    if model is None:
        return missing_parameter("model")
    if not isinstance(model, str) or not model.strip():
        return invalid_parameter("`model` must be a non-empty string.", "model")
    content = body.get("content")
    if content is None:
        return missing_parameter("content")
    if not isinstance(content, list) or not content:
        return invalid_parameter("`content` must be a non-empty list.", "content")
    for index, item in enumerate(content):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            return invalid_parameter(
                "Each content item must be an object with a `type`.", f"content[{index}]"
            )
    return CreateRequest(model=model.strip(), body=body)
