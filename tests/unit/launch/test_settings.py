import os
from pathlib import Path

import pytest

from launch.settings import load, worker_count


def test_defaults_come_from_the_schema() -> None:
    settings = load([], environ={})
    assert settings.listen == "0.0.0.0:8080"
    assert settings.control_listen == "127.0.0.1:9090"
    assert settings.max_body_bytes == 10 * 2**20
    assert settings.trusted_proxies == []
    assert settings.default_rate_limit["requests_per_minute"] == 600


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
        ([], {"NEXTAPI_MAX_CONNECTIONS_PER_ADDRESS": "-1"}),
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


def test_relative_paths_are_made_absolute_from_the_working_directory_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "edge.pem").write_text("")
    config = tmp_path / "edge.toml"
    config.write_text('catalog_file = "catalogs/models.toml"\nvideo_store = "videos"\n')
    monkeypatch.chdir(tmp_path)
    settings = load(["--config", "edge.toml", "--tls-cert", "certs/edge.pem"], environ={})
    assert settings.data_dir == tmp_path / "data"  # the shipped default, `data`
    assert settings.catalog_file == str(tmp_path / "catalogs" / "models.toml")
    assert settings.tls_cert == str(tmp_path / "certs" / "edge.pem")
    assert settings.video_store == str(tmp_path / "videos")
    # the environment's and the flags' paths alike
    from_env = load([], environ={"NEXTAPI_DATA_DIR": "state/here"})
    assert from_env.data_dir == tmp_path / "state" / "here"
    assert load(["--data-dir", "elsewhere"], environ={}).data_dir == tmp_path / "elsewhere"
    # a later change of directory changes nothing (a file: URI needs an absolute path)
    monkeypatch.chdir("/")
    assert settings.data_dir.is_absolute() and settings.data_dir.as_uri().startswith("file:///")


def test_absolute_paths_urls_and_off_are_kept_as_given(tmp_path: Path) -> None:
    assert load(["--data-dir", str(tmp_path)], environ={}).data_dir == tmp_path
    home = load(["--data-dir", "~/edge"], environ={}).data_dir
    assert home == Path.home() / "edge"
    for store in ("off", "", "s3://bucket/videos?endpoint=http://127.0.0.1:9000"):
        assert load([], environ={"NEXTAPI_VIDEO_STORE": store}).video_store == store


def test_the_rollup_interval_defaults_to_a_minute_and_must_be_positive() -> None:
    assert load([], environ={}).rollup_interval == 60.0
    assert load([], environ={"NEXTAPI_ROLLUP_INTERVAL": "0.5"}).rollup_interval == 0.5
    with pytest.raises(SystemExit, match="rollup_interval"):
        load([], environ={"NEXTAPI_ROLLUP_INTERVAL": "0"})


def test_hold_times_default_to_five_minutes_a_minute_and_an_hour_and_are_checked() -> None:
    settings = load([], environ={})
    assert (settings.hold_seconds, settings.hold_sweep_interval) == (300.0, 60.0)
    assert settings.hold_max_seconds == 3600.0
    env = {"NEXTAPI_HOLD_SECONDS": "2", "NEXTAPI_HOLD_MAX_SECONDS": "10"}
    assert load(["--upstream-timeout", "4"], environ=env).hold_seconds == 2.0
    with pytest.raises(SystemExit, match="hold_seconds"):
        load([], environ={"NEXTAPI_HOLD_SECONDS": "0"})
    with pytest.raises(SystemExit, match="hold_sweep_interval"):
        load([], environ={"NEXTAPI_HOLD_SWEEP_INTERVAL": "-1"})
    # Released unmatched before a create could even have timed out: refused.
    with pytest.raises(SystemExit, match="hold_max_seconds"):
        load([], environ={"NEXTAPI_HOLD_MAX_SECONDS": "320"})
