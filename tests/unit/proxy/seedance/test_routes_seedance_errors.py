import json

import pytest

from proxy import errors
from proxy.core.seedance import routes
from proxy.errors import EdgeError
from proxy.seedance.creates import parse_create

T = routes.TASKS_PATH


@pytest.mark.parametrize(
    ("method", "path", "name", "task_id"),
    [
        ("POST", T, "tasks.create", None),
        ("GET", T, "tasks.list", None),
        ("GET", T + "/", "tasks.list", None),
        ("GET", T + "/cgt-20251009163014-wfnnx", "tasks.get", "cgt-20251009163014-wfnnx"),
        ("DELETE", T + "/cgt-1", "tasks.delete", "cgt-1"),
    ],
)
def test_known_routes(method: str, path: str, name: str, task_id: str | None) -> None:
    route = routes.match(method, path)
    assert route is not None and route.name == name and route.task_id == task_id
    assert "cgt-" not in route.template  # records carry templates, not ids


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/api/v3/chat/completions"),
        ("PUT", T),
        ("DELETE", T),
        ("POST", T + "/cgt-1"),
        ("GET", T + "/a/b"),
        ("GET", T + "/../../admin"),
        ("GET", "/api/v3/contents/generations/tasksX"),
    ],
)
def test_unknown_routes(method: str, path: str) -> None:
    assert routes.match(method, path) is None


def test_durable_routes_are_the_state_changing_ones() -> None:
    assert routes.CREATE.durable
    assert not routes.LIST.durable
    delete = routes.match("DELETE", T + "/x")
    assert delete is not None and delete.durable


def test_envelope_shape_and_no_retry_header() -> None:
    err = errors.invalid_parameter("bad", "content[0]")
    body = json.loads(err.body())
    assert body == {
        "error": {
            "code": "InvalidParameter",
            "message": "bad",
            "param": "content[0]",
            "type": "BadRequest",
        }
    }
    headers = err.response_headers("req_1")
    assert headers["X-Request-Id"] == "req_1"
    assert headers["x-should-retry"] == "false"
    assert "x-should-retry" not in errors.upstream_unavailable().response_headers("r")


@pytest.mark.parametrize(
    ("raw", "code", "param"),
    [
        (b"", "InvalidParameter", ""),
        (b"{not json", "InvalidParameter", ""),
        (b"[]", "InvalidParameter", ""),
        (b'{"content": [{"type": "text"}]}', "MissingParameter", "model"),
        (b'{"model": 5, "content": [{"type": "text"}]}', "InvalidParameter", "model"),
        (b'{"model": "m"}', "MissingParameter", "content"),
        (b'{"model": "m", "content": []}', "InvalidParameter", "content"),
        (b'{"model": "m", "content": ["x"]}', "InvalidParameter", "content[0]"),
    ],
)
def test_create_body_validation(raw: bytes, code: str, param: str) -> None:
    result = parse_create(raw)
    assert isinstance(result, EdgeError)
    assert (result.status, result.code, result.param) == (400, code, param)


def test_valid_create_body() -> None:
    raw = b'{"model": " seedance-1-0-pro-250528 ", "content": [{"type": "text", "text": "hi"}]}'
    result = parse_create(raw)
    assert not isinstance(result, EdgeError)
    assert result.model == "seedance-1-0-pro-250528"
