"""Simulated tasks: validating a create body, the status timeline, and the task object.

A task's status is never stored: it is derived from the clock and the task's timeline
(`transitions`), so tests can move through the statuses by advancing a fake clock.

Pixel sizes (width × height) used for the token count. The 16:9 row is the documented one;
the others follow the published Seedance 1.0 tables, with 9:16 = 16:9 swapped. `adaptive` is
simulated as 16:9 (the task object then reports `16:9`, as the upstream reports the ratio it chose).

| ratio | 480p    | 720p      | 1080p     |
|-------|---------|-----------|-----------|
| 16:9  | 864×480 | 1280×720  | 1920×1088 |
| 4:3   | 736×544 | 1120×832  | 1664×1248 |
| 1:1   | 640×640 | 960×960   | 1440×1440 |
| 3:4   | 544×736 | 832×1120  | 1248×1664 |
| 9:16  | 480×864 | 720×1280  | 1088×1920 |
| 21:9  | 960×416 | 1504×640  | 2176×928  |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from random import Random
from typing import Any

from simulator.errors import ApiError, bad_request

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "expired")
FINAL_STATUSES = ("succeeded", "failed")
SERVICE_TIERS = ("default", "flex")
RESOLUTIONS = ("480p", "720p", "1080p")
RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive")
FPS = 24
DEFAULT_EXPIRES_AFTER = 172800

_SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "16:9": {"480p": (864, 480), "720p": (1280, 720), "1080p": (1920, 1088)},
    "4:3": {"480p": (736, 544), "720p": (1120, 832), "1080p": (1664, 1248)},
    "1:1": {"480p": (640, 640), "720p": (960, 960), "1080p": (1440, 1440)},
    "3:4": {"480p": (544, 736), "720p": (832, 1120), "1080p": (1248, 1664)},
    "9:16": {"480p": (480, 864), "720p": (720, 1280), "1080p": (1088, 1920)},
    "21:9": {"480p": (960, 416), "720p": (1504, 640), "1080p": (2176, 928)},
}

# content item type → (key holding the payload, allowed roles)
_ITEM_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "text": ("text", ()),
    "image_url": ("image_url", ("first_frame", "last_frame", "reference_image")),
    "video_url": ("video_url", ("reference_video",)),
    "audio_url": ("audio_url", ("reference_audio",)),
    "draft_task": ("draft_task", ()),
}

_FLAG_RE = re.compile(r"(?:^|\s)--([A-Za-z]+)\s+(\S+)")
_FLAG_NAMES = {
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


def video_size(resolution: str, ratio: str) -> tuple[int, int]:
    return _SIZES.get(ratio, _SIZES["16:9"])[resolution]


def tokens(resolution: str, ratio: str, frames: int) -> int:
    """width × height × frames / 1024, rounded down (input tokens are 0, so total = this)."""
    width, height = video_size(resolution, ratio)
    return width * height * frames // 1024


@dataclass(slots=True)
class Task:
    id: str
    model: str
    created_at: float
    queued_seconds: float
    running_seconds: float
    fail: bool
    resolution: str
    ratio: str
    duration: int | None
    frames: int | None
    seed: int
    camera_fixed: bool
    watermark: bool
    generate_audio: bool
    draft: bool
    draft_task_id: str | None
    service_tier: str
    execution_expires_after: int
    return_last_frame: bool
    callback_url: str | None
    safety_identifier: str | None
    base_url: str
    cancelled_at: float | None = None
    posted: int = 0
    """How many of `transitions()` have been handed to the callback dispatcher."""

    @property
    def frame_count(self) -> int:
        return self.frames if self.frames is not None else FPS * (self.duration or 0) + 1

    def transitions(self) -> list[tuple[str, float]]:
        """(status, since) steps of the task's whole life; the current one is the last that has
        begun. A task not finished `execution_expires_after` seconds after creation expires."""
        steps = [("queued", self.created_at)]
        if self.cancelled_at is not None:
            return [*steps, ("cancelled", self.cancelled_at)]
        run_at = self.created_at + self.queued_seconds
        done_at = run_at + self.running_seconds
        expire_at = self.created_at + self.execution_expires_after
        if expire_at < run_at:
            return [*steps, ("expired", expire_at)]
        steps.append(("running", run_at))
        if expire_at < done_at:
            return [*steps, ("expired", expire_at)]
        return [*steps, ("failed" if self.fail else "succeeded", done_at)]

    def steps_until(self, now: float) -> list[tuple[str, float]]:
        steps = self.transitions()
        return [steps[0]] + [step for step in steps[1:] if step[1] <= now]

    def status(self, now: float) -> str:
        return self.steps_until(now)[-1][0]

    def view(self, now: float, base_url: str | None = None) -> dict[str, Any]:
        """The task object as `GET /tasks/{id}` answers it at time `now`; links to the video
        use `base_url` (default: the base URL the task was created through)."""
        status, since = self.steps_until(now)[-1]
        return self.render(status, since, base_url)

    def render(self, status: str, since: float, base_url: str | None = None) -> dict[str, Any]:
        """The task object as it was when it entered `status` at time `since`."""
        base = base_url or self.base_url
        obj: dict[str, Any] = {
            "id": self.id,
            "model": self.model,
            "status": status,
            "error": None,
            "created_at": int(self.created_at),
            "updated_at": int(since),
        }
        if status == "succeeded":
            content = {"video_url": f"{base}/_sim/videos/{self.id}.mp4"}
            if self.return_last_frame:
                content["last_frame_url"] = f"{base}/_sim/frames/{self.id}.png"
            obj["content"] = content
            count = tokens(self.resolution, self.ratio, self.frame_count)
            obj["usage"] = {"completion_tokens": count, "total_tokens": count}
        elif status == "failed":
            obj["error"] = {"code": "InternalServiceError", "message": "The simulated task failed."}
        obj |= {
            "seed": self.seed,
            "resolution": self.resolution,
            "ratio": self.ratio,
            ("frames" if self.frames is not None else "duration"): self.frames or self.duration,
            "framespersecond": FPS,
            "camera_fixed": self.camera_fixed,
            "watermark": self.watermark,
            "generate_audio": self.generate_audio,
            "draft": self.draft,
            "service_tier": self.service_tier,
            "execution_expires_after": self.execution_expires_after,
        }
        if self.draft_task_id is not None:
            obj["draft_task_id"] = self.draft_task_id
        if self.safety_identifier is not None:
            obj["safety_identifier"] = self.safety_identifier
        return obj


# --- the create body -------------------------------------------------------------------------


def _int(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(param, f"{param} must be an integer")
    return value


def _bool(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise bad_request(param, f"{param} must be a boolean")
    return value


def _choice(value: Any, param: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise bad_request(param, f"{param} must be one of {', '.join(allowed)}")
    return value


def _check_content(content: Any) -> tuple[list[str], str | None]:
    """The texts of the text items and the draft task id, after checking every item."""
    if content is None:
        raise bad_request("content", "content is required", "MissingParameter")
    if not isinstance(content, list) or not content:
        raise bad_request("content", "content must be a non-empty list")
    texts: list[str] = []
    draft_task_id = None
    for i, item in enumerate(content):
        where = f"content[{i}]"
        if not isinstance(item, dict):
            raise bad_request(where, f"{where} must be an object")
        kind = item.get("type")
        if kind not in _ITEM_TYPES:
            raise bad_request(f"{where}.type", f"{where}.type {kind!r} is not supported")
        key, roles = _ITEM_TYPES[kind]
        payload = item.get(key)
        if kind == "text":
            if not isinstance(payload, str):
                raise bad_request(f"{where}.text", f"{where}.text must be a string")
            texts.append(payload)
            continue
        field = "id" if kind == "draft_task" else "url"
        if not isinstance(payload, dict) or not isinstance(payload.get(field), str):
            raise bad_request(f"{where}.{key}.{field}", f"{where}.{key}.{field} is required")
        if not payload[field]:
            raise bad_request(f"{where}.{key}.{field}", f"{where}.{key}.{field} is empty")
        if kind == "draft_task":
            draft_task_id = payload["id"]
        elif "role" in item and item["role"] not in roles:
            raise bad_request(f"{where}.role", f"{where}.role must be one of {', '.join(roles)}")
    return texts, draft_task_id


def legacy_flags(texts: list[str]) -> dict[str, Any]:
    """`--rs 480p --dur 5 …` flags from the prompt texts, as top-level field names and values."""
    found: dict[str, Any] = {}
    for text in texts:
        for name, raw in _FLAG_RE.findall(text):
            field = _FLAG_NAMES.get(name.lower())
            if field is None:
                continue
            value: Any = raw
            if field in ("duration", "fps", "seed"):
                try:
                    value = int(raw)
                except ValueError as exc:
                    raise bad_request(field, f"--{name} must be an integer") from exc
            elif field in ("camera_fixed", "watermark"):
                if raw.lower() not in ("true", "false"):
                    raise bad_request(field, f"--{name} must be true or false")
                value = raw.lower() == "true"
            found[field] = value
    return found


def parse_create(
    body: Any,
    *,
    task_id: str,
    now: float,
    base_url: str,
    rng: Random,
    fail: bool,
    queued_seconds: float,
    running_seconds: float,
) -> Task:
    """Validate a create body like the upstream does and build the task; raises ApiError."""
    if not isinstance(body, dict):
        raise ApiError(400, "InvalidParameter", "the request body must be a JSON object")
    model = body.get("model")
    if model is None or model == "":
        raise bad_request("model", "model is required", "MissingParameter")
    if not isinstance(model, str):
        raise bad_request("model", "model must be a string")
    texts, draft_task_id = _check_content(body.get("content"))
    fields = legacy_flags(texts) | {k: v for k, v in body.items() if v is not None}

    resolution = _choice(fields.get("resolution", "720p"), "resolution", RESOLUTIONS)
    ratio = _choice(fields.get("ratio", "16:9"), "ratio", RATIOS)
    ratio = "16:9" if ratio == "adaptive" else ratio
    tier = _choice(fields.get("service_tier", "default"), "service_tier", SERVICE_TIERS)
    frames = duration = None
    if "frames" in fields:
        frames = _int(fields["frames"], "frames")
        if not 29 <= frames <= 289 or (frames - 25) % 4:
            raise bad_request("frames", "frames must be 25+4n between 29 and 289")
    else:
        duration = _int(fields.get("duration", 5), "duration")
        auto = duration == -1 and "seedance-1-5" in model
        if not (auto or 2 <= duration <= 12):
            raise bad_request("duration", "duration must be between 2 and 12 seconds")
        duration = 5 if auto else duration
    if _int(fields.get("fps", FPS), "fps") != FPS:
        raise bad_request("fps", f"only {FPS} frames per second are supported")
    seed = _int(fields.get("seed", -1), "seed")
    if not -1 <= seed <= 2**32 - 1:
        raise bad_request("seed", "seed must be between -1 and 4294967295")
    expires = _int(
        fields.get("execution_expires_after", DEFAULT_EXPIRES_AFTER), "execution_expires_after"
    )
    if not 3600 <= expires <= 259200:
        raise bad_request("execution_expires_after", "execution_expires_after must be 3600–259200")
    callback_url = fields.get("callback_url")
    if callback_url is not None and (
        not isinstance(callback_url, str) or not callback_url.startswith(("http://", "https://"))
    ):
        raise bad_request("callback_url", "callback_url must be an http(s) URL")
    safety = fields.get("safety_identifier")
    if safety is not None and not isinstance(safety, str):
        raise bad_request("safety_identifier", "safety_identifier must be a string")
    audio_default = "seedance-1-5-pro" in model or "seedance-2-0" in model
    return Task(
        id=task_id,
        model=model,
        created_at=now,
        queued_seconds=queued_seconds,
        running_seconds=running_seconds,
        fail=fail,
        resolution=resolution,
        ratio=ratio,
        duration=duration,
        frames=frames,
        seed=rng.randint(0, 2**31 - 1) if seed == -1 else seed,
        camera_fixed=_bool(fields.get("camera_fixed", False), "camera_fixed"),
        watermark=_bool(fields.get("watermark", False), "watermark"),
        generate_audio=_bool(fields.get("generate_audio", audio_default), "generate_audio"),
        draft=_bool(fields.get("draft", False), "draft"),
        draft_task_id=draft_task_id,
        service_tier=tier,
        execution_expires_after=expires,
        return_last_frame=_bool(fields.get("return_last_frame", False), "return_last_frame"),
        callback_url=callback_url,
        safety_identifier=safety,
        base_url=base_url,
    )
