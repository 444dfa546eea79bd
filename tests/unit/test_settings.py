import os
from pathlib import Path

import pytest

from proxy.settings import load, worker_count


def test_defaults_come_from_the_toml_file() -> None:
    settings = load([], environ={})
    assert settings.listen == "0.0.0.0:8080"
    assert settings.control_listen == "127.0.0.1:9090"
    assert settings.max_body_bytes == 10 * 2**20
    assert settings.trusted_proxies == []


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('listen = "127.0.0.1:1111"\nupstream_timeout = 5.0\nrole = "control"\n')
    env = {"NEXTAPI_LISTEN": "127.0.0.1:2222", "NEXTAPI_TRUSTED_PROXIES": "10.0.0.0/8, ::1"}
    settings = load(["--config", str(config), "--role", "all"], environ=env)
    assert settings.listen == "127.0.0.1:2222"  # env beats the file
    assert settings.upstream_timeout == 5.0  # from the file
    assert settings.role == "all"  # the flag beats the file
    assert settings.trusted_proxies == ["10.0.0.0/8", "::1"]
    flagged = load(["--config", str(config), "--listen", "127.0.0.1:3333"], environ=env)
    assert flagged.listen == "127.0.0.1:3333"


def test_demo_stays_on_loopback() -> None:
    assert load(["--demo"], environ={}).listen == "127.0.0.1:8080"
    assert load(["--demo", "--listen", "0.0.0.0:9"], environ={}).listen == "0.0.0.0:9"


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--listen", "nonsense"], {}),
        (["--role", "edge"], {}),  # an edge apart needs --control-url
        (["--upstream", "ftp://x"], {}),
        ([], {"NEXTAPI_MAX_BODY_BYTES": "lots"}),
        (["--config", "/nonexistent.toml"], {}),
    ],
)
def test_bad_settings_stop_with_a_message(argv: list[str], env: dict[str, str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        load(argv, environ=env)
    assert stopped.value.code  # a message, not a silent exit


def test_unknown_keys_in_a_config_file_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text("upstream_key = 'never here'\n")
    with pytest.raises(SystemExit, match="unknown setting"):
        load(["--config", str(config)], environ={})


def test_workers_default_to_one_and_auto_is_the_core_count() -> None:
    assert worker_count(load([], environ={})) == 1
    redis = ["--redis-url", "redis://127.0.0.1:6379/0"]
    assert worker_count(load(["--workers", "auto", *redis], environ={})) == len(
        os.sched_getaffinity(0)
    )
    assert worker_count(load(["--workers", "3", *redis], environ={})) == 3


def test_several_workers_without_redis_are_refused_with_the_reason() -> None:
    with pytest.raises(SystemExit, match=r"needs --redis-url.*counted per worker"):
        load(["--workers", "2"], environ={})
    with pytest.raises(SystemExit, match="positive number or auto"):
        load(["--workers", "0"], environ={})
    with pytest.raises(SystemExit, match="--role all"):
        load(["--workers", "2", "--redis-url", "redis://h:6379/0", "--role", "control"], environ={})
