"""The model catalog end to end: every family through the three official SDKs, new fields relayed
byte for byte, duplicate keys and retired models refused, settlement at each price dimension."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import arkruntime
import byteplussdkarkruntime
import httpx
import pytest
import volcenginesdkarkruntime

from proxy.core.pricing import charge
from proxy.core.seedance.catalog import ModelFamily
from tests.e2e.harness import SHIPPED_CATALOG, Cluster, Gateway, Simulator, estimate

TASKS = "/api/v3/contents/generations/tasks"
CONTENT = [{"type": "text", "text": "a red kite over the dunes"}]
SDKS: dict[str, Callable[..., Any]] = {
    "byteplus": byteplussdkarkruntime.Ark,
    "volcengine": volcenginesdkarkruntime.Ark,
    "arkruntime": arkruntime.Ark,
}


def sdk(name: str, gateway: Gateway, key: str) -> Any:
    return SDKS[name](base_url=gateway.base_url, api_key=key, max_retries=0)


def get_task(client: Any, name: str, task_id: str) -> Any:
    tasks = client.content_generation.tasks
    return tasks.get(task_id) if name == "arkruntime" else tasks.get(task_id=task_id)


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def task_record(gateway: Gateway, org_id: str, task_id: str) -> dict[str, Any]:
    items = gateway.admin.get(f"/v1/orgs/{org_id}/tasks").json()["items"]
    return next(item for item in items if item["id"] == task_id)


def settled(gateway: Gateway, org_id: str, task_id: str) -> dict[str, Any]:
    return wait_until(
        lambda: (r := task_record(gateway, org_id, task_id))["charged"] is not None and r,
        "the task was never settled",
    )


def relayed_creates(simulator: Simulator) -> list[dict[str, Any]]:
    return [r for r in simulator.requests() if r["method"] == "POST" and r["path"] == TASKS]


def largest_resolution(family: ModelFamily) -> str:
    return max(family.sizes, key=lambda r: max(w * h for w, h in family.sizes[r].values()))


def customer(gateway: Gateway) -> tuple[str, str]:
    org = gateway.create_org(credits=10**12)
    return org["id"], gateway.create_key(org["id"])["key"]


FAMILY_CASES = [
    (name, list(SDKS)[index % len(SDKS)]) for index, name in enumerate(SHIPPED_CATALOG.families)
]


@pytest.mark.parametrize(("family_name", "sdk_name"), FAMILY_CASES)
def test_every_family_at_its_largest_resolution_and_longest_duration(
    gateway: Gateway, family_name: str, sdk_name: str
) -> None:
    family = SHIPPED_CATALOG.families[family_name]
    model = family.ids[0]
    resolution = largest_resolution(family)
    org_id, key = customer(gateway)
    client = sdk(sdk_name, gateway, key)
    args = {
        "model": model,
        "content": CONTENT,
        "resolution": resolution,
        "duration": family.max_duration,
    }
    if family.retired(time.time()):
        with pytest.raises(Exception) as refused:
            client.content_generation.tasks.create(**args)
        assert getattr(refused.value, "status_code", None) == 404
        assert family.replacement is not None and family.replacement in str(refused.value)
        return
    created = client.content_generation.tasks.create(**args)
    done = wait_until(
        lambda: (t := get_task(client, sdk_name, created.id)).status == "succeeded" and t,
        f"{model} never succeeded",
    )
    assert (done.resolution, done.duration) == (resolution, family.max_duration)
    record = settled(gateway, org_id, created.id)
    assert record["reserved"] == estimate(args)
    # The simulator renders `adaptive` (the default) as 16:9: that frame, for the whole duration.
    width, height = family.size(resolution, "16:9")
    frames = family.fps * family.max_duration + family.extra_frames
    tokens = done.usage.completion_tokens
    assert tokens == width * height * frames // 1024
    unit = SHIPPED_CATALOG.unit_price(
        family, "default", family.audio_default, resolution, video_input=False
    )
    assert record["unit_price"] == str(unit) and record["charged"] == charge(unit, tokens)
    assert 0 < record["charged"] <= record["reserved"]


NEW_FIELDS = (
    b'{"model": "dreamina-seedance-2-5-260628",  "content": [{"type": "text", "text": "caf\\u00e9 '
    b'\xc3\xa9t\xc3\xa9"}], "tools": [{"type": "web_search"}], "optimize_prompt": {"mode": '
    b'"thinking"}, "reasoning_effort": "max", "human_face_mode": "keep", "subdivision_level": '
    b'"high", "file_format": "mp4", "output_format": "mov", "omni_reference_task_type": "auto", '
    b'"priority": 7, '
    b'"tomorrows_parameter": {"nested": [1, 2.50, null, true]}}'
)


def test_fields_the_catalog_does_not_describe_reach_the_upstream_byte_for_byte(
    gateway: Gateway, simulator: Simulator
) -> None:
    _, key = customer(gateway)
    simulator.clear_requests()
    with httpx.Client(base_url=gateway.edge_url, timeout=15) as c:
        answer = c.post(
            TASKS,
            content=NEW_FIELDS,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
    assert answer.status_code == 200, answer.text
    (seen,) = relayed_creates(simulator)
    assert seen["body"].encode("latin-1") == NEW_FIELDS


def test_a_body_with_a_duplicate_key_is_refused_and_not_relayed(
    gateway: Gateway, simulator: Simulator
) -> None:
    _, key = customer(gateway)
    simulator.clear_requests()
    cheap_then_dear = (
        b'{"model": "seedance-1-0-pro-fast-251015", "content": [{"type": "text", "text": "x"}], '
        b'"model": "dreamina-seedance-2-5-260628"}'
    )
    nested = (
        b'{"model": "seedance-1-0-pro-250528", '
        b'"content": [{"type": "text", "text": "a", "text": "b"}]}'
    )
    with httpx.Client(base_url=gateway.edge_url, timeout=15) as c:
        for body, param in ((cheap_then_dear, "model"), (nested, "text")):
            answer = c.post(TASKS, content=body, headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 400
            assert answer.json()["error"]["param"] == param
    assert relayed_creates(simulator) == []


def test_a_retired_model_is_refused_naming_its_replacement(
    gateway: Gateway, simulator: Simulator
) -> None:
    _, key = customer(gateway)
    simulator.clear_requests()
    body = {"model": "seedance-1-0-lite-i2v-250428", "content": CONTENT}
    with httpx.Client(base_url=gateway.edge_url, timeout=15) as c:
        answer = c.post(TASKS, json=body, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["code"] == "InvalidEndpointOrModel.NotFound"
    assert "2026-05-13" in error["message"] and "seedance-1-0-pro-fast-251015" in error["message"]
    assert answer.headers["x-should-retry"] == "false"
    assert relayed_creates(simulator) == []


def test_values_a_family_does_not_take_are_refused_and_the_upstream_limits_accepted(
    gateway: Gateway,
) -> None:
    _, key = customer(gateway)
    cases = [
        ({"model": "dreamina-seedance-2-0-260128", "duration": 15, "resolution": "4k"}, 200, ""),
        ({"model": "dreamina-seedance-2-5-260628", "duration": 30}, 200, ""),
        ({"model": "dreamina-seedance-2-0-260128", "duration": 16}, 400, "duration"),
        ({"model": "dreamina-seedance-2-0-fast-260128", "resolution": "1080p"}, 400, "resolution"),
        ({"model": "dreamina-seedance-2-0-260128", "service_tier": "flex"}, 400, "service_tier"),
        ({"model": "seedance-1-0-pro-250528", "generate_audio": True}, 400, "generate_audio"),
        ({"model": "dreamina-seedance-2-0-mini-260615", "frames": 121}, 400, "frames"),
    ]
    with httpx.Client(base_url=gateway.edge_url, timeout=15) as c:
        for fields, status, param in cases:
            answer = c.post(
                TASKS,
                json={"content": CONTENT, **fields},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert answer.status_code == status, (fields, answer.text)
            if param:
                assert answer.json()["error"]["param"] == param


# --- settlement at each price dimension (a gateway of its own: it edits the catalog) ---------

REFERENCE_VIDEO = {
    "type": "video_url",
    "video_url": {"url": "https://example.com/ref.mp4"},
    "role": "reference_video",
}


def test_settlement_charges_the_price_of_each_dimension(fresh_gateway: Gateway) -> None:
    gateway = fresh_gateway
    # 1.5 pro is the one family whose silent videos cost less; it is retired in the shipped
    # catalog, and an operator may serve it again where the upstream still answers.
    revived = gateway.admin.patch("/v1/models/seedance-1-5-pro", json={"status": "active"})
    assert revived.status_code == 200, revived.text
    org_id, key = customer(gateway)
    client = sdk("byteplus", gateway, key)
    pro, v15, v20 = (
        "seedance-1-0-pro-250528",
        "seedance-1-5-pro-251215",
        "dreamina-seedance-2-0-260128",
    )
    cases = [  # (create arguments, the combination it is priced at: tier, audio, resolution, video)
        ({"model": pro}, ("default", False, "1080p", False)),
        ({"model": pro, "service_tier": "flex"}, ("flex", False, "1080p", False)),
        ({"model": v15}, ("default", True, "720p", False)),
        ({"model": v15, "generate_audio": False}, ("default", False, "720p", False)),
        ({"model": v20, "resolution": "1080p"}, ("default", True, "1080p", False)),
        ({"model": v20, "resolution": "4k"}, ("default", True, "4k", False)),
        ({"model": v20, "extra": [REFERENCE_VIDEO]}, ("default", True, "720p", True)),
    ]
    units = set()
    for args, (tier, audio, resolution, video) in cases:
        extra = args.pop("extra", [])
        created = client.content_generation.tasks.create(content=CONTENT + extra, **args)
        wait_until(
            lambda c=created: get_task(client, "byteplus", c.id).status == "succeeded",
            f"{args} never succeeded",
        )
        record = settled(gateway, org_id, created.id)
        family = SHIPPED_CATALOG.match(args["model"])
        assert family is not None
        unit = SHIPPED_CATALOG.unit_price(family, tier, audio, resolution, video)
        assert record["unit_price"] == str(unit), args
        assert record["charged"] == charge(unit, record["tokens"]), args
        units.add(unit)
    assert len(units) == len(cases)  # every dimension moved the price


def test_a_price_change_applies_to_later_reservations_only(fresh_gateway: Gateway) -> None:
    gateway = fresh_gateway
    org_id, key = customer(gateway)
    client = sdk("volcengine", gateway, key)
    model = "dreamina-seedance-2-0-fast-260128"
    before = client.content_generation.tasks.create(model=model, content=CONTENT)
    prices = [
        {"usd_per_million_tokens": "11.2"},
        {"video_input": True, "usd_per_million_tokens": "6.6"},
    ]
    changed = gateway.admin.patch("/v1/models/seedance-2-0-fast", json={"prices": prices})
    assert changed.status_code == 200, changed.text
    # One process: the change is published to its edge before the PATCH answers.
    after = client.content_generation.tasks.create(model=model, content=CONTENT)
    for task in (before, after):
        wait_until(
            lambda t=task: get_task(client, "volcengine", t.id).status == "succeeded",
            "never succeeded",
        )
    old, new = settled(gateway, org_id, before.id), settled(gateway, org_id, after.id)
    assert (old["unit_price"], new["unit_price"]) == ("5600000", "11200000")
    assert old["charged"] == charge(5_600_000, old["tokens"])
    assert new["charged"] == charge(11_200_000, new["tokens"])
    audit = gateway.admin.get("/v1/audit").json()["items"]
    patch = next(e for e in audit if e["action"] == "model.patch" and "prices" in json.dumps(e))
    assert patch["target"] == "seedance-2-0-fast"


# --- an edge apart: changes through the API are live there within a second -------------------

NEW_FAMILY = {
    "description": "a family an operator adds before any release knows it",
    "ids": ["seedance-3-0-preview-261201"],
    "resolutions": {"720p": {"16:9": [1280, 720]}, "1080p": {"16:9": [1920, 1080]}},
    "default_resolution": "720p",
    "durations": {"min": 4, "max": 20, "default": 5, "auto": True},
    "audio": {"supported": True, "default": True},
    "prices": [
        {"usd_per_million_tokens": "9"},
        {"resolution": "1080p", "usd_per_million_tokens": "9.9"},
    ],
}


def test_a_new_family_and_a_price_change_reach_an_edge_apart_within_a_second(
    tmp_path: Path, simulator: Simulator
) -> None:
    cluster = Cluster(tmp_path, simulator)
    try:
        edge = cluster.edge()
        key = cluster.customer()
        body = {"model": "seedance-3-0-preview-261201", "content": CONTENT, "duration": 20}
        with httpx.Client(
            base_url=edge, headers={"Authorization": f"Bearer {key}"}, timeout=15
        ) as c:
            wait_until(lambda: c.get(TASKS).status_code == 200, "the key never reached the edge")
            assert c.post(TASKS, json=body).json()["error"]["param"] == "model"  # unknown yet

            added = cluster.admin.put("/v1/models/seedance-3-0-preview", json=NEW_FAMILY)
            assert added.status_code == 201, added.text
            changed_at = time.monotonic()
            created = wait_until(
                lambda: (r := c.post(TASKS, json=body)).status_code == 200 and r.json(),
                "the new family never reached the edge",
                timeout=1.0,
            )
            first_delay = time.monotonic() - changed_at

            patch = {"prices": [{"usd_per_million_tokens": "18"}]}
            assert cluster.admin.patch("/v1/models/seedance-3-0-preview", json=patch).is_success
            changed_at = time.monotonic()

            def priced_anew() -> Any:
                answer = c.post(TASKS, json=body).json()
                unit = _task(cluster, answer["id"])["unit_price"]
                return answer if unit == "18000000" else None

            repriced = wait_until(priced_anew, "the new price never reached the edge", 1.0)
            second_delay = time.monotonic() - changed_at
        first, second = _task(cluster, created["id"]), _task(cluster, repriced["id"])
        assert (first["unit_price"], second["unit_price"]) == ("9000000", "18000000")
        assert second["reserved"] == 2 * first["reserved"]
        print(
            f"catalog changes live at the edge apart after {first_delay:.3f}s, {second_delay:.3f}s"
        )
    finally:
        cluster.stop()


def _task(cluster: Cluster, task_id: str) -> dict[str, Any]:
    items = cluster.admin.get(f"/v1/orgs/{cluster.org_id}/tasks").json()["items"]
    return next(item for item in items if item["id"] == task_id)
