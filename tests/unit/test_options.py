"""Each option declared once (issue 22): proxy/options/schema.py is what the settings, the
command line, the environment, TOML files, the chain's mitmproxy options, run_proxy.py's mapping
onto them and the docs' table all read; proxy/options/dev_schema.py is what `run_proxy.py dev`'s
command line, its settings and its docs' table read. An option missing from one of them fails
here."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tomllib
import typing
from pathlib import Path
from typing import Any, get_origin

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons

from addons.devmode.settings import DevSettings, parse
from addons.devmode.settings import parser as dev_parser
from addons.gateway import chain
from addons.standalone import Standalone
from launch.edge import build_master
from launch.settings import Settings, load, parser
from proxy.options import BY_MITM, BY_NAME, OPTIONS, Option
from proxy.options.dev_schema import DEV_OPTIONS, DevOption
from proxy.options.render import (
    DEV_TABLE_END,
    DEV_TABLE_START,
    TABLE_END,
    TABLE_START,
    toml_file,
    toml_value,
    with_table,
)
from proxy.services import EdgeServices

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION_PAGE = ROOT / "docs" / "operators" / "configuration.md"
DEV_PROXY_PAGE = ROOT / "docs" / "developers" / "dev-proxy.md"

# Values of the string options mitmproxy's addons check, other than their defaults.
EDGE_STRINGS = {
    "control_url": "http://control.example:9090",
    "admin_token_env": "OTHER_ADMIN_TOKEN",
    "public_url": "http://edge.example:8080",
    "callback_secret_env": "OTHER_CALLBACK_SECRET",
    "redis_url": "",  # (a URL would make the Standalone addon share counters through Redis)
    "redis_prefix": "other:",
    "redis_failure": "closed",
}


def sample(option: Option) -> Any:
    """A value of the option's type other than its default."""
    kind, default = option.kind, option.default
    if option.choices is not None:
        return next(choice for choice in option.choices if choice != default)
    if kind is bool:
        return not default
    if kind in (int, float):
        return default + (1 if kind is int else 0.5)
    if kind is Path:
        return Path("elsewhere")
    if kind is str:
        return EDGE_STRINGS.get(option.name, f"{default}-other" if default else "other")
    if get_origin(kind) is list:
        return ["10.0.0.0/8", "::1"]
    if kind == dict[str, int]:
        return {"requests_per_minute": 7}
    if kind == dict[str, dict[str, int]]:
        return {"seedance-x": {"concurrent_tasks": 3}}
    raise AssertionError(f"no sample for {option.name}'s type {kind!r}: add one here")


def as_text(option: Option, value: Any) -> str:
    """`value` as the environment or a flag gives it."""
    if option.kind is bool:
        return "true" if value else "false"
    return str(option.to_mitm(value))


@pytest.fixture
def unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    """`load` without the checks across settings (samples need not make a whole valid set)."""
    monkeypatch.setattr("launch.settings.validate", lambda settings: None)
    monkeypatch.setattr("launch.settings.resolve_paths", lambda settings, cwd: None)


def test_settings_has_a_field_of_the_schemas_type_for_each_option_and_no_other() -> None:
    hints = typing.get_type_hints(Settings)
    assert set(hints) == {option.name for option in OPTIONS}
    for option in OPTIONS:
        assert hints[option.name] == option.kind, option.name
        assert getattr(Settings(), option.name) == option.default, option.name


def test_settings_do_not_share_mutable_defaults() -> None:
    first, second = Settings(), Settings()
    first.trusted_proxies.append("10.0.0.0/8")
    first.default_rate_limit["requests_per_minute"] = 1
    assert second.trusted_proxies == [] and second.default_rate_limit["requests_per_minute"] == 600


@pytest.mark.usefixtures("unchecked")
@pytest.mark.parametrize("option", OPTIONS, ids=lambda option: option.name)
def test_every_option_is_read_from_the_environment_and_toml(option: Option, tmp_path: Path) -> None:
    value = sample(option)
    from_env = load([], environ={option.env: as_text(option, value)})
    assert getattr(from_env, option.name) == value
    config = tmp_path / "edge.toml"
    config.write_text(f"{option.name} = {toml_value(value)}\n")
    assert getattr(load(["--config", str(config)], environ={}), option.name) == value


@pytest.mark.usefixtures("unchecked")
@pytest.mark.parametrize("option", [o for o in OPTIONS if o.flag], ids=lambda option: option.name)
def test_every_option_with_a_flag_is_read_from_it(option: Option) -> None:
    assert option.cli_flag is not None
    value = sample(option)
    argv = [option.cli_flag] if option.kind is bool else [option.cli_flag, as_text(option, value)]
    assert getattr(load(argv, environ={}), option.name) == value


def test_the_command_line_has_the_schemas_flags_and_no_other() -> None:
    flags = {
        string
        for action in parser()._actions
        for string in action.option_strings
        if string.startswith("--")
    }
    assert flags - {"--help", "--config"} == {o.cli_flag for o in OPTIONS if o.cli_flag}


def test_a_choice_outside_the_schemas_is_refused() -> None:
    with pytest.raises(SystemExit, match=r"redis_failure.*local, closed"):
        load([], environ={"NEXTAPI_REDIS_FAILURE": "sometimes"})


def test_the_generated_toml_file_holds_every_default() -> None:
    values = tomllib.loads(toml_file())
    assert list(values) == [option.name for option in OPTIONS]
    for option in OPTIONS:
        assert option.coerce(values[option.name]) == option.default, option.name


def chain_options(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The `nextapi_` options of `mitmdump -s addons/gateway.py`'s addons, at their defaults."""
    monkeypatch.setenv("NEXTAPI_UPSTREAM_KEY", "sk-test")
    services = EdgeServices()
    with taddons.context(Standalone(services), *chain(services)) as tctx:
        names = [name for name in tctx.options.keys() if name.startswith("nextapi_")]
        return {name: getattr(tctx.options, name) for name in names}


def test_the_chain_declares_every_mitmproxy_option_of_the_schema_and_no_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert set(chain_options(monkeypatch)) == set(BY_MITM)


def test_defaults_under_mitmdump_are_the_defaults_under_run_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    declared = chain_options(monkeypatch)
    settings = Settings()
    for name, option in BY_MITM.items():
        assert declared[name] == option.to_mitm(getattr(settings, option.name)), name
    assert json.loads(declared["nextapi_default_limits"])["requests_per_minute"] == 600
    assert declared["nextapi_redis_prefix"] == "nextapi:"


def test_run_proxy_gives_every_mitmproxy_option_its_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NEXTAPI_UPSTREAM_KEY", "sk-test")
    settings = Settings(listen="127.0.0.1:0", data_dir=tmp_path)
    for option in BY_MITM.values():
        if option.name != "data_dir":
            setattr(settings, option.name, sample(option))
    services = EdgeServices()

    async def built() -> dict[str, Any]:
        edge, _ = build_master(settings, services)
        return {name: getattr(edge.options, name) for name in BY_MITM if name in edge.options}

    given = asyncio.run(built())
    with taddons.context(*chain(EdgeServices())) as tctx:  # without mitmdump's Standalone
        declared = {name for name in tctx.options.keys() if name.startswith("nextapi_")}
    assert set(given) == declared
    for name in given:
        option = BY_MITM[name]
        assert given[name] == option.to_mitm(getattr(settings, option.name)), name


def test_under_mitmdump_the_services_are_configured_whole_from_the_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Standalone, mitmdump's composition root, reads every option the services are built from
    (as launch/ does from its settings), whichever addon declared it."""
    monkeypatch.setenv("NEXTAPI_UPSTREAM_KEY", "sk-test")
    services = EdgeServices()
    standalone = Standalone(services)

    async def configured() -> None:
        with taddons.context(*chain(services, first=(standalone,))) as tctx:
            tctx.options.update(
                mode=["reverse:https://ark.example:8443"],
                nextapi_default_limits='{"requests_per_minute": 7}',
                nextapi_model_limits='{"m": {"concurrent_tasks": 2}}',
                nextapi_auth_failures_per_ip=3,
                nextapi_public_url="https://edge.example/",
                nextapi_snapshot_max_age_hours=2.0,
            )
            standalone._configure_services()  # what its `running` does once options are final
            assert services.default_limits == {"requests_per_minute": 7}
            assert services.model_limits == {"m": {"concurrent_tasks": 2}}
            assert services.gatekeeper.limits.failures_per_ip == 3
            assert services.public_origin() == "https://edge.example"
            assert services.policy.max_age == 7200
            assert services.upstream is not None
            assert services.upstream_origin == "https://ark.example:8443"
            with pytest.raises(exceptions.OptionsError, match="nextapi_model_limits"):
                tctx.options.update(nextapi_model_limits='{"m": {"concurrent_tasks": 0}}')
            assert services.model_limits == {"m": {"concurrent_tasks": 2}}  # refused: unchanged
        await services.aclose()

    asyncio.run(configured())


def test_the_configuration_page_shows_the_schemas_table() -> None:
    page = CONFIGURATION_PAGE.read_text(encoding="utf-8")
    assert TABLE_START in page and TABLE_END in page
    assert page == with_table(page), (
        "docs/operators/configuration.md's options table differs from proxy/options/schema.py: "
        "regenerate it with `.venv/bin/python -m proxy.options --markdown`"
    )
    for option in OPTIONS:
        assert f"| `{option.name}` | `{option.env}` |" in page, option.name


def test_importing_the_gateway_builds_nothing_until_mitmproxy_asks_for_its_addons() -> None:
    code = (
        "from proxy.services import EdgeServices\n"
        "built = []\n"
        "setup = EdgeServices.__post_init__\n"
        "EdgeServices.__post_init__ = lambda self: (built.append(self), setup(self))[1]\n"
        "import addons.gateway as gateway\n"
        "assert not built and 'addons' not in vars(gateway), 'built at import'\n"
        "first = gateway.addons\n"
        "assert first is gateway.addons and len(built) == 1\n"
        "assert [type(a).__name__ for a in first[:2]] == ['OptionCheck', 'Standalone']\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_no_option_reads_a_secret_or_another_variable_of_the_edge() -> None:
    """An option named `upstream_key` would make the upstream key a setting of TOML files."""
    others = {
        "NEXTAPI_UPSTREAM_KEY",
        "NEXTAPI_ADMIN_TOKEN",
        "NEXTAPI_CALLBACK_SECRET",
        "NEXTAPI_S3_ACCESS_KEY_ID",
        "NEXTAPI_S3_SECRET_ACCESS_KEY",
        "NEXTAPI_CONFIG",
        "NEXTAPI_WEBHOOK_ALLOW_PRIVATE",
        "NEXTAPI_VIDEO_LINK_SECRET",
        "NEXTAPI_DEV_KEY",
        "NEXTAPI_LISTEN_REUSEPORT",
        "NEXTAPI_PYTHON_DEBUG",
        "NEXTAPI_WORKER_ID",
    }
    assert not others & {option.env for option in OPTIONS}


BAD_CANDIDATES: dict[Any, list[Any]] = {
    int: [0, -1],
    float: [0.0, -1.0, 6.0],
    str: ["ftp://elsewhere"],
    list[str]: [["not-an-address"]],
}


def bad_value(option: Option) -> Any:
    """A value of the option's type its check refuses."""
    if get_origin(option.kind) is dict:
        nested = get_origin(typing.get_args(option.kind)[1]) is dict
        candidates = [{"m": {"nope": 1}}] if nested else [{"nope": 1}]
    else:
        candidates = BAD_CANDIDATES[option.kind]
    for value in candidates:
        if option.problem(value) is not None:
            return value
    raise AssertionError(f"{option.name}: no refused sample")


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.check], ids=lambda o: o.name)
def test_an_options_bounds_are_one_check_for_run_proxy_and_for_mitmdump(option: Option) -> None:
    assert option.problem(option.fresh_default()) is None, "the default must pass"
    value = bad_value(option)
    text = option.to_mitm(value)
    with pytest.raises(SystemExit, match=f"`{option.name}` "):
        load([], environ={option.env: str(text)})
    if option.mitm is None:
        return
    services = EdgeServices()
    with taddons.context(*chain(services, first=(Standalone(services),))) as tctx:
        with pytest.raises(exceptions.OptionsError, match=f"{option.mitm} "):
            tctx.options.update(**{option.mitm: text})


# --- the dev proxy's options (proxy/options/dev_schema.py) ------------------------------------

# A value on the command line for each dev option, other than its default.
DEV_SAMPLES = {
    "listen": "[::1]:9999",
    "data_dir": "elsewhere",
    "target": "http://edge.example:8080",
    "key": "nk_test_other",
    "intercept": "other.example",
    "mode": "local:my_app",
    "record": "calls.jsonl",
    "replay": "calls.jsonl",
    "replay_miss": "target",
    "forward_callbacks_to": "http://127.0.0.1:9/callbacks",
    "fail_rate": "0.5",
    "latency": "5",
    "force_status": "503",
    "queued_seconds": "3",
    "running_seconds": "4",
}
UNSET_BY_FLAGS = {"command", "env_only"}  # DevSettings' fields that `--` and `env` give


def dev_argv(option: DevOption) -> list[str]:
    assert option.cli_flag is not None
    if option.kind is bool:
        return [option.cli_flag]
    assert option.name in DEV_SAMPLES, f"no sample for --{option.name}: add one to DEV_SAMPLES"
    return [option.cli_flag, DEV_SAMPLES[option.name]]


@pytest.fixture
def no_dev_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for option in DEV_OPTIONS:
        if option.environment:
            monkeypatch.delenv(option.environment, raising=False)


def test_the_dev_command_line_has_the_dev_schemas_flags_and_no_other() -> None:
    flags = {
        string
        for action in dev_parser()._actions
        for string in action.option_strings
        if string.startswith("--")
    }
    assert flags - {"--help"} == {option.cli_flag for option in DEV_OPTIONS}


@pytest.mark.usefixtures("no_dev_environment")
def test_the_dev_command_lines_defaults_help_and_choices_are_the_dev_schemas() -> None:
    actions = {action.dest: action for action in dev_parser()._actions}
    for option in DEV_OPTIONS:
        action = actions[option.name]
        assert action.default == option.default, option.name
        assert action.help == option.help.replace("%", "%%"), option.name
        assert action.choices == option.choices, option.name
        if option.metavar is not None:
            assert action.metavar == option.metavar, option.name


@pytest.mark.usefixtures("no_dev_environment")
def test_the_dev_settings_defaults_are_the_dev_schemas() -> None:
    assert parse([]) == DevSettings()


@pytest.mark.usefixtures("no_dev_environment")
@pytest.mark.parametrize("option", DEV_OPTIONS, ids=lambda option: option.name)
def test_every_dev_option_reaches_the_dev_settings(option: DevOption) -> None:
    assert parse(dev_argv(option)) != parse([]), f"--{option.name} changes no DevSettings field"


@pytest.mark.usefixtures("no_dev_environment")
def test_every_dev_settings_field_is_given_by_a_dev_option() -> None:
    default = parse([])
    given: set[str] = set()
    for option in DEV_OPTIONS:
        changed = parse(dev_argv(option))
        given |= {
            name for name in vars(default) if getattr(changed, name) != getattr(default, name)
        }
    assert set(vars(default)) - UNSET_BY_FLAGS == given


@pytest.mark.usefixtures("no_dev_environment")
def test_only_the_dev_options_that_name_a_variable_read_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--listen` is not the edge's: NEXTAPI_LISTEN leaves the dev proxy where it was."""
    for option in [o for o in DEV_OPTIONS if not o.environment]:
        monkeypatch.setenv(f"NEXTAPI_{option.name.upper()}", DEV_SAMPLES.get(option.name, "1"))
    assert parse([]) == DevSettings()
    for option in [o for o in DEV_OPTIONS if o.environment]:
        monkeypatch.setenv(option.env, DEV_SAMPLES[option.name])
        assert parse([]) == parse(dev_argv(option)), option.name
        monkeypatch.delenv(option.env)


def test_the_dev_proxy_page_shows_the_dev_schemas_table() -> None:
    page = DEV_PROXY_PAGE.read_text(encoding="utf-8")
    assert DEV_TABLE_START in page and DEV_TABLE_END in page
    assert page == with_table(page, dev=True), (
        "docs/developers/dev-proxy.md's options table differs from proxy/options/dev_schema.py: "
        "regenerate it with `.venv/bin/python -m proxy.options --dev-markdown`"
    )
    for option in DEV_OPTIONS:
        assert f"| `{option.cli_flag}" in page, option.name


def test_the_control_planes_own_defaults_are_the_schemas() -> None:
    """control/ imports none of proxy/options (its layer), so a default it keeps is checked."""
    from control.api.access import ADMIN_FAILURES_PER_MINUTE

    assert BY_NAME["admin_auth_failures_per_minute"].default == ADMIN_FAILURES_PER_MINUTE
