"""parse_create: every validation rule with its `param`, legacy flags, and the effective fields."""

from __future__ import annotations

import json
from typing import Any

import pytest

from proxy.errors import EdgeError
from proxy.seedance import CreateRequest, legacy_flags, parse_create

MODEL = "seedance-1-0-pro-250528"
TEXT = {"type": "text", "text": "a lighthouse at dusk"}
IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
SECRET = "zebra-umbrella-7731"  # stands for the customer's prompt: never in an error


def body(**fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model": MODEL, "content": [TEXT]}
    out.update(fields)
    return out


def parse(value: dict[str, Any]) -> CreateRequest | EdgeError:
    return parse_create(json.dumps(value).encode())


def ok(value: dict[str, Any]) -> CreateRequest:
    result = parse(value)
    assert isinstance(result, CreateRequest), result
    return result


def text(prompt: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": prompt}]


# --- rejected bodies ---------------------------------------------------------------------------


def media(kind: str, url: Any, **extra: Any) -> dict[str, Any]:
    return {"type": kind, kind: {"url": url}, **extra}


IMG, VID, AUD = "image_url", "video_url", "audio_url"
BAD, MISSING = "InvalidParameter", "MissingParameter"
URL0 = "content[0].image_url.url"

CONTENT_ERRORS = [
    ([{"text": "x"}], MISSING, "content[0].type"),
    ([{"type": None}], MISSING, "content[0].type"),
    ([{"type": "sound"}], BAD, "content[0].type"),
    ([{"type": 3}], BAD, "content[0].type"),
    ([{"type": "text"}], MISSING, "content[0].text"),
    ([{"type": "text", "text": 5}], BAD, "content[0].text"),
    ([TEXT, {"type": "text", "text": "again"}], BAD, "content[1]"),
    ([TEXT, {"type": IMG}], MISSING, "content[1].image_url"),
    ([{"type": IMG, IMG: "https://x/a.png"}], BAD, "content[0].image_url"),
    ([{"type": IMG, IMG: {}}], MISSING, URL0),
    ([media(IMG, "")], MISSING, URL0),
    ([media(IMG, 1)], BAD, URL0),
    ([media(IMG, "ftp://x/a.png")], BAD, URL0),
    ([media(IMG, "/tmp/a.png")], BAD, URL0),
    ([media(IMG, "https://")], BAD, URL0),
    ([media(IMG, "data:image/png,AAAA")], BAD, URL0),
    ([media(IMG, "data:video/mp4;base64,AAAA")], BAD, URL0),
    ([{**IMAGE, "role": "reference_video"}], BAD, "content[0].role"),
    ([{**IMAGE, "role": 1}], BAD, "content[0].role"),
    ([media(VID, "https://x/v.mp4", role="first_frame")], BAD, "content[0].role"),
    ([media(VID, "data:image/png;base64,AA")], BAD, "content[0].video_url.url"),
    ([media(AUD, "https://x/a.mp3", role="reference_video")], BAD, "content[0].role"),
    ([{"type": AUD, AUD: {"uri": "https://x/a.mp3"}}], MISSING, "content[0].audio_url.url"),
    ([{"type": "draft_task", "draft_task": {}}], MISSING, "content[0].draft_task.id"),
    ([{"type": "draft_task", "draft_task": {"id": 7}}], BAD, "content[0].draft_task.id"),
    ([{"type": "draft_task", "draft_task": ["cgt-1"]}], BAD, "content[0].draft_task"),
    ([TEXT, IMAGE, 5], BAD, "content[2]"),
    ({"type": "text"}, BAD, "content"),
    ("a prompt", BAD, "content"),
]


@pytest.mark.parametrize(("content", "code", "param"), CONTENT_ERRORS)
def test_content_rules(content: Any, code: str, param: str) -> None:
    result = parse({"model": MODEL, "content": content})
    assert isinstance(result, EdgeError)
    assert (result.status, result.code, result.param) == (400, code, param)


FIELD_ERRORS = [
    ({"model": ""}, "model"),
    ({"model": "   "}, "model"),
    ({"model": ["m"]}, "model"),
    ({"content": []}, "content"),
    ({"resolution": "4k"}, "resolution"),
    ({"resolution": "1080P"}, "resolution"),
    ({"resolution": 720}, "resolution"),
    ({"ratio": "2:1"}, "ratio"),
    ({"ratio": 1.77}, "ratio"),
    ({"duration": 1}, "duration"),
    ({"duration": 13}, "duration"),
    ({"duration": 0}, "duration"),
    ({"duration": -2}, "duration"),
    ({"duration": 5.0}, "duration"),
    ({"duration": "5"}, "duration"),
    ({"duration": True}, "duration"),
    ({"frames": 25}, "frames"),
    ({"frames": 30}, "frames"),
    ({"frames": 293}, "frames"),
    ({"frames": "29"}, "frames"),
    ({"fps": 30}, "fps"),
    ({"fps": "24"}, "fps"),
    ({"seed": -2}, "seed"),
    ({"seed": 2**32}, "seed"),
    ({"seed": "1"}, "seed"),
    ({"service_tier": "priority"}, "service_tier"),
    ({"service_tier": "Flex"}, "service_tier"),
    ({"execution_expires_after": 3599}, "execution_expires_after"),
    ({"execution_expires_after": 259201}, "execution_expires_after"),
    ({"execution_expires_after": "3600"}, "execution_expires_after"),
    ({"camera_fixed": "true"}, "camera_fixed"),
    ({"watermark": 1}, "watermark"),
    ({"generate_audio": "yes"}, "generate_audio"),
    ({"draft": 0}, "draft"),
    ({"return_last_frame": "false"}, "return_last_frame"),
    ({"callback_url": 5}, "callback_url"),
    ({"callback_url": {"url": "https://x"}}, "callback_url"),
    ({"safety_identifier": 5}, "safety_identifier"),
]


@pytest.mark.parametrize(("fields", "param"), FIELD_ERRORS)
def test_field_rules(fields: dict[str, Any], param: str) -> None:
    result = parse(body(**fields))
    assert isinstance(result, EdgeError)
    assert (result.status, result.code, result.param) == (400, "InvalidParameter", param)
    assert json.loads(result.body())["error"]["param"] == param


@pytest.mark.parametrize(
    ("prompt", "param"),
    [
        ("x --resolution 2k", "resolution"),
        ("x --rs 1440p", "resolution"),
        ("x --ratio 5:4", "ratio"),
        ("x --rt wide", "ratio"),
        ("x --duration 20", "duration"),
        ("x --dur five", "duration"),
        ("x --dur 5s", "duration"),
        ("x --dur 1", "duration"),
        ("x --fps 30", "fps"),
        ("x --seed 99999999999", "seed"),
        ("x --seed abc", "seed"),
        ("x --camerafixed yes", "camera_fixed"),
        ("x --cf 1", "camera_fixed"),
        ("x --watermark no", "watermark"),
        ("x --wm maybe", "watermark"),
    ],
)
def test_legacy_flags_are_validated_like_fields(prompt: str, param: str) -> None:
    result = parse(body(content=text(prompt)))
    assert isinstance(result, EdgeError)
    assert (result.code, result.param) == ("InvalidParameter", param)
    assert "prompt" in result.message


def test_missing_model_comes_before_content_checks() -> None:
    result = parse({"content": [{"type": "text"}]})
    assert isinstance(result, EdgeError)
    assert (result.code, result.param) == ("MissingParameter", "model")


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"model": NaN', b"\xff\xfe", b"null", b"5"])
def test_hostile_or_non_object_json_is_a_400(raw: bytes) -> None:
    result = parse_create(raw)
    assert isinstance(result, EdgeError)
    assert (result.status, result.code) == (400, "InvalidParameter")


# --- prompt privacy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        text(f"{SECRET} --rs {SECRET}"),
        text(f"{SECRET} --dur {SECRET}"),
        text(f"{SECRET} --wm {SECRET}"),
        [{"type": "text", "text": SECRET}, {"type": "text", "text": SECRET}],
        [{"type": "text", "text": SECRET}, {"type": SECRET}],
        [{"type": "image_url", "image_url": {"url": SECRET}}],
        [{"type": "image_url", "image_url": {"url": "https://x/a.png"}, "role": SECRET}],
    ],
)
def test_prompt_text_is_never_in_an_error(content: list[dict[str, Any]]) -> None:
    result = parse(body(content=content, ratio=None))
    assert isinstance(result, EdgeError)
    assert SECRET not in result.message and SECRET not in result.body().decode()


def test_the_body_is_kept_out_of_the_repr() -> None:
    assert SECRET not in repr(ok(body(content=text(SECRET))))


# --- accepted bodies ---------------------------------------------------------------------------


def test_defaults_are_left_none() -> None:
    request = ok(body())
    assert request.model == MODEL
    assert (request.resolution, request.ratio, request.duration, request.frames) == (None,) * 4
    assert (request.fps, request.service_tier) == (24, "default")
    assert request.generate_audio is None and request.draft is None
    assert request.callback_url is None and request.execution_expires_after is None
    assert request.seed is None and request.camera_fixed is None and request.watermark is None


def test_null_fields_count_as_absent() -> None:
    request = ok(body(resolution=None, duration=None, service_tier=None, generate_audio=None))
    assert request.resolution is None and request.duration is None
    assert request.service_tier == "default" and request.generate_audio is None
    assert ok(body(content=[TEXT, {**IMAGE, "role": None}])).model == MODEL


def test_every_field_is_read() -> None:
    request = ok(
        body(
            resolution="480p",
            ratio="adaptive",
            duration=-1,
            frames=289,
            fps=24,
            seed=2**32 - 1,
            service_tier="flex",
            execution_expires_after=3600,
            camera_fixed=True,
            watermark=False,
            generate_audio=False,
            draft=True,
            return_last_frame=True,
            callback_url="https://hooks.example.com/done",
            safety_identifier="user-1",
            priority=1,
            some_future_field={"x": 1},
        )
    )
    assert (request.resolution, request.ratio, request.duration, request.frames) == (
        "480p",
        "adaptive",
        -1,
        289,
    )
    assert (request.seed, request.service_tier, request.execution_expires_after) == (
        2**32 - 1,
        "flex",
        3600,
    )
    assert request.camera_fixed is True and request.watermark is False
    assert request.generate_audio is False and request.draft is True
    assert request.return_last_frame is True
    assert request.callback_url == "https://hooks.example.com/done"
    assert request.body["some_future_field"] == {"x": 1}  # unknown fields pass untouched


@pytest.mark.parametrize(
    ("fields", "attr", "value"),
    [
        ({"duration": 2}, "duration", 2),
        ({"duration": 12}, "duration", 12),
        ({"frames": 29}, "frames", 29),
        ({"frames": 121}, "frames", 121),
        ({"seed": -1}, "seed", -1),
        ({"seed": 0}, "seed", 0),
        ({"execution_expires_after": 259200}, "execution_expires_after", 259200),
        ({"ratio": "21:9"}, "ratio", "21:9"),
        ({"callback_url": ""}, "callback_url", ""),
    ],
)
def test_boundaries_are_accepted(fields: dict[str, Any], attr: str, value: Any) -> None:
    assert getattr(ok(body(**fields)), attr) == value


@pytest.mark.parametrize(
    "item",
    [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
        media(IMG, "http://example.com/a.jpg", role="last_frame"),
        {**IMAGE, "role": "first_frame"},
        {**IMAGE, "role": "reference_image"},
        {"type": "image_url", "image_url": {"url": "asset://asset-20250101-abc"}},
        {"type": "video_url", "video_url": {"url": "https://x/v.mp4"}, "role": "reference_video"},
        {"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AAAA"}},
        {"type": "audio_url", "audio_url": {"url": "https://x/a.mp3"}, "role": "reference_audio"},
        {"type": "audio_url", "audio_url": {"url": "data:audio/wav;base64,UklG"}},
        {"type": "draft_task", "draft_task": {"id": "cgt-20251009163014-wfnnx"}},
    ],
)  # fmt: skip
def test_media_items_are_accepted(item: dict[str, Any]) -> None:
    ok(body(content=[TEXT, item]))


def test_content_without_text_and_the_draft_task_id() -> None:
    draft = {"type": "draft_task", "draft_task": {"id": "cgt-1"}}
    assert ok(body(content=[IMAGE])).model == MODEL
    assert ok(body(content=[draft])).draft_task_id == "cgt-1"


# --- legacy flags ------------------------------------------------------------------------------


def test_legacy_flags_are_read() -> None:
    prompt = "a kite --rs 480p --rt 9:16 --dur 7 --fps 24 --seed 42 --cf true --wm FALSE"
    request = ok(body(content=text(prompt)))
    assert (request.resolution, request.ratio, request.duration, request.seed) == (
        "480p",
        "9:16",
        7,
        42,
    )
    assert request.camera_fixed is True and request.watermark is False


def test_long_flag_names_and_case() -> None:
    prompt = "--resolution 1080p --ratio 1:1 --DURATION 3 --camerafixed false --watermark true"
    request = ok(body(content=text(prompt)))
    assert (request.resolution, request.ratio, request.duration) == ("1080p", "1:1", 3)
    assert request.camera_fixed is False and request.watermark is True


def test_top_level_fields_win_over_flags() -> None:
    prompt = "x --rs 480p --rt 9:16 --dur 99 --seed nope --wm maybe"
    request = ok(
        body(
            content=text(prompt),
            resolution="1080p",
            ratio="16:9",
            duration=10,
            seed=3,
            watermark=True,
        )
    )
    assert (request.resolution, request.ratio, request.duration, request.seed) == (
        "1080p",
        "16:9",
        10,
        3,
    )
    assert request.watermark is True


def test_a_null_top_level_field_leaves_the_flag() -> None:
    assert ok(body(content=text("x --rs 480p"), resolution=None)).resolution == "480p"


def test_unknown_flags_and_lookalikes_are_ignored() -> None:
    request = ok(body(content=text("x --style noir --rs=480p a--dur 9 --dur")))
    assert request.resolution is None and request.duration is None
    assert legacy_flags("x --rs 720p --rs 480p --resolution 1080p") == {
        "resolution": ("resolution", "1080p")
    }


def test_flag_duration_auto() -> None:
    assert ok(body(content=text("x --dur -1"))).duration == -1
