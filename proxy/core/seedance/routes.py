"""The Seedance routes the edge forwards; everything else is answered 404 by the edge itself."""

from __future__ import annotations

import re
from dataclasses import dataclass

TASKS_PATH = "/api/v3/contents/generations/tasks"
_TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True, slots=True)
class Route:
    name: str  # tasks.create | tasks.list | tasks.get | tasks.delete | callbacks.ingress | …
    template: str  # what usage records carry: never a raw path with ids in it
    task_id: str | None = None
    token: str | None = None  # of a callback ingress URL

    @property
    def public(self) -> bool:
        """Answered by the edge itself without a customer key (the token authenticates)."""
        return self.name in ("callbacks.ingress", "videos.asset")

    @property
    def durable(self) -> bool:
        """Calls that change state upstream: their usage record is on disk before the answer."""
        return self.name in ("tasks.create", "tasks.delete")


CALLBACKS_PREFIX = "/_nextapi/callbacks/"
VIDEOS_PREFIX = "/_nextapi/videos/"  # signed links to the gateway's copies (proxy/videos/links.py)
VIDEO = Route("videos.asset", f"GET {VIDEOS_PREFIX}{{task}}/{{name}}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,4096}\.[A-Za-z0-9_-]{43}")

CREATE = Route("tasks.create", f"POST {TASKS_PATH}")
LIST = Route("tasks.list", f"GET {TASKS_PATH}")


def match(method: str, path: str) -> Route | None:
    """The route of a request (path without query), or None when the edge does not forward it."""
    if path.endswith("/") and len(path) > 1:
        path = path[:-1]
    if path.startswith(CALLBACKS_PREFIX):
        token = path[len(CALLBACKS_PREFIX) :]
        if method == "POST" and _TOKEN.fullmatch(token):
            return Route("callbacks.ingress", f"POST {CALLBACKS_PREFIX}{{token}}", token=token)
        return None
    if path.startswith(VIDEOS_PREFIX):
        return VIDEO if method in ("GET", "HEAD") else None
    if path == TASKS_PATH:
        if method == "POST":
            return CREATE
        if method == "GET":
            return LIST
        return None
    prefix = TASKS_PATH + "/"
    if path.startswith(prefix):
        task_id = path[len(prefix) :]
        if not _TASK_ID.fullmatch(task_id):
            return None
        if method == "GET":
            return Route("tasks.get", f"GET {TASKS_PATH}/{{id}}", task_id)
        if method == "DELETE":
            return Route("tasks.delete", f"DELETE {TASKS_PATH}/{{id}}", task_id)
    return None
