"""Seedance create bodies (proxy/seedance/creates.py).

parse_create checks only the body's shape (every rule with its `param`; duplicate keys refused at
any depth; fields the edge does not price pass through untouched). check_family checks a request
against its model family in the shipped catalog: each rule with its `param`, legacy flags named
in the message, retired models refused with 404 naming the replacement."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from proxy.core.seedance.catalog import Catalog
from proxy.errors import EdgeError
from proxy.seedance.creates import CreateRequest, check_family, legacy_flags, parse_create

MODEL = "seedance-1-0-pro-250528"
TEXT = {"type": "text", "text": "a lighthouse at dusk"}
IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
SECRET = "zebra-umbrella-7731"  # stands for the customer's prompt: never in an error
CATALOG = Catalog.load()
NOW = datetime(2026, 11, 29, 12, tzinfo=UTC).timestamp()


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


def media(kind: str, url: Any, **extra: Any) -> dict[str, Any]:
    return {"type": kind, kind: {"url": url}, **extra}


IMG, VID, AUD = "image_url", "video_url", "audio_url"
BAD, MISSING = "InvalidParameter", "MissingParameter"
URL0 = "content[0].image_url.url"

# --- parse_create: rejected shapes --------------------------------------------------------------

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
    ([{**IMAGE, "role": 1}], BAD, "content[0].role"),
    ([{**IMAGE, "role": ["first_frame"]}], BAD, "content[0].role"),
    ([media(VID, "data:image/png;base64,AA")], BAD, "content[0].video_url.url"),
    ([media(AUD, "data:video/mp4;base64,AA")], BAD, "content[0].audio_url.url"),
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


def test_missing_content_is_a_missing_parameter() -> None:
    result = parse({"model": MODEL})
    assert isinstance(result, EdgeError)
    assert (result.status, result.code, result.param) == (400, MISSING, "content")


FIELD_ERRORS = [
    ({"model": ""}, "model"),
    ({"model": "   "}, "model"),
    ({"model": ["m"]}, "model"),
    ({"content": []}, "content"),
    ({"resolution": 720}, "resolution"),
    ({"resolution": ["720p"]}, "resolution"),
    ({"ratio": 1.77}, "ratio"),
    ({"duration": 5.0}, "duration"),
    ({"duration": "5"}, "duration"),
    ({"duration": True}, "duration"),
    ({"frames": "29"}, "frames"),
    ({"frames": 29.0}, "frames"),
    ({"fps": "24"}, "fps"),
    ({"service_tier": 1}, "service_tier"),
    ({"service_tier": True}, "service_tier"),
    ({"generate_audio": "yes"}, "generate_audio"),
    ({"generate_audio": 1}, "generate_audio"),
    ({"draft": 0}, "draft"),
    ({"callback_url": 5}, "callback_url"),
    ({"callback_url": {"url": "https://x"}}, "callback_url"),
]


@pytest.mark.parametrize(("fields", "param"), FIELD_ERRORS)
def test_field_types(fields: dict[str, Any], param: str) -> None:
    result = parse(body(**fields))
    assert isinstance(result, EdgeError)
    assert (result.status, result.code, result.param) == (400, "InvalidParameter", param)
    assert json.loads(result.body())["error"]["param"] == param


@pytest.mark.parametrize(
    ("prompt", "param", "flag"),
    [
        ("x --dur five", "duration", "--dur"),
        ("x --dur 5s", "duration", "--dur"),
        ("x --duration 5.0", "duration", "--duration"),
        ("x --fps abc", "fps", "--fps"),
        ("x --framespersecond 24fps", "fps", "--framespersecond"),
    ],
)
def test_non_integer_flags_are_refused_naming_the_flag(prompt: str, param: str, flag: str) -> None:
    result = parse(body(content=text(prompt)))
    assert isinstance(result, EdgeError)
    assert (result.code, result.param) == ("InvalidParameter", param)
    assert f"`{flag}` flag in the prompt" in result.message


def test_missing_model_comes_before_content_checks() -> None:
    result = parse({"content": [{"type": "text"}]})
    assert isinstance(result, EdgeError)
    assert (result.code, result.param) == ("MissingParameter", "model")


@pytest.mark.parametrize(
    "raw", [b"", b"[" * 100_000, b'{"model": NaN', b"\xff\xfe", b"null", b"5", b'"model"', b"[]"]
)
def test_hostile_or_non_object_json_is_a_400(raw: bytes) -> None:
    result = parse_create(raw)
    assert isinstance(result, EdgeError)
    assert (result.status, result.code) == (400, "InvalidParameter")


# --- duplicate keys ----------------------------------------------------------------------------

CONTENT_JSON = '[{"type": "text", "text": "a kite"}]'


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        ('{"model": "seedance-1-0-pro-250528", "model": "dreamina-seedance-2-5-260628", '
         f'"content": {CONTENT_JSON}}}', "model"),
        (f'{{"model": "m", "model": "m", "content": {CONTENT_JSON}}}', "model"),
        (f'{{"model": "m", "content": {CONTENT_JSON}, "duration": 4, "duration": 15}}', "duration"),
        (f'{{"model": "m", "content": {CONTENT_JSON}, "content": []}}', "content"),
        ('{"model": "m", "content": [{"type": "text", "text": "a", "text": "b"}]}', "text"),
        ('{"model": "m", "content": [{"type": "image_url", "type": "text", "text": "a"}]}', "type"),
        ('{"model": "m", "content": [{"type": "image_url", '
         '"image_url": {"url": "https://x/a.png", "url": "https://x/b.png"}}]}', "url"),
        (f'{{"model": "m", "content": {CONTENT_JSON}, '
         '"tools": [{"type": "web_search", "type": "code"}]}', "type"),
        (f'{{"model": "m", "content": {CONTENT_JSON}, "x": {{"a": {{"b": 1, "b": 2}}}}}}', "b"),
    ],
)  # fmt: skip
def test_duplicate_keys_are_refused_at_any_depth(raw: str, param: str) -> None:
    result = parse_create(raw.encode())
    assert isinstance(result, EdgeError)
    assert (result.status, result.code, result.param) == (400, "InvalidParameter", param)
    assert "more than once" in result.message


def test_the_same_key_in_different_objects_is_fine() -> None:
    raw = (
        '{"model": "m", "content": [{"type": "text", "text": "a"}, '
        '{"type": "image_url", "image_url": {"url": "https://x/a.png"}, "role": "first_frame"}], '
        '"x": {"model": "other", "content": 1}}'
    )
    request = parse_create(raw.encode())
    assert isinstance(request, CreateRequest)
    assert request.model == "m" and request.body["x"] == {"model": "other", "content": 1}


def test_a_duplicate_key_error_does_not_repeat_the_values() -> None:
    raw = (
        f'{{"model": "m", "content": [{{"type": "text", "text": "{SECRET}", "text": "{SECRET}"}}]}}'
    )
    result = parse_create(raw.encode())
    assert isinstance(result, EdgeError)
    assert SECRET not in result.message and SECRET not in result.body().decode()


# --- parse_create: what passes through untouched -----------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"seed": "abc"},
        {"seed": -2},
        {"seed": 2**40},
        {"execution_expires_after": 1},
        {"execution_expires_after": "3600"},
        {"camera_fixed": "true"},
        {"watermark": 1},
        {"return_last_frame": "false"},
        {"safety_identifier": 5},
        {"priority": "high"},
        {"tools": [{"type": "web_search"}]},
        {"optimize_prompt": {"mode": "fast"}},
        {"reasoning_effort": "max"},
        {"human_face_mode": 2, "subdivision_level": "x", "file_format": None},
        {"output_format": "mov", "omni_reference_task_type": "edit"},
        {"a_field_nobody_has_heard_of": {"nested": [1, 2.5, None, True]}},
    ],
)
def test_unpriced_fields_pass_through_untouched(fields: dict[str, Any]) -> None:
    sent = body(model="dreamina-seedance-2-5-260628", **fields)
    request = ok(sent)
    assert request.body == sent
    family = CATALOG.match(request.model)
    assert family is not None and check_family(request, family, NOW) is None


@pytest.mark.parametrize(
    "prompt",
    ["x --seed abc", "x --seed 99999999999", "x --cf yes", "x --wm maybe", "x --camerafixed 1"],
)
def test_flags_of_unchecked_fields_are_left_in_the_prompt(prompt: str) -> None:
    request = ok(body(content=text(prompt)))
    assert request.body["content"] == text(prompt) and request.flags == {}
    assert check_family(request, CATALOG.families["seedance-1-0-pro"], NOW) is None


# --- prompt privacy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        text(f"{SECRET} --dur {SECRET}"),
        text(f"{SECRET} --fps {SECRET}"),
        [{"type": "text", "text": SECRET}, {"type": "text", "text": SECRET}],
        [{"type": "text", "text": SECRET}, {"type": SECRET}],
        [{"type": "image_url", "image_url": {"url": SECRET}}],
        [{"type": "text", "text": SECRET, "role": 5}],
    ],
)
def test_prompt_text_is_never_in_a_parse_error(content: list[dict[str, Any]]) -> None:
    result = parse(body(content=content))
    assert isinstance(result, EdgeError)
    assert SECRET not in result.message and SECRET not in result.body().decode()


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (MODEL, {"content": text(f"{SECRET} --rs {SECRET}")}),
        (MODEL, {"content": text(f"{SECRET} --rt {SECRET}")}),
        (MODEL, {"content": text(f"{SECRET} --dur 99")}),
        (MODEL, {"content": text(f"{SECRET} --fps 30")}),
        (MODEL, {"content": text(SECRET), "resolution": SECRET}),
        (MODEL, {"content": text(SECRET), "ratio": SECRET}),
        (MODEL, {"content": text(SECRET), "service_tier": SECRET}),
        (MODEL, {"content": [{"type": "text", "text": SECRET, "role": SECRET}]}),
        (MODEL, {"content": [*text(SECRET), {**IMAGE, "role": SECRET}]}),
        (MODEL, {"content": [*text(SECRET), media(VID, "https://x/v.mp4")]}),
        ("seedance-1-5-pro-251215", {"content": text(SECRET)}),
    ],
)
def test_prompt_text_is_never_in_a_family_error(model: str, fields: dict[str, Any]) -> None:
    error = refused(model, **fields)
    assert SECRET not in error.message and SECRET not in error.body().decode()


def test_the_body_is_kept_out_of_the_repr() -> None:
    assert SECRET not in repr(ok(body(content=text(SECRET))))


# --- parse_create: accepted bodies ---------------------------------------------------------------


def test_defaults_are_left_none() -> None:
    request = ok(body())
    assert request.model == MODEL
    assert (request.resolution, request.ratio, request.duration, request.frames) == (None,) * 4
    assert (request.fps, request.service_tier) == (None, "default")
    assert request.generate_audio is None and request.draft is None
    assert request.callback_url is None and request.draft_task_id is None
    assert request.items == (("text", None),) and request.reference_videos == 0
    assert request.flags == {}


def test_null_fields_count_as_absent() -> None:
    request = ok(body(resolution=None, duration=None, service_tier=None, generate_audio=None))
    assert request.resolution is None and request.duration is None
    assert request.service_tier == "default" and request.generate_audio is None
    assert ok(body(content=[TEXT, {**IMAGE, "role": None}])).items == (
        ("text", None),
        ("image_url", None),
    )


def test_the_model_is_stripped() -> None:
    assert ok(body(model="  dreamina-seedance-2-0-260128 ")).model == "dreamina-seedance-2-0-260128"


def test_every_checked_field_is_read() -> None:
    request = ok(
        body(
            resolution="480p",
            ratio="adaptive",
            duration=-1,
            frames=289,
            fps=24,
            service_tier="flex",
            generate_audio=False,
            draft=True,
            callback_url="https://hooks.example.com/done",
        )
    )
    assert (request.resolution, request.ratio, request.duration, request.frames) == (
        "480p",
        "adaptive",
        -1,
        289,
    )
    assert (request.fps, request.service_tier) == (24, "flex")
    assert request.generate_audio is False and request.draft is True
    assert request.callback_url == "https://hooks.example.com/done"


def test_items_and_reference_videos() -> None:
    video = media(VID, "https://x/v.mp4", role="reference_video")
    audio = media(AUD, "https://x/a.mp3", role="reference_audio")
    request = ok(body(content=[TEXT, {**IMAGE, "role": "first_frame"}, video, video, audio]))
    assert request.items == (
        ("text", None),
        ("image_url", "first_frame"),
        ("video_url", "reference_video"),
        ("video_url", "reference_video"),
        ("audio_url", "reference_audio"),
    )
    assert request.reference_videos == 2


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
        {"type": "video_url", "video_url": {"url": "asset://asset-20250101-vid"}},
        {"type": "audio_url", "audio_url": {"url": "https://x/a.mp3"}, "role": "reference_audio"},
        {"type": "audio_url", "audio_url": {"url": "data:audio/wav;base64,UklG"}},
        {"type": "draft_task", "draft_task": {"id": "cgt-20251009163014-wfnnx"}},
    ],
)  # fmt: skip
def test_media_items_are_well_formed(item: dict[str, Any]) -> None:
    ok(body(content=[TEXT, item]))


def test_content_without_text_and_the_draft_task_id() -> None:
    draft = {"type": "draft_task", "draft_task": {"id": "cgt-1"}}
    assert ok(body(content=[IMAGE])).model == MODEL
    assert ok(body(content=[draft])).draft_task_id == "cgt-1"


# --- legacy flags ------------------------------------------------------------------------------


def test_legacy_flags_are_read() -> None:
    request = ok(body(content=text("a kite --rs 480p --rt 9:16 --dur 7 --fps 24 --seed 42")))
    assert (request.resolution, request.ratio, request.duration, request.fps) == (
        "480p",
        "9:16",
        7,
        24,
    )
    assert request.flags == {"resolution": "rs", "ratio": "rt", "duration": "dur", "fps": "fps"}


def test_long_flag_names_and_case() -> None:
    prompt = "--resolution 1080p --RATIO 1:1 --DURATION 3 --FramesPerSecond 24"
    request = ok(body(content=text(prompt)))
    assert (request.resolution, request.ratio, request.duration, request.fps) == (
        "1080p",
        "1:1",
        3,
        24,
    )
    assert request.flags == {
        "resolution": "resolution",
        "ratio": "ratio",
        "duration": "duration",
        "fps": "framespersecond",
    }


def test_top_level_fields_win_over_flags() -> None:
    prompt = "x --rs 4k --rt 9:16 --dur 99 --fps nope"
    request = ok(body(content=text(prompt), resolution="1080p", ratio="16:9", duration=10, fps=24))
    assert (request.resolution, request.ratio, request.duration, request.fps) == (
        "1080p",
        "16:9",
        10,
        24,
    )
    assert request.flags == {}
    assert check_family(request, CATALOG.families["seedance-1-0-pro"], NOW) is None


def test_a_null_top_level_field_leaves_the_flag() -> None:
    request = ok(body(content=text("x --rs 480p"), resolution=None))
    assert (request.resolution, request.flags) == ("480p", {"resolution": "rs"})


def test_unknown_flags_and_lookalikes_are_ignored() -> None:
    request = ok(body(content=text("x --style noir --rs=480p a--dur 9 --dur")))
    assert request.resolution is None and request.duration is None
    assert legacy_flags("x --rs 720p --rs 480p --resolution 1080p") == {
        "resolution": ("resolution", "1080p")
    }


def test_flag_duration_auto() -> None:
    request = ok(body(model="dreamina-seedance-2-0-260128", content=text("x --dur -1")))
    assert request.duration == -1
    assert check_family(request, CATALOG.families["seedance-2-0"], NOW) is None


# --- check_family: the request against its family ----------------------------------------------

PRO_FAST = "seedance-1-0-pro-fast-251015"
ONE_FIVE = "seedance-1-5-pro-251215"
TWO = "dreamina-seedance-2-0-260128"
TWO_FAST = "dreamina-seedance-2-0-fast-260128"
TWO_MINI = "dreamina-seedance-2-0-mini-260615"
TWO_FIVE = "dreamina-seedance-2-5-260628"
VIDEO = media(VID, "https://x/v.mp4", role="reference_video")
AUDIO = media(AUD, "https://x/a.mp3", role="reference_audio")
DRAFT = {"type": "draft_task", "draft_task": {"id": "cgt-1"}}


def checked(model: str, now: float = NOW, **fields: Any) -> EdgeError | None:
    request = ok(body(model=model, **fields))
    family = CATALOG.match(model)
    assert family is not None, model
    return check_family(request, family, now)


def refused(model: str, now: float = NOW, **fields: Any) -> EdgeError:
    error = checked(model, now, **fields)
    assert isinstance(error, EdgeError), fields
    return error


ACCEPTED = [
    (MODEL, {}),
    (MODEL, {"resolution": "480p", "ratio": "21:9", "duration": 2}),
    (MODEL, {"duration": 12, "ratio": "adaptive"}),
    (MODEL, {"frames": 29}),
    (MODEL, {"frames": 121}),
    (MODEL, {"frames": 289}),
    (MODEL, {"service_tier": "flex"}),
    (MODEL, {"fps": 24}),
    (MODEL, {"generate_audio": False}),
    (MODEL, {"draft": False}),
    (MODEL, {"content": [TEXT, {**IMAGE, "role": "first_frame"}, {**IMAGE, "role": "last_frame"}]}),
    (MODEL, {"content": [TEXT, IMAGE]}),  # no role: the upstream picks
    (PRO_FAST, {"resolution": "1080p", "service_tier": "flex"}),
    (TWO, {"duration": 15}),
    (TWO, {"duration": 4}),
    (TWO, {"duration": -1}),
    (TWO, {"resolution": "4k"}),
    (TWO, {"resolution": "4k", "ratio": "21:9", "duration": 15}),
    (TWO, {"generate_audio": True}),
    (TWO, {"content": [TEXT, {**IMAGE, "role": "reference_image"}, VIDEO, VIDEO, VIDEO, AUDIO]}),
    (TWO_FAST, {"resolution": "720p", "duration": 15}),
    (TWO_MINI, {"resolution": "480p", "ratio": "9:16"}),
    (TWO_FIVE, {"duration": 30}),
    (TWO_FIVE, {"duration": -1, "resolution": "1080p"}),
    (TWO_FIVE, {"draft": True, "resolution": "480p"}),
    (TWO_FIVE, {"content": [TEXT, *[VIDEO] * 10]}),
    (TWO_FIVE, {"content": [DRAFT]}),
]  # fmt: skip


@pytest.mark.parametrize(("model", "fields"), ACCEPTED)
def test_what_a_family_accepts(model: str, fields: dict[str, Any]) -> None:
    assert checked(model, **fields) is None


REFUSED = [
    # resolution
    (MODEL, {"resolution": "4k"}, "resolution"),
    (MODEL, {"resolution": "1080P"}, "resolution"),
    (TWO_FAST, {"resolution": "1080p"}, "resolution"),
    (TWO_MINI, {"resolution": "4k"}, "resolution"),
    (TWO_FIVE, {"resolution": "4k"}, "resolution"),
    # ratio
    (MODEL, {"ratio": "2:1"}, "ratio"),
    (TWO, {"ratio": "16:10"}, "ratio"),
    # duration (1.0: no auto)
    (MODEL, {"duration": 1}, "duration"),
    (MODEL, {"duration": 13}, "duration"),
    (MODEL, {"duration": 0}, "duration"),
    (MODEL, {"duration": -1}, "duration"),
    (TWO, {"duration": 16}, "duration"),
    (TWO, {"duration": 3}, "duration"),
    (TWO, {"duration": -2}, "duration"),
    (TWO_FAST, {"duration": 30}, "duration"),
    (TWO_FIVE, {"duration": 31}, "duration"),
    # frames: 1.0 only, 29+4n up to 289
    (MODEL, {"frames": 25}, "frames"),
    (MODEL, {"frames": 30}, "frames"),
    (MODEL, {"frames": 293}, "frames"),
    (TWO, {"frames": 121}, "frames"),
    (TWO_FIVE, {"frames": 29}, "frames"),
    # fps
    (MODEL, {"fps": 30}, "fps"),
    (TWO, {"fps": 25}, "fps"),
    # service tier
    (TWO, {"service_tier": "flex"}, "service_tier"),
    (TWO_FIVE, {"service_tier": "flex"}, "service_tier"),
    (MODEL, {"service_tier": "priority"}, "service_tier"),
    (MODEL, {"service_tier": "Flex"}, "service_tier"),
    # audio and drafts
    (MODEL, {"generate_audio": True}, "generate_audio"),
    (PRO_FAST, {"generate_audio": True}, "generate_audio"),
    (MODEL, {"draft": True}, "draft"),
    (TWO, {"draft": True}, "draft"),
    # content types per family
    (MODEL, {"content": [TEXT, VIDEO]}, "content[1].type"),
    (MODEL, {"content": [TEXT, AUDIO]}, "content[1].type"),
    (MODEL, {"content": [DRAFT]}, "content[0].type"),
    (TWO, {"content": [DRAFT]}, "content[0].type"),
    # roles per family and type
    (MODEL, {"content": [TEXT, {**IMAGE, "role": "reference_image"}]}, "content[1].role"),
    (PRO_FAST, {"content": [TEXT, {**IMAGE, "role": "last_frame"}]}, "content[1].role"),
    (TWO, {"content": [TEXT, {**IMAGE, "role": "reference_video"}]}, "content[1].role"),
    (TWO, {"content": [TEXT, {**VIDEO, "role": "first_frame"}]}, "content[1].role"),
    (TWO, {"content": [TEXT, {**AUDIO, "role": "reference_video"}]}, "content[1].role"),
    (TWO, {"content": [{**TEXT, "role": "first_frame"}]}, "content[0].role"),
    (TWO_FIVE, {"content": [{**DRAFT, "role": "x"}]}, "content[0].role"),
    # reference videos
    (TWO, {"content": [TEXT, *[VIDEO] * 4]}, "content"),
    (TWO_FIVE, {"content": [TEXT, *[VIDEO] * 11]}, "content"),
]  # fmt: skip


@pytest.mark.parametrize(("model", "fields", "param"), REFUSED)
def test_what_a_family_refuses_with_its_param(
    model: str, fields: dict[str, Any], param: str
) -> None:
    error = refused(model, **fields)
    assert (error.status, error.code, error.param) == (400, "InvalidParameter", param)
    assert json.loads(error.body())["error"]["param"] == param
    assert error.message


def test_messages_name_the_family_and_what_it_takes() -> None:
    assert "480p, 720p" in refused(TWO_FAST, resolution="1080p").message
    assert "seedance-2-0-fast" in refused(TWO_FAST, resolution="1080p").message
    sixteen = refused(TWO, duration=16).message
    assert "4–15 seconds" in sixteen and "-1 (auto)" in sixteen
    assert "auto" not in refused(MODEL, duration=-1).message  # 1.0 has no auto
    assert "flex" not in refused(TWO, service_tier="flex").message.split("must be one of")[1]
    assert "at most 3 reference videos" in refused(TWO, content=[TEXT, *[VIDEO] * 4]).message
    assert "takes no role" in refused(TWO, content=[{**TEXT, "role": "first_frame"}]).message


def test_frames_win_over_duration() -> None:
    assert checked(MODEL, frames=29, duration=99) is None
    assert refused(MODEL, frames=30, duration=5).param == "frames"


@pytest.mark.parametrize(
    ("model", "prompt", "param", "flag"),
    [
        (MODEL, "x --resolution 2k", "resolution", "--resolution"),
        (MODEL, "x --rs 1440p", "resolution", "--rs"),
        (MODEL, "x --rs 4k", "resolution", "--rs"),
        (MODEL, "x --ratio 5:4", "ratio", "--ratio"),
        (MODEL, "x --rt wide", "ratio", "--rt"),
        (MODEL, "x --duration 20", "duration", "--duration"),
        (MODEL, "x --dur 1", "duration", "--dur"),
        (MODEL, "x --dur -1", "duration", "--dur"),
        (TWO, "x --dur 16", "duration", "--dur"),
        (MODEL, "x --fps 30", "fps", "--fps"),
        (TWO_FAST, "x --RS 1080p", "resolution", "--rs"),
    ],
)
def test_legacy_flag_messages_name_the_flag(model: str, prompt: str, param: str, flag: str) -> None:
    error = refused(model, content=text(prompt))
    assert (error.code, error.param) == ("InvalidParameter", param)
    assert f"The `{flag}` flag in the prompt" in error.message


def test_a_top_level_field_is_named_as_the_field() -> None:
    assert refused(MODEL, resolution="4k").message.startswith("`resolution` must be")
    assert refused(MODEL, duration=13).message.startswith("`duration` must be")


# --- retired models ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "date", "replacement"),
    [
        (ONE_FIVE, "2026-09-21", "dreamina-seedance-2-0-mini-260615"),
        ("doubao-seedance-1-5-pro-251215", "2026-09-21", "dreamina-seedance-2-0-mini-260615"),
        ("seedance-1-0-lite-t2v-250428", "2026-05-13", "seedance-1-0-pro-fast-251015"),
        ("seedance-1-0-lite-i2v-250428", "2026-05-13", "seedance-1-0-pro-fast-251015"),
    ],
)
def test_a_retired_model_is_404_naming_the_replacement(
    model: str, date: str, replacement: str
) -> None:
    error = refused(model)
    assert (error.status, error.code) == (404, "InvalidEndpointOrModel.NotFound")
    assert f"`{model}`" in error.message
    assert date in error.message and f"`{replacement}`" in error.message
    assert json.loads(error.body())["error"]["type"] == "NotFound"


def test_retirement_comes_before_every_other_check() -> None:
    error = refused(ONE_FIVE, resolution="4k", duration=99, service_tier="gold")
    assert error.status == 404


def test_a_model_serves_until_its_retirement_date() -> None:
    before = datetime(2026, 9, 20, 23, 59, 59, tzinfo=UTC).timestamp()
    at = datetime(2026, 9, 21, tzinfo=UTC).timestamp()
    assert checked(ONE_FIVE, before, duration=-1, generate_audio=False) is None
    assert refused(ONE_FIVE, before, duration=13).param == "duration"  # checked as active
    assert refused(ONE_FIVE, at).status == 404


def test_a_retired_model_without_date_or_replacement() -> None:
    wire = CATALOG.to_wire()
    spec = dict(wire["families"]["seedance-2-0-mini"])
    spec |= {"status": "retired"}
    catalog = Catalog.from_wire(wire | {"families": {"seedance-2-0-mini": spec}})
    request = ok(body(model=TWO_MINI))
    error = check_family(request, catalog.families["seedance-2-0-mini"], 0)
    assert isinstance(error, EdgeError) and error.status == 404
    assert error.message == f"The model `{TWO_MINI}` was retired."


# --- flags only where the family reads them; empty strings are values ---------------------------


def test_flags_are_prompt_text_for_a_family_that_does_not_read_them() -> None:
    raw = json.dumps(
        {"model": "dreamina-seedance-2-0-260128", "content": text("a city --rs 4k --dur five")}
    ).encode()
    request = parse_create(raw, lambda model: False)
    assert isinstance(request, CreateRequest)
    assert (request.resolution, request.duration, request.flags) == (None, None, {})
    family = CATALOG.match(request.model)
    assert family is not None and check_family(request, family, NOW) is None


@pytest.mark.parametrize("field", ["resolution", "service_tier"])
def test_an_empty_string_is_a_value_not_the_default(field: str) -> None:
    request = ok(body(**{field: ""}))
    family = CATALOG.match(MODEL)
    assert family is not None
    refused = check_family(request, family, NOW)
    assert isinstance(refused, EdgeError) and refused.param == field
