"""Pricing from the catalog (proxy/core/pricing.py): the hold of a create is the most it can cost
(largest frame area, longest duration, reference videos at their longest, a floor), at the unit
price of its tier, audio, resolution and video input; charges are integers rounded up."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from random import Random
from typing import Any

import pytest

from proxy.core.pricing import Quote, charge, max_tokens, output_frames, parse_price, quote
from proxy.core.seedance.catalog import Catalog, ModelFamily, parse_family
from proxy.seedance.creates import CreateRequest, check_family, parse_create
from simulator.tasks import parse_create as simulate_create

CATALOG = Catalog.load()
NOW = 1_796_000_000.0  # 2026-11-30: the shipped retirements are in the past

PRO = "seedance-1-0-pro-250528"
PRO_FAST = "seedance-1-0-pro-fast-251015"
ONE_FIVE = "seedance-1-5-pro-251215"
TWO = "dreamina-seedance-2-0-260128"
TWO_FAST = "dreamina-seedance-2-0-fast-260128"
TWO_MINI = "dreamina-seedance-2-0-mini-260615"
TWO_FIVE = "dreamina-seedance-2-5-260628"
VIDEO = {"type": "video_url", "video_url": {"url": "https://x/v.mp4"}, "role": "reference_video"}


def request(
    model: str, *extra: dict[str, Any], text: str = "a kite", **fields: Any
) -> CreateRequest:
    body = {"model": model, "content": [{"type": "text", "text": text}, *extra], **fields}
    parsed = parse_create(json.dumps(body).encode())
    assert isinstance(parsed, CreateRequest), parsed
    return parsed


def family_of(model: str, catalog: Catalog = CATALOG) -> ModelFamily:
    family = catalog.match(model)
    assert family is not None, model
    return family


def held(model: str, *extra: dict[str, Any], catalog: Catalog = CATALOG, **fields: Any) -> Quote:
    """The quote of a create the edge accepts (retired families are priced as if active)."""
    create = request(model, *extra, **fields)
    family = family_of(model, catalog)
    if not family.retired(NOW):
        assert check_family(create, family, NOW) is None
    return quote(catalog, family, create)


def micro(usd: str) -> Fraction:
    """A USD price per million tokens as micro-credits (no markup, 1 credit per USD)."""
    return Fraction(usd) * 1_000_000


# --- holds computed by hand ----------------------------------------------------------------------


def test_the_documented_1_0_example() -> None:
    # 1080p 16:9 5 s on 1.0: 1920×1088 × 121 frames / 1024 = 246,840 tokens at 2.5 USD/M
    q = held(PRO, resolution="1080p", ratio="16:9", duration=5)
    assert (q.tokens, q.unit_price, q.amount) == (246_840, micro("2.5"), 617_100)
    flex = held(PRO, resolution="1080p", ratio="16:9", duration=5, service_tier="flex")
    assert (flex.tokens, flex.unit_price, flex.amount) == (246_840, micro("1.25"), 308_550)
    assert (flex.family, flex.service_tier, flex.audio, flex.video_input) == (
        "seedance-1-0-pro",
        "flex",
        False,
        False,
    )


@pytest.mark.parametrize(
    ("model", "fields", "tokens", "usd"),
    [
        # no ratio: the largest area at the default resolution (1.0: 1080p 16:9 1920×1088)
        (PRO, {}, 1920 * 1088 * 121 // 1024, "2.5"),
        (PRO_FAST, {"service_tier": "flex"}, 1920 * 1088 * 121 // 1024, "0.5"),
        # 2.0 at 720p: 4:3 1112×834 has the largest area (927,408 px > 1280×720's 921,600)
        (TWO, {}, 1112 * 834 * 121 // 1024, "7.0"),
        (TWO, {"ratio": "adaptive"}, 1112 * 834 * 121 // 1024, "7.0"),
        (TWO, {"ratio": "16:9"}, 1280 * 720 * 121 // 1024, "7.0"),
        (TWO, {"ratio": "9:16", "duration": 4}, 720 * 1280 * 97 // 1024, "7.0"),
        (TWO, {"resolution": "1080p", "ratio": "21:9"}, 2206 * 946 * 121 // 1024, "7.7"),
        # 4k with auto duration: the longest (15 s), the largest 4k area (4:3 3326×2494)
        (TWO, {"resolution": "4k", "duration": -1}, 3326 * 2494 * 361 // 1024, "4.0"),
        (
            TWO,
            {"resolution": "4k", "ratio": "16:9", "duration": 15},
            3840 * 2160 * 361 // 1024,
            "4.0",
        ),
        (TWO_FAST, {"resolution": "480p", "ratio": "1:1"}, 640 * 640 * 121 // 1024, "5.6"),
        (TWO_MINI, {"duration": 15, "generate_audio": False}, 1112 * 834 * 361 // 1024, "3.5"),
        # 2.5 defaults to auto: 30 s
        (TWO_FIVE, {}, 1112 * 834 * 721 // 1024, "10.7"),
        (
            TWO_FIVE,
            {"resolution": "1080p", "ratio": "16:9", "duration": 30},
            1920 * 1080 * 721 // 1024,
            "11.7",
        ),
        (
            TWO_FIVE,
            {"resolution": "480p", "ratio": "16:9", "duration": 4},
            854 * 480 * 97 // 1024,
            "10.7",
        ),
        # frames win over a duration (1.0 only)
        (PRO, {"resolution": "480p", "ratio": "16:9", "frames": 29}, 864 * 480 * 29 // 1024, "2.5"),
        (
            PRO,
            {"resolution": "720p", "ratio": "16:9", "frames": 289, "duration": 2},
            1248 * 704 * 289 // 1024,
            "2.5",
        ),
        # 1.5 pro: audio on by default, silent at half the price, flex halves again
        (ONE_FIVE, {"ratio": "16:9"}, 1280 * 720 * 121 // 1024, "2.4"),
        (ONE_FIVE, {"ratio": "16:9", "generate_audio": True}, 1280 * 720 * 121 // 1024, "2.4"),
        (ONE_FIVE, {"ratio": "16:9", "generate_audio": False}, 1280 * 720 * 121 // 1024, "1.2"),
        (ONE_FIVE, {"ratio": "16:9", "service_tier": "flex"}, 1280 * 720 * 121 // 1024, "1.2"),
        (
            ONE_FIVE,
            {"ratio": "1:1", "service_tier": "flex", "generate_audio": False, "duration": -1},
            960 * 960 * 289 // 1024,
            "0.6",
        ),
    ],
)
def test_holds_by_hand(model: str, fields: dict[str, Any], tokens: int, usd: str) -> None:
    q = held(model, **fields)
    assert q.tokens == tokens
    assert q.unit_price == micro(usd)
    assert q.amount == math.ceil(tokens * Fraction(usd))  # micro-credits, rounded up


@pytest.mark.parametrize(
    ("model", "videos", "fields", "tokens", "usd"),
    [
        # each reference video set counts at the family's longest total: 2.0 15 s = 360 frames
        (
            TWO,
            1,
            {"resolution": "1080p", "ratio": "16:9", "duration": 10},
            1920 * 1080 * (241 + 360) // 1024,
            "4.7",
        ),
        (
            TWO,
            3,
            {"resolution": "1080p", "ratio": "16:9", "duration": 10},
            1920 * 1080 * (241 + 360) // 1024,
            "4.7",
        ),
        (TWO, 2, {"resolution": "4k", "ratio": "16:9"}, 3840 * 2160 * (121 + 360) // 1024, "2.4"),
        (TWO, 1, {"ratio": "16:9"}, 1280 * 720 * (121 + 360) // 1024, "4.3"),
        (TWO_FAST, 1, {"ratio": "16:9", "duration": -1}, 1280 * 720 * (361 + 360) // 1024, "3.3"),
        (
            TWO_MINI,
            1,
            {"resolution": "480p", "ratio": "16:9"},
            864 * 496 * (121 + 360) // 1024,
            "2.1",
        ),
        # 2.5: 30 s of reference video = 720 frames
        (TWO_FIVE, 1, {"ratio": "16:9", "duration": 4}, 1280 * 720 * (97 + 720) // 1024, "6.4"),
        (
            TWO_FIVE,
            10,
            {"resolution": "1080p", "ratio": "16:9"},
            1920 * 1080 * (721 + 720) // 1024,
            "7.0",
        ),
    ],
)
def test_reference_videos_count_at_the_longest_total(
    model: str, videos: int, fields: dict[str, Any], tokens: int, usd: str
) -> None:
    q = held(model, *[VIDEO] * videos, **fields)
    assert q.video_input is True
    assert (q.tokens, q.unit_price) == (tokens, micro(usd))
    assert q.amount == math.ceil(tokens * Fraction(usd))


def test_reference_audio_and_images_are_not_video_input() -> None:
    audio = {
        "type": "audio_url",
        "audio_url": {"url": "https://x/a.mp3"},
        "role": "reference_audio",
    }
    image = {"type": "image_url", "image_url": {"url": "https://x/a.png"}, "role": "first_frame"}
    q = held(TWO, audio, image, ratio="16:9")
    assert q.video_input is False
    assert (q.tokens, q.unit_price) == (1280 * 720 * 121 // 1024, micro("7.0"))


def test_audio_default_and_explicit() -> None:
    assert held(TWO).audio is True  # on by default on 2.x
    assert held(TWO, generate_audio=False).audio is False
    assert held(TWO, generate_audio=False).unit_price == held(TWO).unit_price  # same price
    assert held(PRO).audio is False and held(PRO, generate_audio=False).audio is False
    assert held(ONE_FIVE).audio is True
    assert held(ONE_FIVE).unit_price == 2 * held(ONE_FIVE, generate_audio=False).unit_price


def test_adaptive_and_no_ratio_cover_every_ratio() -> None:
    for name, family in CATALOG.families.items():
        model = family.ids[0]
        for resolution, by_ratio in family.sizes.items():
            widest = held(model, resolution=resolution)
            assert held(model, resolution=resolution, ratio="adaptive").tokens == widest.tokens
            for ratio in by_ratio:
                explicit = held(model, resolution=resolution, ratio=ratio)
                assert explicit.tokens <= widest.tokens, (name, resolution, ratio)
                assert widest.resolution == explicit.resolution == resolution


def test_legacy_flags_are_priced_like_fields() -> None:
    flagged = held(PRO, text="a kite --rs 480p --rt 9:16 --dur 3")
    fields = held(PRO, resolution="480p", ratio="9:16", duration=3)
    assert flagged == fields
    assert fields.tokens == 480 * 864 * 73 // 1024


def test_default_resolution_is_recorded_on_the_quote() -> None:
    assert held(PRO).resolution == "1080p"
    assert held(TWO).resolution == "720p"
    assert held(TWO, resolution="4k").resolution == "4k"


# --- frames and token counts ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "fields", "frames"),
    [
        (PRO, {}, 24 * 5 + 1),  # the family's default duration
        (PRO, {"duration": 12}, 24 * 12 + 1),
        (PRO, {"frames": 33}, 33),
        (PRO, {"frames": 33, "duration": 12}, 33),
        (TWO, {"duration": -1}, 24 * 15 + 1),  # auto: the longest
        (TWO_FIVE, {}, 24 * 30 + 1),  # 2.5's default is auto
        (TWO_FIVE, {"duration": 4}, 24 * 4 + 1),
    ],
)
def test_output_frames(model: str, fields: dict[str, Any], frames: int) -> None:
    assert output_frames(family_of(model), request(model, **fields)) == frames


def min_tokens_catalog(floor: int) -> Catalog:
    spec = {
        "ids": ["floor-1-260101"],
        "resolutions": {"480p": {"16:9": [864, 496]}},
        "default_resolution": "480p",
        "durations": {"min": 2, "max": 10, "default": 2},
        "content": {"text": [], "video_url": ["reference_video"]},
        "reference_videos": {"max_count": 1, "max_total_seconds": 2, "min_tokens": floor},
        "prices": [{"usd_per_million_tokens": "2"}],
    }
    return Catalog.build({"floor-1": parse_family("floor-1", spec)})


def test_min_tokens_is_a_floor_with_a_reference_video_only() -> None:
    catalog = min_tokens_catalog(1_000_000)
    model = "floor-1-260101"
    with_video = held(model, VIDEO, catalog=catalog)
    assert with_video.tokens == 1_000_000  # 864×496×(49+48)/1024 = 40,594 is below the floor
    assert with_video.amount == 2_000_000
    without = held(model, catalog=catalog)
    assert without.tokens == 864 * 496 * 49 // 1024
    above = held(model, VIDEO, catalog=min_tokens_catalog(100), duration=10)
    assert above.tokens == 864 * 496 * (241 + 48) // 1024  # above the floor: counted


def test_max_tokens_matches_the_quote() -> None:
    create = request(TWO, VIDEO, resolution="1080p")
    assert max_tokens(family_of(TWO), create) == quote(CATALOG, family_of(TWO), create).tokens


def test_a_hold_covers_what_the_simulator_bills() -> None:
    """The simulator renders each family's documented behaviour; whatever it makes of a create,
    its token count never exceeds the hold."""
    cases = [
        (TWO, [], {}),
        (TWO, [], {"resolution": "4k", "duration": -1}),
        (TWO, [VIDEO] * 3, {"resolution": "1080p", "ratio": "adaptive"}),
        (TWO_FIVE, [VIDEO], {}),
        (PRO, [], {"frames": 289}),
        (PRO, [], {"resolution": "720p"}),
        (TWO_MINI, [], {"duration": 15}),
    ]
    for model, extra, fields in cases:
        create = request(model, *extra, **fields)
        task = simulate_create(
            create.body,
            task_id="cgt-1",
            now=NOW,
            base_url="http://sim",
            rng=Random(1),
            fail=False,
            queued_seconds=0,
            running_seconds=0,
        )
        billed = task.render("succeeded", NOW)["usage"]["completion_tokens"]
        assert billed <= quote(CATALOG, family_of(model), create).tokens, (model, fields)


# --- charges -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "tokens", "expected"),
    [
        (micro("2.5"), 0, 0),
        (micro("2.5"), 1, 3),  # 2.5 micro-credits rounded up
        (micro("0.5"), 1, 1),
        (micro("1.0"), 3, 3),
        (micro("10.7"), 3, 33),  # 32.1
        (micro("7.7"), 246_840, 1_900_668),  # exactly
        (Fraction(1, 3), 3_000_000, 1),
        (Fraction(1, 3), 3_000_001, 2),
    ],
)
def test_charge_rounds_up(unit: Fraction, tokens: int, expected: int) -> None:
    amount = charge(unit, tokens)
    assert type(amount) is int and amount == expected


def test_charge_is_the_smallest_integer_covering_the_exact_amount() -> None:
    for unit in (micro("0.6"), micro("11.7"), micro("2.4") * Fraction(112, 100), Fraction(7, 3)):
        for tokens in (1, 7, 999_999, 246_840, 10**12 + 1):
            amount = charge(unit, tokens)
            assert amount * 10**6 >= tokens * unit > (amount - 1) * 10**6


@pytest.mark.parametrize("tokens", [-1, 1.5, True, "5", None])
def test_charge_refuses_odd_token_counts(tokens: Any) -> None:
    with pytest.raises(ValueError):
        charge(micro("1"), tokens)


@pytest.mark.parametrize(
    ("markup", "credits", "unit"),
    [
        ("10", "1", micro("2.5") * Fraction(110, 100)),
        ("12.5", "1", micro("2.5") * Fraction(1125, 1000)),
        ("0", "100", micro("250")),
        ("20", "0.5", micro("1.5")),
    ],
)
def test_the_unit_price_of_a_quote_includes_markup(
    markup: str, credits: str, unit: Fraction
) -> None:
    catalog = Catalog.from_wire(
        CATALOG.to_wire() | {"markup_percent": markup, "credits_per_usd": credits}
    )
    q = held(PRO, catalog=catalog, resolution="1080p", ratio="16:9", duration=5)
    assert q.unit_price == unit
    assert q.amount == math.ceil(246_840 * unit / 1_000_000)
    assert q.tokens == 246_840  # markup changes the price, not the tokens


@pytest.mark.parametrize(
    ("text", "value"),
    [("2500000", Fraction(2_500_000)), ("10700000/3", Fraction(10_700_000, 3)), ("0", Fraction(0))],
)
def test_parse_price_reads_recorded_unit_prices_exactly(text: str, value: Fraction) -> None:
    assert parse_price(text) == value
    assert parse_price(str(value)) == value


@pytest.mark.parametrize("text", ["-1", "abc", ""])
def test_parse_price_refuses_bad_text(text: str) -> None:
    with pytest.raises(ValueError):
        parse_price(text)
