"""Seedance create bodies: refuse malformed input before anything is relayed (400 with a precise
`param`, like the upstream), then check the request against its model family in the catalog.

The edge validates only what the catalog describes and what pricing needs (model, resolution,
ratio, duration or frames, frame rate, tier, audio, draft, content types and roles); every other
field is the upstream's business and is relayed exactly as sent, so tomorrow's parameter works
without a release. A body with a duplicate key is refused: the upstream must run what was priced,
whichever JSON parser it uses.

Legacy `--flags` in the prompt text (`--rs 720p --dur 5 …`) count like the top-level fields; a
top-level field wins over its flag (an overridden flag is not looked at). A `null` field counts
as absent. Error messages never repeat the prompt, nor any other value taken from the body."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from proxy.core.seedance.catalog import CONTENT_TYPES, ModelFamily
from proxy.core.seedance.modelfamily import AUTO_DURATION
from proxy.core.seedance.prompt_flags import prompt_flags
from proxy.errors import EdgeError, invalid_parameter, missing_parameter, model_not_found

# content item type -> the key holding its payload, and that payload's identifying field
_PAYLOAD_FIELD = {"image_url": "url", "video_url": "url", "audio_url": "url", "draft_task": "id"}
_MEDIA = {"image_url": "image", "video_url": "video", "audio_url": "audio"}

# Legacy flags of the fields the edge checks (it leaves seed, camera_fixed, watermark alone).
FLAG_FIELDS = ("resolution", "ratio", "duration", "fps")
_INT_RE = re.compile(r"-?[0-9]+")
_URL_RE = re.compile(r"(?:https?|asset)://[^\s/]")


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """A well-formed create body and the parameters it sets (None: not given, the family's
    default applies). `duration` -1 is "auto"; `frames`, when given, wins over `duration`."""

    model: str
    body: dict[str, Any] = dataclasses.field(repr=False)  # holds the prompt: kept out of logs
    resolution: str | None = None
    ratio: str | None = None
    duration: int | None = None
    frames: int | None = None
    fps: int | None = None
    service_tier: str = "default"
    generate_audio: bool | None = None
    draft: bool | None = None
    callback_url: str | None = None
    items: tuple[tuple[str, str | None], ...] = ()  # (type, role) of each content item
    draft_task_id: str | None = None
    flags: dict[str, str] = dataclasses.field(default_factory=dict)  # field -> flag as written

    @property
    def reference_videos(self) -> int:
        return sum(1 for kind, _ in self.items if kind == "video_url")

    def source(self, field: str) -> str:
        """How the message names a field: its legacy flag when the value came from the prompt."""
        flag = self.flags.get(field)
        return f"The `--{flag}` flag in the prompt" if flag else f"`{field}`"


class _Invalid(Exception):
    def __init__(self, error: EdgeError) -> None:
        super().__init__(error.message)
        self.error = error


def _bad(param: str, message: str) -> _Invalid:
    return _Invalid(invalid_parameter(message, param))


def _missing(param: str) -> _Invalid:
    return _Invalid(missing_parameter(param))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise _bad(duplicate, f"The key `{duplicate}` appears more than once in an object.")
    return obj


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


def _check_content(
    content: Any,
) -> tuple[str | None, tuple[tuple[str, str | None], ...], str | None]:
    """The text of the (single) text item, each item's (type, role) and the draft task id."""
    if content is None:
        raise _missing("content")
    if not isinstance(content, list) or not content:
        raise _bad("content", "`content` must be a non-empty list.")
    text: str | None = None
    text_index: int | None = None
    draft_task_id: str | None = None
    items: list[tuple[str, str | None]] = []
    for index, item in enumerate(content):
        where = f"content[{index}]"
        if not isinstance(item, dict):
            raise _bad(where, f"`{where}` must be an object with a `type`.")
        kind = item.get("type")
        if kind is None:
            raise _missing(f"{where}.type")
        if kind not in CONTENT_TYPES:
            raise _bad(
                f"{where}.type", f"`{where}.type` must be one of {', '.join(CONTENT_TYPES)}."
            )
        role = item.get("role")
        if role is not None and not isinstance(role, str):
            raise _bad(f"{where}.role", f"`{where}.role` must be a string.")
        items.append((kind, role))
        payload = item.get(kind)
        if kind == "text":
            if payload is None:
                raise _missing(f"{where}.text")
            if not isinstance(payload, str):
                raise _bad(f"{where}.text", f"`{where}.text` must be a string.")
            if text_index is not None:
                raise _bad(where, f"At most one text item is allowed (`{where}` is another).")
            text, text_index = payload, index
            continue
        field = _PAYLOAD_FIELD[kind]
        if payload is None:
            raise _missing(f"{where}.{kind}")
        if not isinstance(payload, dict):
            raise _bad(f"{where}.{kind}", f"`{where}.{kind}` must be an object.")
        param = f"{where}.{kind}.{field}"
        value = payload.get(field)
        if value is None or value == "":
            raise _missing(param)
        if not isinstance(value, str):
            raise _bad(param, f"`{param}` must be a string.")
        if kind == "draft_task":
            draft_task_id = value
        else:
            _check_url(value, kind, param)
    return text, tuple(items), draft_task_id


def legacy_flags(text: str) -> dict[str, tuple[str, str]]:
    """Known `--flag value` pairs of a prompt: field -> (flag name as written, raw value); the
    last occurrence of a field wins."""
    found: dict[str, tuple[str, str]] = {}
    for name, field, raw in prompt_flags(text):
        if field in FLAG_FIELDS:
            found[field] = (name.lower(), raw)
    return found


# --- fields ------------------------------------------------------------------------------------


def _typed(fields: dict[str, Any], name: str, kind: type, src: str) -> Any:
    value = fields.get(name)
    if value is None:
        return None
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(name, f"{src} must be an integer.")
    elif kind is bool:
        if not isinstance(value, bool):
            raise _bad(name, f"{src} must be a boolean.")
    elif not isinstance(value, str):
        raise _bad(name, f"{src} must be a string.")
    return value


def _fields(body: dict[str, Any], text: str | None, read_flags: bool) -> dict[str, Any]:
    given = {key: value for key, value in body.items() if value is not None}
    found = legacy_flags(text) if text and read_flags else {}
    found = {field: flag for field, flag in found.items() if field not in given}
    flags = {field: name for field, (name, _) in found.items()}
    merged = dict(given)
    for field, (name, raw) in found.items():
        if field in ("duration", "fps"):
            if not _INT_RE.fullmatch(raw):
                raise _bad(field, f"The `--{name}` flag in the prompt must be an integer.")
            merged[field] = int(raw)
        else:
            merged[field] = raw

    def src(name: str) -> str:
        return f"The `--{flags[name]}` flag in the prompt" if name in flags else f"`{name}`"

    out: dict[str, Any] = {"flags": flags}
    for name in ("resolution", "ratio", "callback_url"):
        out[name] = _typed(merged, name, str, src(name))
    tier = _typed(merged, "service_tier", str, "`service_tier`")
    out["service_tier"] = "default" if tier is None else tier
    for name in ("duration", "frames", "fps"):
        out[name] = _typed(merged, name, int, src(name))
    for name in ("generate_audio", "draft"):
        out[name] = _typed(merged, name, bool, src(name))
    return out


def parse_create(
    raw: bytes, reads_flags: Callable[[str], bool] = lambda model: True
) -> CreateRequest | EdgeError:
    """The create body's shape checked: a CreateRequest, or the 400 to answer. What the body
    may hold for its model is `check_family`'s business. `reads_flags(model)` says whether the
    model takes legacy `--flags` from the prompt (1.x); for others they are prompt text."""
    if not raw:
        return invalid_parameter("The request body must be a JSON object.")
    try:
        body = json.loads(raw, object_pairs_hook=_no_duplicates)
    except _Invalid as exc:
        return exc.error
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
        text, items, draft_task_id = _check_content(body.get("content"))
        fields = _fields(body, text, reads_flags(model.strip()))
    except _Invalid as exc:
        return exc.error
    return CreateRequest(
        model=model.strip(), body=body, items=items, draft_task_id=draft_task_id, **fields
    )


# --- the request against its family ------------------------------------------------------------


def retired_error(family: ModelFamily, model: str) -> EdgeError:
    when = ""
    if family.retired_at is not None:
        when = f" on {datetime.fromtimestamp(family.retired_at, UTC).date().isoformat()}"
    instead = f"; use `{family.replacement}` instead" if family.replacement else ""
    return model_not_found(f"The model `{model}` was retired{when}{instead}.")


def check_family(create: CreateRequest, family: ModelFamily, now: float) -> EdgeError | None:
    """What the family's catalog entry allows: a 404 for a retired model, a 400 with `param`
    for a value the model does not take, None when the request may be priced and relayed."""
    if family.retired(now):
        return retired_error(family, create.model)
    try:
        _check_against(create, family)
    except _Invalid as exc:
        return exc.error
    return None


def _one_of(name: str, allowed: tuple[str, ...] | list[str], src: str, family: str) -> _Invalid:
    return _bad(name, f"{src} must be one of {', '.join(allowed)} for {family}.")


def _check_against(create: CreateRequest, family: ModelFamily) -> None:
    name = family.name
    resolution = family.default_resolution if create.resolution is None else create.resolution
    if resolution not in family.sizes:
        raise _one_of("resolution", list(family.sizes), create.source("resolution"), name)
    if create.ratio is not None:
        ratios = [*family.ratios(resolution), *(["adaptive"] if family.adaptive_ratio else [])]
        if create.ratio not in ratios:
            raise _one_of("ratio", ratios, create.source("ratio"), name)
    if create.frames is not None:
        if family.frames is None:
            raise _bad("frames", f"`frames` is not supported by {name}; give `duration`.")
        low, high, step = family.frames
        if not low <= create.frames <= high or (create.frames - low) % step:
            raise _bad("frames", f"`frames` must be {low}+{step}n, at most {high}, for {name}.")
    elif create.duration is not None:
        auto = create.duration == AUTO_DURATION and family.auto_duration
        if not auto and not family.min_duration <= create.duration <= family.max_duration:
            also = f", or {AUTO_DURATION} (auto)" if family.auto_duration else ""
            raise _bad(
                "duration",
                f"{create.source('duration')} must be {family.min_duration}–"
                f"{family.max_duration} seconds{also} for {name}.",
            )
    if create.fps is not None and create.fps != family.fps:
        raise _bad("fps", f"{create.source('fps')} must be {family.fps} for {name}.")
    if create.service_tier not in family.service_tiers:
        raise _one_of("service_tier", family.service_tiers, "`service_tier`", name)
    if create.generate_audio and not family.audio_supported:
        raise _bad("generate_audio", f"{name} does not generate audio.")
    if create.draft and not family.draft:
        raise _bad("draft", f"{name} does not make drafts.")
    for index, (kind, role) in enumerate(create.items):
        if kind not in family.content:
            raise _bad(f"content[{index}].type", f"{name} does not take `{kind}` items.")
        roles = family.content[kind]
        if role is not None and role not in roles:
            if not roles:
                raise _bad(f"content[{index}].role", f"A `{kind}` item takes no role.")
            raise _bad(
                f"content[{index}].role",
                f"`content[{index}].role` must be one of {', '.join(roles)} for {name}.",
            )
    if create.reference_videos > family.max_reference_videos:
        raise _bad(
            "content", f"{name} takes at most {family.max_reference_videos} reference videos."
        )
