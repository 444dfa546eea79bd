"""Simulated tasks: validating a create body, the status timeline, and the task object.

A task's status is never stored: it is derived from the clock and the task's timeline
(`transitions`), so tests can move through the statuses by advancing a fake clock.

Each model behaves as its family in the shipped catalog (config/models.toml) says the upstream
does: resolutions and their default, pixel sizes, the duration range with auto (-1), `frames`,
the frame rate, audio on by default or not, service tiers. A model the catalog does not know
is simulated generically (GENERIC below), so that a family an operator adds still runs.
`adaptive` is simulated as 16:9 where the family has it (the task object then reports the ratio
it chose, as the upstream does); an auto duration runs 5 s (within the family's range). Each
reference video counts as `reference_video_seconds` of input video, within the family's total.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from random import Random
from typing import Any

from proxy.core.seedance.catalog import Catalog, ModelFamily, parse_family
from proxy.core.seedance.prompt_flags import prompt_flags
from simulator.errors import ApiError, bad_request

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "expired")
FINAL_STATUSES = ("succeeded", "failed")
SERVICE_TIERS = ("default", "flex")
DEFAULT_EXPIRES_AFTER = 172800
AUTO_RUNS_SECONDS = 5

_WIDE = {"16:9": [1280, 720], "4:3": [1112, 834], "1:1": [960, 960], "9:16": [720, 1280]}
GENERIC = parse_family(
    "generic",
    {
        "ids": [],
        "resolutions": {
            "480p": {"16:9": [864, 496], "1:1": [640, 640], "9:16": [496, 864]},
            "720p": _WIDE,
            "1080p": {"16:9": [1920, 1080], "1:1": [1440, 1440], "9:16": [1080, 1920]},
            "4k": {"16:9": [3840, 2160], "1:1": [2880, 2880], "9:16": [2160, 3840]},
        },
        "default_resolution": "720p",
        "durations": {"min": 1, "max": 60, "default": 5, "auto": True},
        "frames": {"min": 29, "max": 289, "step": 4},
        "audio": {"supported": True, "default": False},
        "service_tiers": ["default", "flex"],
        "draft": True,
        "legacy_flags": True,
        "content": {
            "text": [],
            "image_url": ["first_frame", "last_frame", "reference_image"],
            "video_url": ["reference_video"],
            "audio_url": ["reference_audio"],
            "draft_task": [],
        },
        "reference_videos": {"max_count": 10, "max_total_seconds": 60},
        "prices": [{"usd_per_million_tokens": "0"}],
    },
)


@cache
def shipped_catalog() -> Catalog:
    return Catalog.load()


def family_of(model: str) -> ModelFamily:
    """The model's family as the upstream knows it; a retired one still runs here (the
    simulator stands in for an upstream that may not have retired it yet)."""
    return shipped_catalog().match(model) or GENERIC


# content item type → (key holding the payload, allowed roles)
_ITEM_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "text": ("text", ()),
    "image_url": ("image_url", ("first_frame", "last_frame", "reference_image")),
    "video_url": ("video_url", ("reference_video",)),
    "audio_url": ("audio_url", ("reference_audio",)),
    "draft_task": ("draft_task", ()),
}


def tokens(width: int, height: int, frames: int) -> int:
    """width × height × frames / 1024, rounded down (input tokens are 0, so total = this)."""
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
    width: int
    height: int
    fps: int
    extra_frames: int
    reference_seconds: int  # seconds of input video, which count in the tokens
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
        if self.frames is not None:
            return self.frames
        return self.fps * (self.duration or 0) + self.extra_frames

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
            frames = self.frame_count + self.fps * self.reference_seconds
            count = tokens(self.width, self.height, frames)
            obj["usage"] = {"completion_tokens": count, "total_tokens": count}
        elif status == "failed":
            obj["error"] = {"code": "InternalServiceError", "message": "The simulated task failed."}
        obj |= {
            "seed": self.seed,
            "resolution": self.resolution,
            "ratio": self.ratio,
            ("frames" if self.frames is not None else "duration"): self.frames or self.duration,
            "framespersecond": self.fps,
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
        for name, field, raw in prompt_flags(text):
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
    reference_video_seconds: int = 5,
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
    family = family_of(model)
    flags = legacy_flags(texts) if family.legacy_flags else {}  # 1.x reads them; 2.x: text
    fields = flags | {k: v for k, v in body.items() if v is not None}

    resolution = _choice(
        fields.get("resolution", family.default_resolution), "resolution", tuple(family.sizes)
    )
    ratios = family.ratios(resolution)
    ratio = fields.get("ratio", "adaptive" if family.adaptive_ratio else ratios[0])
    ratio = _choice(ratio, "ratio", (*ratios, *(("adaptive",) if family.adaptive_ratio else ())))
    if ratio == "adaptive":
        ratio = "16:9" if "16:9" in ratios else ratios[0]
    width, height = family.size(resolution, ratio)
    tier = _choice(fields.get("service_tier", "default"), "service_tier", family.service_tiers)
    frames = duration = None
    if "frames" in fields:
        if family.frames is None:
            raise bad_request("frames", "frames is not supported by this model")
        frames = _int(fields["frames"], "frames")
        low, high, step = family.frames
        if not low <= frames <= high or (frames - low) % step:
            raise bad_request("frames", f"frames must be {low}+{step}n up to {high}")
    else:
        duration = _int(fields.get("duration", family.default_duration), "duration")
        auto = duration == -1 and family.auto_duration
        if not (auto or family.min_duration <= duration <= family.max_duration):
            raise bad_request(
                "duration",
                f"duration must be between {family.min_duration} and {family.max_duration} seconds",
            )
        if auto:
            duration = max(family.min_duration, min(AUTO_RUNS_SECONDS, family.max_duration))
    if _int(fields.get("fps", family.fps), "fps") != family.fps:
        raise bad_request("fps", f"only {family.fps} frames per second are supported")
    audio = _bool(fields.get("generate_audio", family.audio_default), "generate_audio")
    if audio and not family.audio_supported:
        raise bad_request("generate_audio", "this model does not generate audio")
    videos = sum(1 for item in body["content"] if item.get("type") == "video_url")
    reference_seconds = min(videos * reference_video_seconds, family.max_reference_video_seconds)
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
        width=width,
        height=height,
        fps=family.fps,
        extra_frames=family.extra_frames,
        reference_seconds=reference_seconds,
        seed=rng.randint(0, 2**31 - 1) if seed == -1 else seed,
        camera_fixed=_bool(fields.get("camera_fixed", False), "camera_fixed"),
        watermark=_bool(fields.get("watermark", False), "watermark"),
        generate_audio=audio,
        draft=_bool(fields.get("draft", False), "draft"),
        draft_task_id=draft_task_id,
        service_tier=tier,
        execution_expires_after=expires,
        return_last_frame=_bool(fields.get("return_last_frame", False), "return_last_frame"),
        callback_url=callback_url,
        safety_identifier=safety,
        base_url=base_url,
    )
