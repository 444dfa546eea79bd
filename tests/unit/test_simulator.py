"""The Seedance simulator: task lifecycle on a fake clock, validation, listing, deletion,
fault knobs, callbacks delivered over real loopback sockets, and the CLI."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from launch.serving import serve
from simulator.app import create_app
from simulator.config import SimulatorConfig
from simulator.serving import parse_listen

T = "/api/v3/contents/generations/tasks"
PRO = "seedance-1-0-pro-250528"
START = 1_760_000_000.0
ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(**knobs: Any) -> tuple[TestClient, FakeClock]:
    clock = FakeClock()
    return TestClient(create_app(SimulatorConfig(**knobs), clock=clock)), clock


def body(text: str = "a kite", **fields: Any) -> dict[str, Any]:
    return {"model": PRO, "content": [{"type": "text", "text": text}], **fields}


def create(client: TestClient, text: str = "a kite", **fields: Any) -> str:
    response = client.post(T, json=body(text, **fields))
    assert response.status_code == 200, response.text
    return response.json()["id"]


def get(client: TestClient, task_id: str) -> dict[str, Any]:
    response = client.get(f"{T}/{task_id}")
    assert response.status_code == 200, response.text
    return response.json()


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]


# --- lifecycle and the task object ---------------------------------------------------------------


def test_status_follows_the_clock_through_queued_running_succeeded() -> None:
    client, clock = make(queued_seconds=10, running_seconds=20)
    task_id = create(client)
    assert re.fullmatch(r"cgt-20251009\d{6}-[a-z0-9]{5}", task_id)

    queued = get(client, task_id)
    assert queued["status"] == "queued"
    assert queued["created_at"] == queued["updated_at"] == int(START)
    assert queued["error"] is None
    assert "content" not in queued and queued.get("usage") is None

    clock.advance(9.9)
    assert get(client, task_id)["status"] == "queued"
    clock.advance(0.1)
    running = get(client, task_id)
    assert running["status"] == "running" and running["updated_at"] == int(START) + 10
    assert "content" not in running and running.get("usage") is None

    clock.advance(20)
    done = get(client, task_id)
    assert done["status"] == "succeeded" and done["updated_at"] == int(START) + 30
    assert done["content"] == {"video_url": f"http://testserver/_sim/videos/{task_id}.mp4"}
    assert done["usage"]["completion_tokens"] == done["usage"]["total_tokens"] > 0
    video = client.get(done["content"]["video_url"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert b"ftyp" in video.content


PRO_FAST = "seedance-1-0-pro-fast-251015"
LITE = "seedance-1-0-lite-t2v-250428"
ONE_FIVE = "seedance-1-5-pro-251215"
TWO = "dreamina-seedance-2-0-260128"
TWO_FAST = "dreamina-seedance-2-0-fast-260128"
TWO_MINI = "dreamina-seedance-2-0-mini-260615"
TWO_FIVE = "dreamina-seedance-2-5-260628"
UNKNOWN = "seedance-9-0-271201"  # no family in the catalog: simulated generically
VIDEO = {"type": "video_url", "video_url": {"url": "https://x/v.mp4"}, "role": "reference_video"}


def finished(client: TestClient, clock: FakeClock, model: str, **fields: Any) -> dict[str, Any]:
    """The task object of a create once it has succeeded."""
    task_id = create(client, model=model, **fields)
    clock.advance(3)
    task = get(client, task_id)
    assert task["status"] == "succeeded", task
    return task


# model: (resolution, frame size at 16:9, audio) of a bare text task, as SEEDANCE.md documents
# (docs/contributors/seedance-upstream.md)
BARE = {
    PRO: ("1080p", (1920, 1088), False),
    PRO_FAST: ("1080p", (1920, 1088), False),
    LITE: ("720p", (1248, 704), False),  # retired upstream, still simulated
    ONE_FIVE: ("720p", (1280, 720), True),
    TWO: ("720p", (1280, 720), True),
    TWO_FAST: ("720p", (1280, 720), True),
    TWO_MINI: ("720p", (1280, 720), True),
    TWO_FIVE: ("720p", (1280, 720), True),  # duration auto by default: runs 5 s
    UNKNOWN: ("720p", (1280, 720), False),
}


@pytest.mark.parametrize("model", BARE)
def test_defaults_of_a_bare_text_task(model: str) -> None:
    resolution, (width, height), audio = BARE[model]
    client, clock = make(queued_seconds=1, running_seconds=1)
    task = finished(client, clock, model)
    assert task["model"] == model
    assert (task["resolution"], task["ratio"], task["duration"]) == (resolution, "16:9", 5)
    assert task["framespersecond"] == 24
    assert task["service_tier"] == "default"
    assert task["execution_expires_after"] == 172800
    assert task["generate_audio"] is audio and task["draft"] is False
    assert isinstance(task["seed"], int) and task["seed"] >= 0
    tokens = width * height * (24 * 5 + 1) // 1024
    assert task["usage"] == {"completion_tokens": tokens, "total_tokens": tokens}


@pytest.mark.parametrize(("model", "audio"), [(model, BARE[model][2]) for model in BARE])
def test_generate_audio_default_depends_on_model(model: str, audio: bool) -> None:
    client, _ = make()
    response = client.post(T, json={"model": model, "content": [{"type": "text", "text": "x"}]})
    assert get(client, response.json()["id"])["generate_audio"] is audio
    silent = client.post(T, json={**body(), "model": model, "generate_audio": False})
    assert get(client, silent.json()["id"])["generate_audio"] is False


@pytest.mark.parametrize(
    ("model", "fields", "expected"),
    [
        (PRO, {"resolution": "1080p", "ratio": "16:9", "duration": 5}, 246840),
        (PRO, {"resolution": "720p", "ratio": "16:9", "duration": 5}, 1248 * 704 * 121 // 1024),
        (PRO, {"resolution": "720p", "ratio": "9:16", "duration": 5}, 704 * 1248 * 121 // 1024),
        (PRO, {"resolution": "720p", "ratio": "1:1", "duration": 2}, 960 * 960 * 49 // 1024),
        (PRO, {"resolution": "1080p", "ratio": "21:9", "duration": 12}, 2176 * 928 * 289 // 1024),
        (PRO, {"resolution": "480p", "ratio": "16:9", "frames": 29}, 864 * 480 * 29 // 1024),
        (ONE_FIVE, {"resolution": "480p", "ratio": "16:9", "duration": 4}, 864 * 496 * 97 // 1024),
        (TWO, {"resolution": "1080p", "ratio": "21:9", "duration": 5}, 2206 * 946 * 121 // 1024),
        (TWO, {"resolution": "4k", "ratio": "16:9", "duration": 15}, 3840 * 2160 * 361 // 1024),
        (
            TWO_FIVE,
            {"resolution": "480p", "ratio": "16:9", "duration": 30},
            854 * 480 * 721 // 1024,
        ),
        (
            TWO_FIVE,
            {"resolution": "1080p", "ratio": "1:1", "duration": 4},
            1440 * 1440 * 97 // 1024,
        ),
    ],
)
def test_token_count(model: str, fields: dict[str, Any], expected: int) -> None:
    client, clock = make(queued_seconds=0, running_seconds=1)
    task = finished(client, clock, model, **fields)
    assert task["usage"] == {"completion_tokens": expected, "total_tokens": expected}


@pytest.mark.parametrize(
    ("model", "videos", "seconds"),
    [(TWO, 1, 5), (TWO, 3, 15), (TWO_FAST, 2, 10), (TWO_FIVE, 4, 20), (TWO_FIVE, 10, 30)],
)
def test_reference_videos_count_as_input_seconds(model: str, videos: int, seconds: int) -> None:
    """Each reference video is 5 s of input video, within the family's total (2.0: 15 s)."""
    client, clock = make(queued_seconds=0, running_seconds=1)
    content = [{"type": "text", "text": "x"}, *[VIDEO] * videos]
    task = finished(client, clock, model, content=content, ratio="16:9", duration=4)
    expected = 1280 * 720 * (24 * 4 + 1 + 24 * seconds) // 1024
    assert task["usage"]["completion_tokens"] == expected


def test_2_0_takes_15_seconds_and_4k_and_refuses_16_seconds() -> None:
    client, clock = make(queued_seconds=0, running_seconds=1)
    task = finished(client, clock, TWO, resolution="4k", duration=15)
    assert (task["resolution"], task["duration"]) == ("4k", 15)
    for duration in (16, 3):
        error = error_of(client.post(T, json={**body(), "model": TWO, "duration": duration}), 400)
        assert (error["code"], error["param"]) == ("InvalidParameter", "duration")


@pytest.mark.parametrize(
    ("model", "fields", "param"),
    [
        (TWO_FAST, {"resolution": "1080p"}, "resolution"),
        (TWO_MINI, {"resolution": "4k"}, "resolution"),
        (TWO_FIVE, {"resolution": "4k"}, "resolution"),
        (TWO_FIVE, {"duration": 31}, "duration"),
        (TWO, {"frames": 29}, "frames"),
        (TWO_FIVE, {"frames": 29}, "frames"),
        (TWO, {"service_tier": "flex"}, "service_tier"),
        (PRO, {"generate_audio": True}, "generate_audio"),
        (PRO, {"duration": -1}, "duration"),
        (TWO, {"fps": 30}, "fps"),
    ],
)
def test_each_family_refuses_what_it_does_not_take(
    model: str, fields: dict[str, Any], param: str
) -> None:
    client, _ = make()
    error = error_of(client.post(T, json={**body(), "model": model, **fields}), 400)
    assert (error["code"], error["param"]) == ("InvalidParameter", param)
    assert client.app.state.sim.tasks == {}  # type: ignore[attr-defined]


def test_2_5_runs_with_its_default_auto_duration() -> None:
    client, clock = make(queued_seconds=0, running_seconds=1)
    bare = finished(client, clock, TWO_FIVE)
    explicit = finished(client, clock, TWO_FIVE, duration=-1)
    longest = finished(client, clock, TWO_FIVE, duration=30)
    assert bare["duration"] == explicit["duration"] == 5  # the model chose 5 s
    assert longest["duration"] == 30
    assert bare["usage"] == explicit["usage"]
    assert longest["usage"]["completion_tokens"] == 1280 * 720 * 721 // 1024


def test_frames_on_1_0_only() -> None:
    client, clock = make(queued_seconds=0, running_seconds=1)
    task = finished(client, clock, PRO, frames=33, resolution="480p", ratio="16:9")
    assert task["frames"] == 33 and "duration" not in task
    assert task["usage"]["completion_tokens"] == 864 * 480 * 33 // 1024
    error = error_of(client.post(T, json={**body(), "model": TWO, "frames": 33}), 400)
    assert error["param"] == "frames"


def test_draft_task_and_safety_identifier_are_echoed() -> None:
    client, clock = make(queued_seconds=0, running_seconds=1)
    draft = {"type": "draft_task", "draft_task": {"id": "cgt-20261101000000-abcde"}}
    task = finished(client, clock, TWO_FIVE, content=[draft], safety_identifier="user-7")
    assert task["draft_task_id"] == "cgt-20261101000000-abcde"
    assert task["safety_identifier"] == "user-7"
    error = error_of(client.post(T, json={**body(), "safety_identifier": 7}), 400)
    assert error["param"] == "safety_identifier"


def test_an_unknown_model_is_simulated_generically() -> None:
    client, clock = make(queued_seconds=0, running_seconds=1)
    task = finished(client, clock, UNKNOWN, resolution="4k", ratio="16:9", duration=60)
    assert (task["model"], task["resolution"], task["duration"]) == (UNKNOWN, "4k", 60)
    assert task["usage"]["completion_tokens"] == 3840 * 2160 * (24 * 60 + 1) // 1024
    flex = finished(client, clock, UNKNOWN, service_tier="flex", generate_audio=True)
    assert flex["service_tier"] == "flex" and flex["generate_audio"] is True


def test_last_frame_url_when_asked() -> None:
    client, clock = make(queued_seconds=0, running_seconds=0)
    task_id = create(client, return_last_frame=True)
    clock.advance(0.01)
    content = get(client, task_id)["content"]
    assert content["last_frame_url"].endswith(f"/_sim/frames/{task_id}.png")
    assert client.get(content["last_frame_url"]).headers["content-type"] == "image/png"


def test_legacy_flags_in_the_prompt_and_top_level_fields_win() -> None:
    client, _ = make()
    text = "a kite --rs 480p --rt 1:1 --dur 3 --fps 24 --seed 42 --cf true --wm false"
    task = get(client, create(client, text))
    assert (task["resolution"], task["ratio"], task["duration"], task["seed"]) == (
        "480p",
        "1:1",
        3,
        42,
    )
    assert task["camera_fixed"] is True and task["watermark"] is False

    long_names = (
        "x --resolution 1080p --ratio 4:3 --duration 7 --camerafixed false --watermark true"
    )
    task = get(client, create(client, long_names, resolution="720p", duration=4))
    assert (task["resolution"], task["ratio"], task["duration"]) == ("720p", "4:3", 4)
    assert task["camera_fixed"] is False and task["watermark"] is True


def test_fail_tasks_ends_in_failed_with_an_error() -> None:
    client, clock = make(queued_seconds=1, running_seconds=1, fail_tasks=True)
    task_id = create(client)
    clock.advance(2)
    task = get(client, task_id)
    assert task["status"] == "failed"
    assert task["error"]["code"] and task["error"]["message"]
    assert "content" not in task and task.get("usage") is None


def test_a_task_still_queued_after_execution_expires_after_expires() -> None:
    client, clock = make(queued_seconds=7200, running_seconds=1)
    task_id = create(client, execution_expires_after=3600)
    clock.advance(3599)
    assert get(client, task_id)["status"] == "queued"
    clock.advance(1)
    task = get(client, task_id)
    assert task["status"] == "expired" and task["updated_at"] == int(START) + 3600


def test_unknown_task_is_404_resource_not_found() -> None:
    client, _ = make()
    response = client.get(f"{T}/cgt-20250101000000-zzzzz")
    assert error_of(response, 404) == {
        "code": "ResourceNotFound",
        "message": "The specified task cgt-20250101000000-zzzzz is not found.",
        "param": "",
        "type": "NotFound",
    }


# --- validation ----------------------------------------------------------------------------------

TEXT = [{"type": "text", "text": "x"}]


@pytest.mark.parametrize(
    ("payload", "code", "param"),
    [
        ({"content": TEXT}, "MissingParameter", "model"),
        ({"model": "", "content": TEXT}, "MissingParameter", "model"),
        ({"model": 7, "content": TEXT}, "InvalidParameter", "model"),
        ({"model": PRO}, "MissingParameter", "content"),
        ({"model": PRO, "content": []}, "InvalidParameter", "content"),
        (
            {"model": PRO, "content": [*TEXT, {"type": "gif"}]},
            "InvalidParameter",
            "content[1].type",
        ),
        (
            {"model": PRO, "content": [{"type": "image_url"}]},
            "InvalidParameter",
            "content[0].image_url.url",
        ),
        (
            {
                "model": PRO,
                "content": [{"type": "image_url", "image_url": {"url": "u"}, "role": "x"}],
            },
            "InvalidParameter",
            "content[0].role",
        ),
        ({**body(), "resolution": "4k"}, "InvalidParameter", "resolution"),
        ({**body(), "ratio": "2:1"}, "InvalidParameter", "ratio"),
        ({**body(), "duration": 13}, "InvalidParameter", "duration"),
        ({**body(), "duration": "5"}, "InvalidParameter", "duration"),
        ({**body(), "frames": 30}, "InvalidParameter", "frames"),
        ({**body(), "service_tier": "gold"}, "InvalidParameter", "service_tier"),
        ({**body(), "seed": -2}, "InvalidParameter", "seed"),
        ({**body(), "execution_expires_after": 60}, "InvalidParameter", "execution_expires_after"),
        ({**body(), "watermark": "yes"}, "InvalidParameter", "watermark"),
        ({**body(), "callback_url": "ftp://x"}, "InvalidParameter", "callback_url"),
        (body("x --rs 4k"), "InvalidParameter", "resolution"),
        (body("x --dur five"), "InvalidParameter", "duration"),
        (body("x --fps 30"), "InvalidParameter", "fps"),
        (body("x --cf maybe"), "InvalidParameter", "camera_fixed"),
        (
            {"model": PRO, "content": [*TEXT, {"type": "text", "text": 5}]},
            "InvalidParameter",
            "content[1].text",
        ),
        ({"model": PRO, "content": ["x"]}, "InvalidParameter", "content[0]"),
    ],
)
def test_create_validation(payload: Any, code: str, param: str) -> None:
    client, _ = make()
    error = error_of(client.post(T, json=payload), 400)
    assert (error["code"], error["param"], error["type"]) == (code, param, "BadRequest")
    assert client.app.state.sim.tasks == {}  # type: ignore[attr-defined]


@pytest.mark.parametrize("raw", [b"[1, 2]", b"{not json", b""])
def test_create_needs_a_json_object(raw: bytes) -> None:
    client, _ = make()
    response = client.post(T, content=raw, headers={"content-type": "application/json"})
    assert error_of(response, 400)["code"] == "InvalidParameter"


@pytest.mark.parametrize("model", [ONE_FIVE, TWO, TWO_FAST, TWO_MINI, TWO_FIVE, UNKNOWN])
def test_duration_auto_is_refused_on_1_0_only(model: str) -> None:
    client, _ = make()
    assert error_of(client.post(T, json={**body(), "duration": -1}), 400)["param"] == "duration"
    assert client.post(T, json={**body(), "model": model, "duration": -1}).status_code == 200


# --- listing -------------------------------------------------------------------------------------


def test_list_filters_and_pages_newest_first() -> None:
    client, clock = make(queued_seconds=10, running_seconds=10)
    ids = []
    for i in range(5):
        ids.append(create(client, service_tier="flex" if i % 2 else "default"))
        clock.advance(1)
    lite = client.post(T, json={**body(), "model": "seedance-1-0-lite-t2v-250428"}).json()["id"]
    clock.advance(6)  # now START+11: ids[0] and ids[1] (created at +0 and +1) are running

    everything = client.get(T).json()
    assert everything["total"] == 6
    assert [item["id"] for item in everything["items"]] == [lite, *reversed(ids)]

    page = client.get(T, params={"page_size": 2, "page_num": 2}).json()
    assert page["total"] == 6 and [item["id"] for item in page["items"]] == [ids[3], ids[2]]
    assert client.get(T, params={"page_size": 2, "page_num": 4}).json()["items"] == []

    running = client.get(T, params={"filter.status": "running"}).json()
    assert {item["id"] for item in running["items"]} == {ids[0], ids[1]}
    assert all(item["status"] == "running" for item in running["items"])

    flex = client.get(T, params={"filter.service_tier": "flex"}).json()
    assert {item["id"] for item in flex["items"]} == {ids[1], ids[3]}

    by_model = client.get(T, params={"filter.model": "seedance-1-0-lite-t2v-250428"}).json()
    assert [item["id"] for item in by_model["items"]] == [lite]

    picked = client.get(T, params=[("filter.task_ids", ids[0]), ("filter.task_ids", ids[4])])
    assert picked.json()["total"] == 2
    assert [item["id"] for item in picked.json()["items"]] == [ids[4], ids[0]]

    assert client.get(T + "/").json()["total"] == 6


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": 501}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"page_num": 0}, "page_num"),
        ({"filter.status": "done"}, "filter.status"),
        ({"filter.service_tier": "gold"}, "filter.service_tier"),
    ],
)
def test_list_rejects_bad_paging_and_filters(params: dict[str, Any], param: str) -> None:
    client, _ = make()
    assert error_of(client.get(T, params=params), 400)["param"] == param


def test_list_covers_the_last_seven_days_only() -> None:
    client, clock = make()
    old = create(client)
    clock.advance(7 * 86400 + 1)
    new = create(client)
    assert [item["id"] for item in client.get(T).json()["items"]] == [new]
    assert get(client, old)["id"] == old


# --- delete --------------------------------------------------------------------------------------


def test_delete_a_queued_task_cancels_it_and_keeps_the_record() -> None:
    client, clock = make(queued_seconds=10, running_seconds=10)
    task_id = create(client)
    clock.advance(1)
    response = client.request("DELETE", f"{T}/{task_id}", json={})  # the SDK sends `{}`
    assert response.status_code == 200 and response.content == b""
    task = get(client, task_id)
    assert task["status"] == "cancelled" and task["updated_at"] == int(START) + 1
    clock.advance(60)
    assert get(client, task_id)["status"] == "cancelled"  # never runs afterwards
    error = error_of(client.delete(f"{T}/{task_id}"), 400)
    assert (error["code"], error["param"]) == ("OperationDenied", "id")


@pytest.mark.parametrize(
    ("knobs", "expires", "wait", "status"),
    [
        ({"queued_seconds": 1, "running_seconds": 1}, None, 2, "succeeded"),
        ({"queued_seconds": 1, "running_seconds": 1, "fail_tasks": True}, None, 2, "failed"),
        ({"queued_seconds": 9000, "running_seconds": 1}, 3600, 3600, "expired"),
    ],
)
def test_delete_a_finished_task_removes_it(
    knobs: dict[str, Any], expires: int | None, wait: float, status: str
) -> None:
    client, clock = make(**knobs)
    fields = {"execution_expires_after": expires} if expires else {}
    task_id = create(client, **fields)
    clock.advance(wait)
    assert get(client, task_id)["status"] == status
    assert client.delete(f"{T}/{task_id}").status_code == 200
    assert error_of(client.get(f"{T}/{task_id}"), 404)["code"] == "ResourceNotFound"
    assert client.get(T).json()["total"] == 0


@pytest.mark.parametrize("model", [PRO, TWO_FIVE])
def test_delete_a_running_task_is_refused(model: str) -> None:
    client, clock = make(queued_seconds=1, running_seconds=10)
    task_id = create(client, model=model)
    clock.advance(2)
    response = client.delete(f"{T}/{task_id}")
    assert 400 <= response.status_code < 500
    error = error_of(response, 400)
    assert (error["code"], error["type"], error["param"]) == ("OperationDenied", "BadRequest", "id")
    assert get(client, task_id)["status"] == "running"
    clock.advance(10)  # not cancelled: it runs to the end and is billed
    done = get(client, task_id)
    assert done["status"] == "succeeded" and done["usage"]["completion_tokens"] > 0


def test_delete_an_unknown_task_is_404() -> None:
    client, _ = make()
    assert error_of(client.delete(f"{T}/cgt-nope"), 404)["code"] == "ResourceNotFound"


# --- auth and faults -----------------------------------------------------------------------------


def test_api_key_is_required_on_api_calls_only() -> None:
    client, _ = make(api_key="sk-sim")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "sk-sim"}):
        error = error_of(client.post(T, json=body(), headers=headers), 401)
        assert (error["code"], error["type"]) == ("AuthenticationError", "Unauthorized")
    assert client.app.state.sim.tasks == {}  # type: ignore[attr-defined]
    ok = client.post(T, json=body(), headers={"Authorization": "Bearer sk-sim"})
    assert ok.status_code == 200
    assert client.get("/_sim/config").json()["api_key"] == "***"  # no key, and redacted


def test_fixed_status_answers_every_api_call() -> None:
    client, _ = make()
    task_id = create(client)
    assert client.patch("/_sim/config", json={"fixed_status": 503}).status_code == 200
    for response in (client.post(T, json=body()), client.get(f"{T}/{task_id}"), client.get(T)):
        error = error_of(response, 503)
        assert (error["code"], error["type"]) == ("ServerOverloaded", "ServiceUnavailable")
    client.patch("/_sim/config", json={"fixed_status": 429})
    assert error_of(client.get(T), 429)["type"] == "TooManyRequests"
    client.patch("/_sim/config", json={"fixed_status": None})
    assert get(client, task_id)["id"] == task_id


def test_error_rate_is_seeded_and_reproducible() -> None:
    def pattern(seed: int) -> list[int]:
        client, _ = make(error_rate=0.5, seed=seed)
        return [client.get(T).status_code for _ in range(40)]

    first = pattern(7)
    assert first == pattern(7)
    assert set(first) == {200, 500} and 5 < first.count(500) < 35
    assert first != pattern(8)

    client, _ = make(error_rate=1.0)
    error = error_of(client.get(T), 500)
    assert (error["code"], error["type"]) == ("InternalServiceError", "InternalServerError")
    assert client.get("/_sim/config").status_code == 200  # inspection routes are never faulted


def test_latency_ms_delays_api_answers() -> None:
    client, _ = make(latency_ms=150)
    started = time.monotonic()
    assert client.get(T).status_code == 200
    assert time.monotonic() - started >= 0.15


def test_too_many_queued_tasks_is_429_quota_exceeded() -> None:
    client, clock = make(max_queued=2, queued_seconds=5)
    create(client)
    create(client)
    error = error_of(client.post(T, json=body()), 429)
    assert (error["code"], error["type"]) == ("QuotaExceeded", "TooManyRequests")
    clock.advance(5)  # both running now: room again
    create(client)


def test_every_response_has_a_request_id() -> None:
    client, _ = make(api_key="k")
    responses = [client.get(T), client.get("/_sim/config"), client.get("/nowhere")]
    ids = [response.headers.get("x-request-id") for response in responses]
    assert all(ids) and len(set(ids)) == 3
    assert error_of(responses[2], 404)["type"] == "NotFound"


# --- inspection endpoints ------------------------------------------------------------------------


def test_request_log_records_and_clears() -> None:
    client, _ = make()
    client.post(T + "?x=1", json=body(), headers={"X-Probe": "yes"})
    (seen,) = [r for r in client.get("/_sim/requests").json() if r["method"] == "POST"]
    assert seen["path"] == T and seen["query"] == "x=1"
    assert seen["headers"]["x-probe"] == "yes"
    assert seen["body_size"] == len(httpx.Request("POST", "/", json=body()).content)
    assert client.delete("/_sim/requests").status_code == 200
    assert [r["method"] for r in client.get("/_sim/requests").json()] == ["GET"]


def test_request_log_keeps_the_last_1000() -> None:
    client, _ = make()
    for i in range(1005):
        client.get("/_sim/videos/x.mp4", params={"i": i})
    log = client.get("/_sim/requests").json()
    assert len(log) == 1000 and log[0]["query"] == "i=6"


def test_config_patch_validates() -> None:
    client, _ = make()
    patched = client.patch("/_sim/config", json={"queued_seconds": 0.5, "latency_ms": 3})
    assert patched.json()["queued_seconds"] == 0.5 and patched.json()["latency_ms"] == 3
    for bad, param in (
        ({"nope": 1}, "nope"),
        ({"error_rate": 2}, "error_rate"),
        ({"fixed_status": 200}, "fixed_status"),
        ({"latency_ms": "slow"}, "latency_ms"),
    ):
        assert error_of(client.patch("/_sim/config", json=bad), 400)["param"] == param
    assert client.get("/_sim/config").json()["latency_ms"] == 3


# --- callbacks over real sockets -----------------------------------------------------------------


async def wait_for(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def receiver(answers: list[int]) -> tuple[Starlette, list[dict[str, Any]]]:
    """A callback receiver answering with `answers` in turn (then 200), recording the posts."""
    posts: list[dict[str, Any]] = []

    async def hook(request: Request) -> Response:
        posts.append(await request.json())
        return Response(status_code=answers.pop(0) if answers else 200)

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])]), posts


def run_with_servers(
    config: SimulatorConfig,
    answers: list[int],
    scenario: Callable[[httpx.AsyncClient, str, list[dict[str, Any]]], Awaitable[None]],
) -> None:
    async def main() -> None:
        hook_app, posts = receiver(answers)
        sim = await serve(create_app(config))
        hook = await serve(hook_app)
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{sim.port}", trust_env=False
            ) as client:
                await scenario(client, f"http://127.0.0.1:{hook.port}/hook", posts)
        finally:
            await sim.stop()
            await hook.stop()

    asyncio.run(main())


def test_callbacks_post_every_status_change_in_order() -> None:
    async def scenario(client: httpx.AsyncClient, url: str, posts: list[dict[str, Any]]) -> None:
        created = await client.post(T, json=body(callback_url=url))
        task_id = created.json()["id"]
        await wait_for(lambda: len(posts) >= 3)
        assert [post["status"] for post in posts] == ["queued", "running", "succeeded"]
        assert all(post["id"] == task_id for post in posts)
        assert posts[2]["usage"]["total_tokens"] == 1920 * 1088 * 121 // 1024  # 1.0 pro 1080p
        final = (await client.get(f"{T}/{task_id}")).json()
        assert posts[2] == final  # same shape as GET
        log = (await client.get("/_sim/callbacks")).json()
        assert [(e["status"], e["ok"], e["url"]) for e in log] == [
            ("queued", True, url),
            ("running", True, url),
            ("succeeded", True, url),
        ]

    run_with_servers(SimulatorConfig(queued_seconds=0.1, running_seconds=0.1), [], scenario)


def test_callbacks_retry_final_status_and_survive_dead_receivers() -> None:
    config = SimulatorConfig(queued_seconds=0.05, running_seconds=0.05, callback_retry_delay=0.01)

    async def scenario(client: httpx.AsyncClient, url: str, posts: list[dict[str, Any]]) -> None:
        # queued and running are answered 500 (not retried), succeeded 500 twice then 200.
        dead = "http://127.0.0.1:9/hook"  # nothing listens on the discard port
        await client.post(T, json=body(callback_url=dead))
        await client.post(T, json=body(callback_url=url))
        await wait_for(lambda: [p["status"] for p in posts].count("succeeded") == 3)
        assert [post["status"] for post in posts] == ["queued", "running", *["succeeded"] * 3]

        log: list[dict[str, Any]] = []
        deadline = time.monotonic() + 5
        while sum(1 for entry in log if entry["url"] == dead) < 1 + 1 + 4:
            assert time.monotonic() < deadline, log
            await asyncio.sleep(0.02)
            log = (await client.get("/_sim/callbacks")).json()
        to_dead = [(e["status"], e["ok"], e["attempt"]) for e in log if e["url"] == dead]
        assert to_dead == [
            ("queued", False, 1),
            ("running", False, 1),
            *[("succeeded", False, n) for n in (1, 2, 3, 4)],  # 1 try + 3 retries
        ]
        to_hook = [(e["status"], e["ok"]) for e in log if e["url"] == url]
        assert to_hook == [
            ("queued", False),
            ("running", False),
            ("succeeded", False),
            ("succeeded", False),
            ("succeeded", True),
        ]

    run_with_servers(config, [500, 500, 500, 500], scenario)


# --- the command line ----------------------------------------------------------------------------


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_listen("[::1]:8080") == ("::1", 8080)
    with pytest.raises(Exception, match="HOST:PORT"):
        parse_listen("8080")


def test_cli_prints_its_port_and_serves_with_the_key_from_env() -> None:
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "simulator", "--listen", "127.0.0.1:0"),
            *("--api-key-env", "K", "--queued-seconds", "0.5", "--latency-ms", "1"),
        ],
        cwd=ROOT,
        env={"K": "sk-cli", "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = re.fullmatch(r"simulator listening on 127\.0\.0\.1:(\d+)", line)
        assert match, line
        base = f"http://127.0.0.1:{match.group(1)}"
        with httpx.Client(base_url=base, trust_env=False) as client:
            config = client.get("/_sim/config").json()
            assert (config["queued_seconds"], config["latency_ms"]) == (0.5, 1)
            assert client.get(T).status_code == 401
            assert client.get(T, headers={"Authorization": "Bearer sk-cli"}).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def test_prompt_flags_are_text_for_a_family_that_does_not_read_them() -> None:
    client, _ = make()
    model = "dreamina-seedance-2-0-260128"
    response = client.post(
        T, json={"model": model, "content": [{"type": "text", "text": "x --rs 4k --dur five"}]}
    )
    assert response.status_code == 200, response.text
    task = get(client, response.json()["id"])
    assert (task["resolution"], task["duration"]) == ("720p", 5)
