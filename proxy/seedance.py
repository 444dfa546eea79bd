"""Parsing of Seedance create bodies: refuse malformed input before anything is relayed (400 with a
precise `param`, like the upstream) and know the effective generation parameters the price
estimate needs. The body itself is forwarded untouched.

Legacy `--flags` in the prompt text (`--rs 720p --dur 5 …`) count like the top-level fields;
a top-level field wins over its flag (an overridden flag is not looked at). A `null` field counts
as absent, and unknown top-level fields are allowed (forward compatibility). Error messages never
repeat the prompt, nor any other value taken from the body."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any

from proxy.errors import EdgeError, invalid_parameter, missing_parameter

RESOLUTIONS = ("480p", "720p", "1080p")
RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive")
SERVICE_TIERS = ("default", "flex")
FPS = 24
AUTO_DURATION = -1
MIN_DURATION, MAX_DURATION = 2, 12
MIN_FRAMES, MAX_FRAMES = 29, 289
MIN_SEED, MAX_SEED = -1, 2**32 - 1
MIN_EXPIRES, MAX_EXPIRES = 3600, 259200
BOOLEAN_FIELDS = ("camera_fixed", "watermark", "generate_audio", "draft", "return_last_frame")

# content item type -> (key holding the payload, roles allowed on the item)
ITEM_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "text": ("text", ()),
    "image_url": ("image_url", ("first_frame", "last_frame", "reference_image")),
    "video_url": ("video_url", ("reference_video",)),
    "audio_url": ("audio_url", ("reference_audio",)),
    "draft_task": ("draft_task", ()),
}
_MEDIA = {"image_url": "image", "video_url": "video", "audio_url": "audio"}

# Legacy flags: `--name value`, the name case-insensitive; unknown names are left alone.
_FLAG_RE = re.compile(r"(?:^|\s)--([A-Za-z]+)\s+(\S+)")
FLAG_NAMES = {
    "resolution": "resolution",
    "rs": "resolution",
    "ratio": "ratio",
    "rt": "ratio",
    "duration": "duration",
    "dur": "duration",
    "fps": "fps",
    "framespersecond": "fps",
    "seed": "seed",
    "camerafixed": "camera_fixed",
    "cf": "camera_fixed",
    "watermark": "watermark",
    "wm": "watermark",
}
_INT_RE = re.compile(r"-?[0-9]+")
_URL_RE = re.compile(r"(?:https?|asset)://[^\s/]")


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """A valid create body and its effective parameters (None: not given, the upstream's default
    applies). `duration` -1 is "auto" (1.5 pro); `frames`, when given, wins over `duration`."""

    model: str
    body: dict[str, Any] = dataclasses.field(repr=False)  # holds the prompt: kept out of logs
    resolution: str | None = None
    ratio: str | None = None
    duration: int | None = None
    frames: int | None = None
    fps: int = FPS
    service_tier: str = "default"
    generate_audio: bool | None = None
    draft: bool | None = None
    callback_url: str | None = None
    execution_expires_after: int | None = None
    seed: int | None = None
    camera_fixed: bool | None = None
    watermark: bool | None = None
    return_last_frame: bool | None = None
    draft_task_id: str | None = None


class _Invalid(Exception):
    def __init__(self, error: EdgeError) -> None:
        super().__init__(error.message)
        self.error = error


def _bad(param: str, message: str) -> _Invalid:
    return _Invalid(invalid_parameter(message, param))


def _missing(param: str) -> _Invalid:
    return _Invalid(missing_parameter(param))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- content -----------------------------------------------------------------------------------


def _check_url(url: str, kind: str, param: str) -> None:
    if _URL_RE.match(url):
        return  # http(s), or asset:// (an item of the upstream's asset library)
    media = _MEDIA[kind]
    if re.match(rf"data:{media}/[A-Za-z0-9.+-]+;base64,", url):
        return
    raise _bad(
        param, f"`{param}` must be an http(s) URL, an asset:// id or a data:{media}/…;base64, URL."
    )


def _check_content(content: Any) -> tuple[str | None, str | None]:
    """The text of the (single) text item and the draft task id, after checking every item."""
    if content is None:
        raise _missing("content")
    if not isinstance(content, list) or not content:
        raise _bad("content", "`content` must be a non-empty list.")
    text: str | None = None
    text_index: int | None = None
    draft_task_id: str | None = None
    for index, item in enumerate(content):
        where = f"content[{index}]"
        if not isinstance(item, dict):
            raise _bad(where, f"`{where}` must be an object with a `type`.")
        kind = item.get("type")
        if kind is None:
            raise _missing(f"{where}.type")
        if kind not in ITEM_TYPES:
            raise _bad(f"{where}.type", f"`{where}.type` must be one of {', '.join(ITEM_TYPES)}.")
        key, roles = ITEM_TYPES[kind]
        payload = item.get(key)
        if kind == "text":
            if payload is None:
                raise _missing(f"{where}.text")
            if not isinstance(payload, str):
                raise _bad(f"{where}.text", f"`{where}.text` must be a string.")
            if text_index is not None:
                raise _bad(where, f"At most one text item is allowed (`{where}` is another).")
            text, text_index = payload, index
            continue
        field = "id" if kind == "draft_task" else "url"
        if payload is None:
            raise _missing(f"{where}.{key}")
        if not isinstance(payload, dict):
            raise _bad(f"{where}.{key}", f"`{where}.{key}` must be an object.")
        param = f"{where}.{key}.{field}"
        value = payload.get(field)
        if value is None or value == "":
            raise _missing(param)
        if not isinstance(value, str):
            raise _bad(param, f"`{param}` must be a string.")
        if kind == "draft_task":
            draft_task_id = value
            continue
        _check_url(value, kind, param)
        role = item.get("role")
        if role is not None and role not in roles:
            raise _bad(f"{where}.role", f"`{where}.role` must be one of {', '.join(roles)}.")
    return text, draft_task_id


def legacy_flags(text: str) -> dict[str, tuple[str, str]]:
    """Known `--flag value` pairs of a prompt: field -> (flag name as written, raw value); the
    last occurrence of a field wins."""
    found: dict[str, tuple[str, str]] = {}
    for name, raw in _FLAG_RE.findall(text):
        field = FLAG_NAMES.get(name.lower())
        if field is not None:
            found[field] = (name.lower(), raw)
    return found


def _flag_value(field: str, flag: str, raw: str) -> Any:
    """A flag's raw text as the JSON value the top-level field would hold (then checked alike)."""
    if field in ("duration", "fps", "seed"):
        if not _INT_RE.fullmatch(raw):
            raise _bad(field, f"The `--{flag}` flag in the prompt must be an integer.")
        return int(raw)
    if field in ("camera_fixed", "watermark"):
        if raw.lower() not in ("true", "false"):
            raise _bad(field, f"The `--{flag}` flag in the prompt must be true or false.")
        return raw.lower() == "true"
    return raw


# --- fields ------------------------------------------------------------------------------------


def _source(field: str, flags: dict[str, tuple[str, str]]) -> str:
    return f"The `--{flags[field][0]}` flag in the prompt" if field in flags else f"`{field}`"


def _choice(fields: dict[str, Any], name: str, allowed: tuple[str, ...], src: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or value not in allowed:
        raise _bad(name, f"{src} must be one of {', '.join(allowed)}.")
    return value


def _integer(fields: dict[str, Any], name: str, src: str) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    if not _is_int(value):
        raise _bad(name, f"{src} must be an integer.")
    return value


def _fields(body: dict[str, Any], text: str | None) -> dict[str, Any]:
    given = {key: value for key, value in body.items() if value is not None}
    flags = legacy_flags(text) if text else {}
    flags = {field: flag for field, flag in flags.items() if field not in given}
    values = {field: _flag_value(field, *flag) for field, flag in flags.items()}

    def src(name: str) -> str:
        return _source(name, flags)

    out: dict[str, Any] = {}
    merged = given | values
    out["resolution"] = _choice(merged, "resolution", RESOLUTIONS, src("resolution"))
    out["ratio"] = _choice(merged, "ratio", RATIOS, src("ratio"))
    tier = _choice(merged, "service_tier", SERVICE_TIERS, "`service_tier`")
    out["service_tier"] = tier or "default"

    duration = _integer(merged, "duration", src("duration"))
    if duration is not None and duration != AUTO_DURATION:
        if not MIN_DURATION <= duration <= MAX_DURATION:
            raise _bad(
                "duration",
                f"{src('duration')} must be {MIN_DURATION}–{MAX_DURATION} seconds, "
                f"or {AUTO_DURATION} (auto).",
            )
    out["duration"] = duration
    frames = _integer(merged, "frames", "`frames`")
    if frames is not None and (not MIN_FRAMES <= frames <= MAX_FRAMES or (frames - 25) % 4 != 0):
        raise _bad("frames", f"`frames` must be 25+4n between {MIN_FRAMES} and {MAX_FRAMES}.")
    out["frames"] = frames
    fps = _integer(merged, "fps", src("fps"))
    if fps is not None and fps != FPS:
        raise _bad("fps", f"{src('fps')} must be {FPS}: no other frame rate is supported.")
    seed = _integer(merged, "seed", src("seed"))
    if seed is not None and not MIN_SEED <= seed <= MAX_SEED:
        raise _bad("seed", f"{src('seed')} must be between {MIN_SEED} and {MAX_SEED}.")
    out["seed"] = seed
    expires = _integer(merged, "execution_expires_after", "`execution_expires_after`")
    if expires is not None and not MIN_EXPIRES <= expires <= MAX_EXPIRES:
        raise _bad(
            "execution_expires_after",
            f"`execution_expires_after` must be {MIN_EXPIRES}–{MAX_EXPIRES} seconds.",
        )
    out["execution_expires_after"] = expires
    for name in BOOLEAN_FIELDS:
        value = merged.get(name)
        if value is not None and not isinstance(value, bool):
            raise _bad(name, f"{src(name)} must be a boolean.")
        out[name] = value
    for name in ("callback_url", "safety_identifier"):
        if name in merged and not isinstance(merged[name], str):
            raise _bad(name, f"`{name}` must be a string.")
    out["callback_url"] = merged.get("callback_url")
    return out


def parse_create(raw: bytes) -> CreateRequest | EdgeError:
    """The create body checked like the upstream does: a CreateRequest, or the 400 to answer."""
    if not raw:
        return invalid_parameter("The request body must be a JSON object.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return invalid_parameter("The request body is not valid JSON.")
    if not isinstance(body, dict):
        return invalid_parameter("The request body must be a JSON object.")
    model = body.get("model")
    if model is None:
        return missing_parameter("model")
    if not isinstance(model, str) or not model.strip():
        return invalid_parameter("`model` must be a non-empty string.", "model")
    try:
        text, draft_task_id = _check_content(body.get("content"))
        fields = _fields(body, text)
    except _Invalid as exc:
        return exc.error
    return CreateRequest(
        model=model.strip(), body=body, fps=FPS, draft_task_id=draft_task_id, **fields
    )
