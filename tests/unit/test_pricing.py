"""The price table: model matching, token counts, costs and estimates in integer micro-credits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proxy.pricing import DEFAULT_PATH, VIDEO_SIZES, PriceTable, video_size
from proxy.seedance import CreateRequest, parse_create

PRICES = PriceTable.load()

FAMILIES = {
    # family: (default micro-credits per million tokens, flex, default resolution, max duration)
    "seedance-1-0-pro": (2_500_000, 1_250_000, "1080p", 12),
    "seedance-1-0-pro-fast": (1_000_000, 500_000, "1080p", 12),
    "seedance-1-0-lite-t2v": (1_800_000, 900_000, "720p", 12),
    "seedance-1-0-lite-i2v": (1_800_000, 900_000, "720p", 12),
    "seedance-1-5-pro": (2_400_000, 1_200_000, "720p", 12),
    "seedance-2-0": (7_000_000, 3_500_000, "720p", 12),
}


def request(model: str = "seedance-1-0-pro-250528", **fields: Any) -> CreateRequest:
    body = {"model": model, "content": [{"type": "text", "text": "a kite"}], **fields}
    parsed = parse_create(json.dumps(body).encode())
    assert isinstance(parsed, CreateRequest), parsed
    return parsed


def table(text: str, tmp_path: Path) -> PriceTable:
    path = tmp_path / "prices.toml"
    path.write_text(text)
    return PriceTable.load(path)


MINIMAL = """
markup_percent = {markup}
credits_per_usd = {credits}
[models.seedance-1-0-pro]
usd_per_million_tokens = {{ default = "2.5", flex = "1.25" }}
default_resolution = "1080p"
durations = [2, 12]
"""


# --- matching ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("seedance-1-0-pro-250528", "seedance-1-0-pro"),
        ("seedance-1-0-pro", "seedance-1-0-pro"),
        ("doubao-seedance-1-0-pro-250528", "seedance-1-0-pro"),
        ("seedance-1-0-pro-fast-251015", "seedance-1-0-pro-fast"),
        ("doubao-seedance-1-0-pro-fast-251015", "seedance-1-0-pro-fast"),
        ("seedance-1-0-lite-t2v-250428", "seedance-1-0-lite-t2v"),
        ("seedance-1-0-lite-i2v-250428", "seedance-1-0-lite-i2v"),
        ("seedance-1-5-pro-251215", "seedance-1-5-pro"),
        ("dreamina-seedance-2-0-260128", "seedance-2-0"),
        ("doubao-seedance-2-0-260128", "seedance-2-0"),
        (" seedance-1-5-pro-251215 ", "seedance-1-5-pro"),
    ],
)
def test_model_ids_match_their_family(model: str, family: str) -> None:
    price = PRICES.match(model)
    assert price is not None and price.family == family


@pytest.mark.parametrize(
    "model",
    [
        "seedance-1-0",
        "seedance-1-0-pro-25052",
        "seedance-1-0-pro-2505288",
        "seedance-1-0-pro-x",
        "seedance-3-0-270101",
        "doubao-seededit-3-0-i2i-250628",
        "ep-20250528123456-abcde",
        "ep-seedance-1-0-pro",
        "",
    ],
)
def test_unknown_models_are_none(model: str) -> None:
    assert PRICES.match(model) is None


def test_endpoint_ids_map_only_through_the_endpoints_table(tmp_path: Path) -> None:
    text = MINIMAL.format(markup=0, credits=1) + '[endpoints]\nep-20250101-x = "seedance-1-0-pro"\n'
    prices = table(text, tmp_path)
    price = prices.match("ep-20250101-x")
    assert price is not None and price.family == "seedance-1-0-pro"
    assert prices.match("ep-20250101-y") is None
    assert prices.cost("ep-20250101-x", "default", 1_000_000) == 2_500_000


def test_default_table_is_next_to_the_package() -> None:
    assert DEFAULT_PATH.name == "prices.toml" and DEFAULT_PATH.parent.name == "config"
    assert DEFAULT_PATH.is_file()
    assert set(PRICES.models) == set(FAMILIES)
    assert (PRICES.markup_percent, PRICES.credits_per_usd) == (0, 1)


@pytest.mark.parametrize("family", FAMILIES)
def test_family_settings(family: str) -> None:
    default, flex, resolution, longest = FAMILIES[family]
    price = PRICES.models[family]
    assert price.micro_credits_per_million["default"] == default
    assert price.micro_credits_per_million["flex"] == flex == default // 2
    assert (price.default_resolution, price.max_duration) == (resolution, longest)
    assert price.generate_audio == (family in ("seedance-1-5-pro", "seedance-2-0"))


# --- tokens ------------------------------------------------------------------------------------


def test_documented_example() -> None:
    r = request(resolution="1080p", ratio="16:9", duration=5)
    assert PRICES.tokens(r) == 1920 * 1088 * 121 // 1024 == 246_840
    assert PRICES.estimate(r) == 617_100  # 0.6171 credits
    flex = request(resolution="1080p", ratio="16:9", service_tier="flex")
    assert PRICES.estimate(flex) == 308_550


@pytest.mark.parametrize("ratio", [r for r in VIDEO_SIZES])
@pytest.mark.parametrize("resolution", ["480p", "720p", "1080p"])
@pytest.mark.parametrize("duration", [2, 5, 12])
def test_tokens_follow_the_formula(ratio: str, resolution: str, duration: int) -> None:
    width, height = VIDEO_SIZES[ratio][resolution]
    r = request(resolution=resolution, ratio=ratio, duration=duration)
    assert PRICES.tokens(r) == width * height * (24 * duration + 1) // 1024


def test_size_table_matches_the_simulator() -> None:
    assert VIDEO_SIZES["16:9"] == {"480p": (864, 480), "720p": (1280, 720), "1080p": (1920, 1088)}
    for resolution, (width, height) in VIDEO_SIZES["16:9"].items():
        assert VIDEO_SIZES["9:16"][resolution] == (height, width)
        assert VIDEO_SIZES["4:3"][resolution][::-1] == VIDEO_SIZES["3:4"][resolution]


@pytest.mark.parametrize("resolution", ["480p", "720p", "1080p"])
def test_adaptive_and_missing_ratio_count_as_the_largest_area(resolution: str) -> None:
    largest = max(w * h for w, h in (sizes[resolution] for sizes in VIDEO_SIZES.values()))
    assert video_size(resolution, "adaptive") == video_size(resolution, None)
    width, height = video_size(resolution, "adaptive")
    assert width * height == largest
    adaptive = PRICES.tokens(request(resolution=resolution, ratio="adaptive"))
    assert adaptive == PRICES.tokens(request(resolution=resolution))
    for ratio in VIDEO_SIZES:
        assert adaptive >= PRICES.tokens(request(resolution=resolution, ratio=ratio))


def test_frames_win_over_duration() -> None:
    r = request(resolution="480p", ratio="16:9", duration=12, frames=29)
    assert PRICES.tokens(r) == 864 * 480 * 29 // 1024
    assert PRICES.frames(request(frames=289)) == 289


@pytest.mark.parametrize(
    ("model", "resolution"),
    [
        ("seedance-1-0-pro-250528", "1080p"),
        ("seedance-1-0-pro-fast-251015", "1080p"),
        ("seedance-1-0-lite-t2v-250428", "720p"),
        ("seedance-1-5-pro-251215", "720p"),
        ("dreamina-seedance-2-0-260128", "720p"),
    ],
)
def test_missing_resolution_and_duration_use_the_defaults(model: str, resolution: str) -> None:
    r = request(model, ratio="16:9")
    assert PRICES.tokens(r) == PRICES.tokens(request(model, ratio="16:9", resolution=resolution))
    assert PRICES.frames(r) == 24 * 5 + 1


def test_auto_duration_counts_as_the_family_maximum() -> None:
    model = "seedance-1-5-pro-251215"
    auto = request(model, resolution="720p", ratio="16:9", duration=-1)
    assert PRICES.frames(auto) == 24 * 12 + 1
    assert PRICES.tokens(auto) == 1280 * 720 * 289 // 1024


def test_tokens_and_estimate_of_an_unknown_model_raise_key_error() -> None:
    with pytest.raises(KeyError):
        PRICES.tokens(request("nope-1"))
    with pytest.raises(KeyError):
        PRICES.estimate(request("nope-1"))
    with pytest.raises(KeyError):
        PRICES.cost("nope-1", "default", 1)
    with pytest.raises(KeyError):
        PRICES.cost("seedance-1-0-pro", "priority", 1)


# --- cost and estimate -------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_cost_and_estimate_per_family(family: str) -> None:
    default, flex, _, _ = FAMILIES[family]
    model = f"{family}-250101"
    assert PRICES.cost(model, "default", 1_000_000) == default
    assert PRICES.cost(model, "flex", 1_000_000) == flex
    r = request(model, resolution="1080p", ratio="16:9", duration=5)
    assert PRICES.estimate(r) == -(-246_840 * default // 1_000_000)
    flexed = request(model, resolution="1080p", ratio="16:9", duration=5, service_tier="flex")
    assert PRICES.estimate(flexed) == -(-246_840 * flex // 1_000_000)
    assert PRICES.estimate(flexed) * 2 in (PRICES.estimate(r), PRICES.estimate(r) + 1)


def test_one_five_pro_audio_and_silent() -> None:
    model = "seedance-1-5-pro-251215"
    assert PRICES.cost(model, "default", 1_000_000) == 2_400_000  # audio by default
    assert PRICES.cost(model, "default", 1_000_000, generate_audio=True) == 2_400_000
    assert PRICES.cost(model, "default", 1_000_000, generate_audio=False) == 1_200_000
    assert PRICES.cost(model, "flex", 1_000_000, generate_audio=True) == 1_200_000
    assert PRICES.cost(model, "flex", 1_000_000, generate_audio=False) == 600_000
    base = {"resolution": "720p", "ratio": "16:9", "duration": 5}
    tokens = 1280 * 720 * 121 // 1024
    assert PRICES.estimate(request(model, **base)) == -(-tokens * 24 // 10)
    silent = request(model, generate_audio=False, **base)
    assert PRICES.estimate(silent) == -(-tokens * 12 // 10)


def test_audio_does_not_change_prices_without_silent_keys() -> None:
    for model in ("seedance-1-0-pro", "seedance-2-0"):
        assert PRICES.cost(model, "default", 10**6, generate_audio=False) == PRICES.cost(
            model, "default", 10**6, generate_audio=True
        )


def test_cost_rounds_up_and_is_integer() -> None:
    assert PRICES.cost("seedance-1-0-pro", "default", 0) == 0
    assert PRICES.cost("seedance-1-0-pro", "default", 1) == 3  # 2.5 micro-credits
    assert PRICES.cost("seedance-1-0-pro-fast", "flex", 1) == 1  # 0.5
    assert PRICES.cost("seedance-1-0-pro-fast", "default", 3) == 3
    for tokens in (1, 7, 999_999, 246_840, 10**12 + 1):
        amount = PRICES.cost("seedance-1-5-pro", "flex", tokens, generate_audio=False)
        assert type(amount) is int and amount * 10**6 >= tokens * 600_000
        assert (amount - 1) * 10**6 < tokens * 600_000


@pytest.mark.parametrize("tokens", [-1, 1.5, True, "5"])
def test_cost_refuses_odd_token_counts(tokens: Any) -> None:
    with pytest.raises(ValueError):
        PRICES.cost("seedance-1-0-pro", "default", tokens)


@pytest.mark.parametrize(
    ("markup", "credits", "tokens", "expected"),
    [
        (0, 1, 246_840, 617_100),
        (10, 1, 246_840, 678_810),
        ('"12.5"', 1, 246_840, 694_238),  # 694,237.5 rounded up
        (0, 100, 246_840, 61_710_000),
        (0, '"0.5"', 246_840, 308_550),
        (20, '"0.5"', 1, 2),  # 1.5 rounded up
        ('"0.001"', 1, 1, 3),
    ],
)
def test_markup_and_exchange(
    markup: Any, credits: Any, tokens: int, expected: int, tmp_path: Path
) -> None:
    prices = table(MINIMAL.format(markup=markup, credits=credits), tmp_path)
    assert prices.cost("seedance-1-0-pro-250528", "default", tokens) == expected


# --- malformed tables --------------------------------------------------------------------------

FAMILY = '[models.seedance-1-0-pro]\ndefault_resolution = "1080p"\ndurations = [2, 12]\n'
PRICE = 'usd_per_million_tokens = { default = "2.5", flex = "1.25" }\n'


@pytest.mark.parametrize(
    "text",
    [
        "this is = = not toml",
        "markup_percent = 0\n",  # no models
        "markup_pecent = 0\n" + FAMILY + PRICE,  # typo
        "markup_percent = 0.5\n" + FAMILY + PRICE,  # a float
        'markup_percent = "-1"\n' + FAMILY + PRICE,
        "markup_percent = -1\n" + FAMILY + PRICE,
        "credits_per_usd = 0\n" + FAMILY + PRICE,
        'credits_per_usd = "abc"\n' + FAMILY + PRICE,
        "credits_per_usd = true\n" + FAMILY + PRICE,
        FAMILY + 'usd_per_million_tokens = { default = 2.5, flex = "1.25" }\n',
        FAMILY + 'usd_per_million_tokens = { default = "2.5" }\n',
        FAMILY + 'usd_per_million_tokens = { default = "2.5", flex = "1", turbo = "1" }\n',
        FAMILY + 'usd_per_million_tokens = { default = "1", flex = "1", default_silent = "1" }\n',
        FAMILY + 'usd_per_million_tokens = { default = "0.0000001", flex = "1" }\n',
        FAMILY,  # no prices
        FAMILY + PRICE + "colour = 1\n",
        FAMILY + PRICE + "generate_audio = 1\n",
        FAMILY.replace('"1080p"', '"4k"') + PRICE,
        FAMILY.replace("[2, 12]", "[12, 2]") + PRICE,
        FAMILY.replace("[2, 12]", "[2]") + PRICE,
        FAMILY.replace("[2, 12]", '["2", "12"]') + PRICE,
        FAMILY + PRICE + '[endpoints]\nep-1 = "seedance-9"\n',
        "endpoints = 5\n" + FAMILY + PRICE,
        'models = "none"\n',
    ],
)
def test_malformed_tables_raise_value_error(text: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="price table"):
        table(text, tmp_path)


def test_a_missing_file_raises_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be read"):
        PriceTable.load(tmp_path / "absent.toml")


def test_minimal_table_loads(tmp_path: Path) -> None:
    prices = table(FAMILY + PRICE, tmp_path)
    price = prices.match("seedance-1-0-pro-250528")
    assert price is not None and price.generate_audio is False and price.min_duration == 2
    assert (prices.markup_percent, prices.credits_per_usd) == (0, 1)
