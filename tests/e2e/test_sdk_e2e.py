"""The official SDK against the edge, with only base_url and api_key changed."""

from __future__ import annotations

import time

import pytest
from byteplussdkarkruntime import Ark
from byteplussdkarkruntime._exceptions import (
    ArkAuthenticationError,
    ArkBadRequestError,
    ArkNotFoundError,
    ArkPermissionDeniedError,
)

from tests.e2e.harness import Gateway, Simulator

MODEL = "seedance-1-0-pro-250528"
CONTENT = [{"type": "text", "text": "a red kite over hills --rs 480p --dur 2"}]


def sdk(gateway: Gateway, key: str) -> Ark:
    return Ark(base_url=gateway.base_url, api_key=key, max_retries=0, timeout=10)


def test_create_get_list_delete_through_the_sdk(gateway: Gateway, simulator: Simulator) -> None:
    org = gateway.create_org()
    key = gateway.create_key(org["id"])["key"]
    client = sdk(gateway, key)

    task = client.content_generation.tasks.create(model=MODEL, content=CONTENT)
    assert task.id.startswith("cgt-")

    deadline = time.monotonic() + 10
    while (got := client.content_generation.tasks.get(task_id=task.id)).status != "succeeded":
        assert got.status in ("queued", "running"), got.status
        assert time.monotonic() < deadline, "task never finished"
        time.sleep(0.1)
    assert got.usage is not None and got.usage.completion_tokens > 0
    assert got.content is not None and got.content.video_url

    listed = client.content_generation.tasks.list(page_size=50, task_ids=[task.id])
    assert task.id in [item.id for item in listed.items]

    client.content_generation.tasks.delete(task_id=task.id)
    with pytest.raises(ArkNotFoundError):
        client.content_generation.tasks.get(task_id=task.id)

    # What the upstream saw: NextAPI's key, never the customer's.
    seen = [r for r in simulator.requests() if task.id in r["path"] or r["method"] == "POST"]
    assert seen
    for request in seen:
        assert request["headers"]["authorization"] == f"Bearer {simulator.api_key}"


def test_sdk_raises_the_matching_exceptions(gateway: Gateway) -> None:
    org = gateway.create_org()
    key = gateway.create_key(org["id"], models=["seedance-1-0-lite-t2v-250428"])["key"]

    with pytest.raises(ArkAuthenticationError) as auth_error:
        sdk(gateway, "nk_live_not_a_real_key").content_generation.tasks.create(
            model=MODEL, content=CONTENT
        )
    assert auth_error.value.code == "AuthenticationError"

    with pytest.raises(ArkPermissionDeniedError) as denied:
        sdk(gateway, key).content_generation.tasks.create(model=MODEL, content=CONTENT)
    assert denied.value.code == "AccessDenied"

    with pytest.raises(ArkBadRequestError) as bad:
        sdk(gateway, key).content_generation.tasks.create(model="", content=CONTENT)
    assert bad.value.param == "model"
