"""run_proxy.py's composition root configures the edge's services whole from its settings."""

from __future__ import annotations

import asyncio

import pytest

from launch.runtime import edge_services
from launch.settings import load


def test_the_services_take_every_value_they_are_built_from_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEXTAPI_UPSTREAM_KEY", "sk-test")
    environ = {
        "NEXTAPI_UPSTREAM": "http://127.0.0.1:9",
        "NEXTAPI_DEFAULT_RATE_LIMIT": '{"requests_per_day": 5}',
        "NEXTAPI_MODEL_LIMITS": '{"m": {"requests_per_minute": 1}}',
        "NEXTAPI_WRONG_SECRETS_PER_KEY_PER_MINUTE": "4",
        "NEXTAPI_PUBLIC_URL": "https://edge.example",
        "NEXTAPI_ROLE": "edge",
        "NEXTAPI_CONTROL_URL": "http://127.0.0.1:1",
        "NEXTAPI_SNAPSHOT_MAX_AGE_HOURS": "0.5",
    }
    services = edge_services(load([], environ=environ))
    assert services.default_limits == {"requests_per_day": 5}
    assert services.model_limits == {"m": {"requests_per_minute": 1}}
    assert services.gatekeeper.limits.wrong_secrets_per_key == 4
    assert services.public_origin() == "https://edge.example"
    assert services.upstream is not None and services.upstream_origin == "http://127.0.0.1:9"
    assert services.policy.max_age == 1800  # an edge apart: its policy goes stale
    asyncio.run(services.aclose())

    alone = edge_services(load([], environ={k: v for k, v in environ.items() if "ROLE" not in k}))
    assert alone.policy.max_age is None  # role all: the policy is this process's own
    asyncio.run(alone.aclose())


def test_configuring_again_keeps_the_upstream_client_unless_its_settings_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from proxy.services import EdgeConfig

    monkeypatch.setenv("NEXTAPI_UPSTREAM_KEY", "sk-test")
    services = edge_services(load([], environ={}))
    first = services.upstream
    same = EdgeConfig.from_schema(
        "https://ark.ap-southeast.bytepluses.com", upstream_key="sk-test", model_limits={"m": {}}
    )
    services.configure(same)
    assert services.upstream is first and services.model_limits == {"m": {}}
    services.configure(
        EdgeConfig.from_schema(same.upstream, upstream_key="sk-test", upstream_timeout=5.0)
    )
    assert services.upstream is not first and first in services._retired
    asyncio.run(services.aclose())
