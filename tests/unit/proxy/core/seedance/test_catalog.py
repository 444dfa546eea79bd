"""The model catalog (proxy/core/seedance/catalog.py): the shipped families carry the values of
SEEDANCE.md's table (docs/contributors/seedance-upstream.md), model ids match their family,
every malformed field of a family is refused with its `param`, price rules must price every
combination exactly once, and the wire form round-trips exactly (no floats anywhere)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from proxy.core.seedance.catalog import (
    DEFAULT_PATH,
    Catalog,
    CatalogError,
    ModelFamily,
    amount,
    parse_family,
)

SHIPPED = Catalog.load()


def moment(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


NOW = moment("2026-11-29T12:00:00")

# --- the shipped catalog against SEEDANCE.md's table ------------------------------------------

# family: (ids, resolutions, default resolution, (min, max, default, auto), frames,
#          (audio supported, audio default), service tiers, draft)
ONE_X = ("480p", "720p", "1080p")
TABLE: dict[str, tuple[Any, ...]] = {
    "seedance-1-0-pro": (
        ("seedance-1-0-pro-250528",),
        ONE_X,
        "1080p",
        (2, 12, 5, False),
        True,
        (False, False),
        ("default", "flex"),
        False,
    ),
    "seedance-1-0-pro-fast": (
        ("seedance-1-0-pro-fast-251015",),
        ONE_X,
        "1080p",
        (2, 12, 5, False),
        True,
        (False, False),
        ("default", "flex"),
        False,
    ),
    "seedance-1-0-lite-t2v": (
        ("seedance-1-0-lite-t2v-250428",),
        ONE_X,
        "720p",
        (2, 12, 5, False),
        True,
        (False, False),
        ("default", "flex"),
        False,
    ),
    "seedance-1-0-lite-i2v": (
        ("seedance-1-0-lite-i2v-250428",),
        ONE_X,
        "720p",
        (2, 12, 5, False),
        True,
        (False, False),
        ("default", "flex"),
        False,
    ),
    "seedance-1-5-pro": (
        ("seedance-1-5-pro-251215",),
        ONE_X,
        "720p",
        (4, 12, 5, True),
        False,
        (True, True),
        ("default", "flex"),
        True,
    ),
    "seedance-2-0": (
        ("dreamina-seedance-2-0-260128",),
        ("480p", "720p", "1080p", "4k"),
        "720p",
        (4, 15, 5, True),
        False,
        (True, True),
        ("default",),
        False,
    ),
    "seedance-2-0-fast": (
        ("dreamina-seedance-2-0-fast-260128",),
        ("480p", "720p"),
        "720p",
        (4, 15, 5, True),
        False,
        (True, True),
        ("default",),
        False,
    ),
    "seedance-2-0-mini": (
        ("dreamina-seedance-2-0-mini-260615",),
        ("480p", "720p"),
        "720p",
        (4, 15, 5, True),
        False,
        (True, True),
        ("default",),
        False,
    ),
    "seedance-2-5": (
        ("dreamina-seedance-2-5-260628",),
        ONE_X,
        "720p",
        (4, 30, -1, True),
        False,
        (True, True),
        ("default",),
        True,
    ),
}


def test_the_shipped_catalog_has_every_family_of_the_table() -> None:
    assert DEFAULT_PATH.name == "models.toml" and DEFAULT_PATH.parent.name == "config"
    assert set(SHIPPED.families) == set(TABLE)
    assert (SHIPPED.markup_percent, SHIPPED.credits_per_usd) == (0, 1)


@pytest.mark.parametrize("name", TABLE)
def test_shipped_family_values(name: str) -> None:
    ids, resolutions, default, durations, frames, audio, tiers, draft = TABLE[name]
    family = SHIPPED.families[name]
    assert family.ids == ids
    assert tuple(family.sizes) == resolutions
    assert family.default_resolution == default
    assert (
        family.min_duration,
        family.max_duration,
        family.default_duration,
        family.auto_duration,
    ) == durations
    assert (family.frames == (29, 289, 4)) is frames  # 1.0 only: 25+4n in 29–289
    if not frames:
        assert family.frames is None
    assert (family.audio_supported, family.audio_default) == audio
    assert family.service_tiers == tiers
    assert family.draft is draft
    assert family.fps == 24


def documented_usd(name: str, tier: str, audio: bool, resolution: str, video: bool) -> Fraction:
    """SEEDANCE.md's price column, read literally (flex is half the price on 1.x)."""
    if name == "seedance-1-0-pro":
        usd = "2.5"
    elif name == "seedance-1-0-pro-fast":
        usd = "1.0"
    elif name.startswith("seedance-1-0-lite"):
        usd = "1.8"
    elif name == "seedance-1-5-pro":
        usd = "2.4" if audio else "1.2"
    elif name == "seedance-2-0":
        by_resolution = {"1080p": "4.7", "4k": "2.4"} if video else {"1080p": "7.7", "4k": "4.0"}
        usd = by_resolution.get(resolution, "4.3" if video else "7.0")
    elif name == "seedance-2-0-fast":
        usd = "3.3" if video else "5.6"
    elif name == "seedance-2-0-mini":
        usd = "2.1" if video else "3.5"
    elif name == "seedance-2-5":
        if video:
            usd = "7.0" if resolution == "1080p" else "6.4"
        else:
            usd = "11.7" if resolution == "1080p" else "10.7"
    else:
        raise AssertionError(name)
    return Fraction(usd) / (2 if tier == "flex" else 1)


PRICED = [
    (name, combination)
    for name, family in SHIPPED.families.items()
    for combination in family.combinations()
]


@pytest.mark.parametrize(
    ("name", "combination"),
    PRICED,
    ids=[f"{name}-{'-'.join(map(str, c.values()))}" for name, c in PRICED],
)
def test_every_shipped_combination_has_the_documented_price(
    name: str, combination: dict[str, Any]
) -> None:
    family = SHIPPED.families[name]
    expected = documented_usd(name, *combination.values())
    assert family.usd_per_million(*combination.values()) == expected
    # with no markup and 1 credit per USD, the unit price is that many credits per M tokens
    assert SHIPPED.unit_price(family, *combination.values()) == expected * 1_000_000


@pytest.mark.parametrize(
    ("name", "resolution", "video", "usd"),
    [
        ("seedance-2-0", "720p", False, "7.0"),
        ("seedance-2-0", "1080p", False, "7.7"),
        ("seedance-2-0", "4k", False, "4.0"),
        ("seedance-2-0", "720p", True, "4.3"),
        ("seedance-2-0", "1080p", True, "4.7"),
        ("seedance-2-0", "4k", True, "2.4"),
        ("seedance-2-0-fast", "480p", True, "3.3"),
        ("seedance-2-0-mini", "720p", True, "2.1"),
        ("seedance-2-5", "480p", False, "10.7"),
        ("seedance-2-5", "1080p", False, "11.7"),
        ("seedance-2-5", "720p", True, "6.4"),
        ("seedance-2-5", "1080p", True, "7.0"),
    ],
)
def test_2x_prices_by_resolution_and_video_input(
    name: str, resolution: str, video: bool, usd: str
) -> None:
    family = SHIPPED.families[name]
    for audio in (True, False):  # 2.x is priced the same with or without audio
        assert family.usd_per_million("default", audio, resolution, video) == Fraction(usd)


def test_combinations_cover_the_price_dimensions() -> None:
    two = SHIPPED.families["seedance-2-0"]
    assert len(two.combinations()) == 1 * 2 * 4 * 2  # tier × audio × resolution × video input
    one = SHIPPED.families["seedance-1-0-pro"]
    assert {(c["audio"], c["video_input"]) for c in one.combinations()} == {(False, False)}
    assert len(one.combinations()) == 2 * 3  # flex and default × 3 resolutions


@pytest.mark.parametrize(
    ("name", "resolution", "ratio", "size"),
    [
        ("seedance-1-0-pro", "480p", "16:9", (864, 480)),
        ("seedance-1-0-pro", "720p", "16:9", (1248, 704)),
        ("seedance-1-0-pro", "1080p", "16:9", (1920, 1088)),
        ("seedance-1-0-pro", "1080p", "21:9", (2176, 928)),
        ("seedance-1-0-lite-t2v", "1080p", "16:9", (1920, 1088)),
        ("seedance-1-5-pro", "480p", "16:9", (864, 496)),
        ("seedance-1-5-pro", "1080p", "21:9", (2206, 946)),
        ("seedance-2-0", "720p", "16:9", (1280, 720)),
        ("seedance-2-0", "1080p", "16:9", (1920, 1080)),
        ("seedance-2-0", "1080p", "21:9", (2206, 946)),
        ("seedance-2-0", "4k", "16:9", (3840, 2160)),
        ("seedance-2-0-fast", "480p", "16:9", (864, 496)),
        ("seedance-2-5", "480p", "16:9", (854, 480)),
        ("seedance-2-5", "1080p", "16:9", (1920, 1080)),
    ],
)
def test_shipped_pixel_sizes(name: str, resolution: str, ratio: str, size: tuple[int, int]) -> None:
    assert SHIPPED.families[name].size(resolution, ratio) == size


@pytest.mark.parametrize("name", TABLE)
def test_every_shipped_resolution_has_the_six_ratios_and_adaptive(name: str) -> None:
    family = SHIPPED.families[name]
    for resolution, by_ratio in family.sizes.items():
        assert set(by_ratio) == {"21:9", "16:9", "4:3", "1:1", "3:4", "9:16"}, resolution
        for ratio, (width, height) in by_ratio.items():
            flipped = ":".join(reversed(ratio.split(":")))
            if flipped in by_ratio:
                assert by_ratio[flipped] == (height, width), (resolution, ratio)
    assert family.adaptive_ratio is True


def test_2x_families_take_reference_videos_and_audio_1x_do_not() -> None:
    for name, family in SHIPPED.families.items():
        if name.startswith("seedance-2-"):
            assert family.content["video_url"] == ("reference_video",)
            assert family.content["audio_url"] == ("reference_audio",)
            assert family.max_reference_videos >= 1 and family.max_reference_video_seconds >= 15
        else:
            assert "video_url" not in family.content and "audio_url" not in family.content
            assert family.max_reference_videos == 0
    assert SHIPPED.families["seedance-2-5"].max_reference_video_seconds == 30
    assert "draft_task" in SHIPPED.families["seedance-2-5"].content
    assert "draft_task" not in SHIPPED.families["seedance-2-0"].content


def test_retired_families_name_an_active_replacement() -> None:
    retired = {
        name: family for name, family in SHIPPED.families.items() if family.status == "retired"
    }
    assert set(retired) == {"seedance-1-0-lite-t2v", "seedance-1-0-lite-i2v", "seedance-1-5-pro"}
    assert retired["seedance-1-5-pro"].replacement == "dreamina-seedance-2-0-mini-260615"
    assert retired["seedance-1-5-pro"].retired_at == moment("2026-09-21T00:00:00")
    for name, family in retired.items():
        assert family.retired(NOW), name
        assert family.replacement is not None
        replacement = SHIPPED.match(family.replacement)
        assert replacement is not None and not replacement.retired(NOW), name
    active = [f for f in SHIPPED.families.values() if f.status == "active"]
    assert active and not any(family.retired(NOW) for family in active)


# --- matching model ids --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "name"),
    [
        *[(family[0][0], name) for name, family in TABLE.items()],
        ("seedance-1-0-pro", "seedance-1-0-pro"),
        ("doubao-seedance-1-0-pro-250528", "seedance-1-0-pro"),
        ("seedance-1-0-pro-251231", "seedance-1-0-pro"),  # another dated version
        ("doubao-seedance-1-0-pro-fast-251015", "seedance-1-0-pro-fast"),
        ("seedance-1-0-pro-fast", "seedance-1-0-pro-fast"),
        ("doubao-seedance-1-5-pro-251215", "seedance-1-5-pro"),
        ("seedance-2-0-260128", "seedance-2-0"),
        ("doubao-seedance-2-0-260128", "seedance-2-0"),
        ("dreamina-seedance-2-0-261010", "seedance-2-0"),
        ("dreamina-seedance-2-0-fast-270101", "seedance-2-0-fast"),
        ("dreamina-seedance-2-5", "seedance-2-5"),
        (" dreamina-seedance-2-0-mini-260615 ", "seedance-2-0-mini"),
    ],
)
def test_model_ids_match_their_family(model: str, name: str) -> None:
    family = SHIPPED.match(model)
    assert family is not None and family.name == name


@pytest.mark.parametrize(
    "model",
    [
        "seedance-1-0",
        "seedance-1-0-pro-25052",  # five digits: not a dated version
        "seedance-1-0-pro-2505288",
        "seedance-1-0-pro-x",
        "seedance-3-0-270101",
        "dreamina-seedance-3-0-270101",
        "doubao-seededit-3-0-i2i-250628",
        "ep-20250528123456-abcde",
        "ep-seedance-1-0-pro",  # endpoint ids never match by name
        "",
    ],
)
def test_unknown_models_are_none(model: str) -> None:
    assert SHIPPED.match(model) is None


def test_endpoint_ids_match_only_through_aliases() -> None:
    spec = family_spec(aliases=["ep-20250101123456-abcde"])
    catalog = Catalog.build({"seedance-1-0-pro": parse_family("seedance-1-0-pro", spec)})
    family = catalog.match("ep-20250101123456-abcde")
    assert family is not None and family.name == "seedance-1-0-pro"
    assert family.ids == ("m-1-250101", "ep-20250101123456-abcde")
    assert catalog.match("ep-20250101123456-zzzzz") is None
    assert catalog.match("m-1-250101") is family


def test_an_id_claimed_by_two_families_is_refused() -> None:
    first = parse_family("a", family_spec())
    second = parse_family("b", family_spec(aliases=["m-1-250101"]))
    with pytest.raises(CatalogError) as caught:
        Catalog.build({"a": first, "b": second})
    assert caught.value.param == "b.ids" and "`a`" in caught.value.message
    wire = {"families": {"a": family_spec(), "b": family_spec()}}
    with pytest.raises(CatalogError) as caught:
        Catalog.from_wire(wire)
    assert caught.value.param == "b.ids"


# --- one family's document: every malformed field with its param ---------------------------------


def family_spec(**changes: Any) -> dict[str, Any]:
    """A valid family document, with top-level fields replaced (DROP removes one)."""
    spec: dict[str, Any] = {
        "description": "test family",
        "ids": ["m-1-250101"],
        "resolutions": {
            "720p": {"16:9": [1280, 720], "1:1": [960, 960]},
            "1080p": {"16:9": [1920, 1080]},
        },
        "default_resolution": "720p",
        "durations": {"min": 2, "max": 12, "default": 5, "auto": False},
        "service_tiers": ["default", "flex"],
        "prices": [
            {"usd_per_million_tokens": "1.0"},
            {"service_tier": "flex", "usd_per_million_tokens": "0.5"},
        ],
    }
    for key, value in changes.items():
        if value is DROP:
            spec.pop(key, None)
        else:
            spec[key] = value
    return spec


DROP = object()
SIZES = {"720p": {"16:9": [1280, 720]}}
DURATIONS = {"min": 2, "max": 12}
BASE = {"usd_per_million_tokens": "1"}
FLEX = {"service_tier": "flex", "usd_per_million_tokens": "0.5"}
VIDEO = {"video_url": ["reference_video"], "text": []}

MALFORMED: list[tuple[dict[str, Any], str]] = [
    ({"colour": "red"}, "f.colour"),
    ({"ids": DROP}, "f.ids"),
    ({"ids": None}, "f.ids"),
    ({"resolutions": DROP}, "f.resolutions"),
    ({"default_resolution": DROP}, "f.default_resolution"),
    ({"durations": DROP}, "f.durations"),
    ({"prices": DROP}, "f.prices"),
    ({"description": 5}, "f.description"),
    ({"description": "x" * 201}, "f.description"),
    ({"ids": "m-1"}, "f.ids"),
    ({"ids": ["m 1"]}, "f.ids"),
    ({"ids": [5]}, "f.ids"),
    ({"ids": ["m-1", "m-1"]}, "f.ids"),
    ({"aliases": ["ep-1", "ep-1"]}, "f.aliases"),
    ({"aliases": "ep-1"}, "f.aliases"),
    ({"resolutions": []}, "f.resolutions"),
    ({"resolutions": {}}, "f.resolutions"),
    ({"resolutions": {"720P": {"16:9": [1280, 720]}}}, "f.resolutions.720P"),
    ({"resolutions": {"hd": {"16:9": [1280, 720]}}}, "f.resolutions.hd"),
    ({"resolutions": {"720p": [1280, 720]}}, "f.resolutions.720p"),
    ({"resolutions": {"720p": {}}}, "f.resolutions.720p"),
    ({"resolutions": {"720p": {"16x9": [1280, 720]}}}, "f.resolutions.720p.16x9"),
    ({"resolutions": {"720p": {"0:9": [1280, 720]}}}, "f.resolutions.720p.0:9"),
    ({"resolutions": {"720p": {"16:9": [1280]}}}, "f.resolutions.720p.16:9"),
    ({"resolutions": {"720p": {"16:9": [1280, "720"]}}}, "f.resolutions.720p.16:9"),
    ({"resolutions": {"720p": {"16:9": [True, 720]}}}, "f.resolutions.720p.16:9"),
    ({"resolutions": {"720p": {"16:9": [1280.0, 720]}}}, "f.resolutions.720p.16:9"),
    ({"resolutions": {"720p": {"16:9": [8, 720]}}}, "f.resolutions.720p.16:9"),
    ({"resolutions": {"720p": {"16:9": [9000, 720]}}}, "f.resolutions.720p.16:9"),
    ({"default_resolution": "4k"}, "f.default_resolution"),
    ({"durations": [2, 12]}, "f.durations"),
    ({"durations": {"max": 12}}, "f.durations.min"),
    ({"durations": {"min": 0, "max": 12}}, "f.durations.min"),
    ({"durations": {"min": True, "max": 12}}, "f.durations.min"),
    ({"durations": {"min": "2", "max": 12}}, "f.durations.min"),
    ({"durations": {"min": 2}}, "f.durations.max"),
    ({"durations": {"min": 12, "max": 2}}, "f.durations.max"),
    ({"durations": {"min": 2, "max": 601}}, "f.durations.max"),
    ({"durations": {**DURATIONS, "default": 13}}, "f.durations.default"),
    ({"durations": {**DURATIONS, "default": 1}}, "f.durations.default"),
    ({"durations": {**DURATIONS, "default": 0}}, "f.durations.default"),
    ({"durations": {**DURATIONS, "default": -1}}, "f.durations.default"),  # -1 needs auto
    ({"durations": {**DURATIONS, "default": -2, "auto": True}}, "f.durations.default"),
    ({"durations": {**DURATIONS, "auto": "yes"}}, "f.durations.auto"),
    ({"audio": True}, "f.audio"),
    ({"audio": {"supported": 1}}, "f.audio.supported"),
    ({"audio": {"supported": True, "default": "on"}}, "f.audio.default"),
    ({"audio": {"supported": False, "default": True}}, "f.audio.default"),
    ({"service_tiers": []}, "f.service_tiers"),
    ({"service_tiers": "default"}, "f.service_tiers"),
    ({"service_tiers": ["default", "priority"]}, "f.service_tiers"),
    ({"service_tiers": ["default", "default"]}, "f.service_tiers"),
    ({"content": ["text"]}, "f.content"),
    ({"content": {"video_url": ["reference_video"]}}, "f.content"),  # neither text nor image
    ({"content": {"text": [], "gif_url": []}}, "f.content.gif_url"),
    ({"content": {"text": [], "image_url": "first_frame"}}, "f.content.image_url"),
    ({"content": {"text": [], "image_url": ["First Frame"]}}, "f.content.image_url"),
    ({"content": VIDEO}, "f.reference_videos.max_count"),  # video items need a count
    ({"content": VIDEO, "reference_videos": {"max_count": 0}}, "f.reference_videos.max_count"),
    ({"reference_videos": 3}, "f.reference_videos"),
    ({"reference_videos": {"max_count": -1}}, "f.reference_videos.max_count"),
    ({"reference_videos": {"max_count": 101}}, "f.reference_videos.max_count"),
    ({"reference_videos": {"max_total_seconds": "15"}}, "f.reference_videos.max_total_seconds"),
    ({"reference_videos": {"min_tokens": -5}}, "f.reference_videos.min_tokens"),
    ({"status": "gone"}, "f.status"),
    ({"replacement": 5}, "f.replacement"),
    ({"replacement": "not an id"}, "f.replacement"),
    ({"adaptive_ratio": "yes"}, "f.adaptive_ratio"),
    ({"frames": [29, 289]}, "f.frames"),
    ({"frames": {"max": 289}}, "f.frames.min"),
    ({"frames": {"min": 29, "max": 25}}, "f.frames.max"),
    ({"frames": {"min": 29, "max": 289, "step": 0}}, "f.frames.step"),
    ({"frames_per_second": 0}, "f.frames_per_second"),
    ({"frames_per_second": 121}, "f.frames_per_second"),
    ({"frames_per_second": "24"}, "f.frames_per_second"),
    ({"extra_frames": -1}, "f.extra_frames"),
    ({"extra_frames": 11}, "f.extra_frames"),
    ({"draft": "no"}, "f.draft"),
    ({"prices": {"default": "1"}}, "f.prices"),
    ({"prices": []}, "f.prices"),
    ({"prices": ["1.0"]}, "f.prices[0]"),
    ({"prices": [{**BASE, "colour": "red"}]}, "f.prices[0]"),
    ({"prices": [{"service_tier": "default"}]}, "f.prices[0].usd_per_million_tokens"),
    ({"prices": [{"usd_per_million_tokens": 1.0}]}, "f.prices[0].usd_per_million_tokens"),
    ({"prices": [{"usd_per_million_tokens": "-1"}]}, "f.prices[0].usd_per_million_tokens"),
    ({"prices": [{"usd_per_million_tokens": -1}]}, "f.prices[0].usd_per_million_tokens"),
    ({"prices": [{"usd_per_million_tokens": True}]}, "f.prices[0].usd_per_million_tokens"),
    ({"prices": [{"usd_per_million_tokens": "1e3"}]}, "f.prices[0].usd_per_million_tokens"),
    ({"prices": [{"usd_per_million_tokens": "1/0"}]}, "f.prices[0].usd_per_million_tokens"),
    ({"prices": [BASE, {**FLEX, "audio": "no"}]}, "f.prices[1].audio"),
    ({"prices": [BASE, {**FLEX, "video_input": 1}]}, "f.prices[1].video_input"),
    ({"prices": [BASE, {**FLEX, "service_tier": "priority"}]}, "f.prices[1].service_tier"),
    ({"service_tiers": ["default"], "prices": [BASE, FLEX]}, "f.prices[1].service_tier"),
    ({"retired_at": "yesterday"}, "f.retired_at"),
    ({"retired_at": 1_790_000_000}, "f.retired_at"),
]


@pytest.mark.parametrize(
    ("changes", "param"), MALFORMED, ids=[f"{p}-{i}" for i, (_, p) in enumerate(MALFORMED)]
)
def test_malformed_family_fields_are_refused_with_their_param(
    changes: dict[str, Any], param: str
) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_family("f", family_spec(**changes))
    assert caught.value.param == param
    assert caught.value.message and str(caught.value) == f"{param}: {caught.value.message}"


def test_the_valid_base_document_parses() -> None:
    family = parse_family("f", family_spec())
    assert family.ids == ("m-1-250101",) and family.default_duration == 5
    assert (family.fps, family.extra_frames, family.adaptive_ratio) == (24, 1, True)
    assert family.content == {"text": (), "image_url": ("first_frame",)}  # the default
    assert (family.audio_supported, family.audio_default, family.draft) == (False, False, False)
    assert family.status == "active" and not family.retired(NOW)


@pytest.mark.parametrize("name", ["", "Seedance", "seed dance", "-x", "a" * 65, 5])
def test_bad_family_names_are_refused(name: Any) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_family(name, family_spec())
    assert caught.value.param == "family"


@pytest.mark.parametrize("spec", [None, [], "seedance", 5])
def test_a_family_document_must_be_an_object(spec: Any) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_family("f", spec)
    assert caught.value.param == "f"


@pytest.mark.parametrize(
    "prices",
    [
        # no rule matches flex
        [{"service_tier": "default", "usd_per_million_tokens": "1"}],
        # two equally specific rules for everything
        [BASE, {"usd_per_million_tokens": "2"}],
        # two equally specific rules for flex
        [BASE, FLEX, {**FLEX, "usd_per_million_tokens": "0.4"}],
        # 1080p flex: the resolution rule and the flex rule tie
        [BASE, FLEX, {"resolution": "1080p", "usd_per_million_tokens": "2"}],
    ],
)
def test_missing_or_ambiguous_price_rules_are_refused(prices: list[dict[str, Any]]) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_family("f", family_spec(prices=prices))
    assert caught.value.param == "f.prices"
    assert "no single most specific rule prices service_tier=" in caught.value.message


def test_the_most_specific_rule_wins() -> None:
    prices = [
        BASE,
        FLEX,
        {"resolution": "1080p", "usd_per_million_tokens": "2"},
        {"resolution": "1080p", "service_tier": "flex", "usd_per_million_tokens": "3/4"},
    ]
    family = parse_family("f", family_spec(prices=prices))
    assert family.usd_per_million("default", False, "720p", False) == 1
    assert family.usd_per_million("flex", False, "720p", False) == Fraction(1, 2)
    assert family.usd_per_million("default", False, "1080p", False) == 2
    assert family.usd_per_million("flex", False, "1080p", False) == Fraction(3, 4)


def test_a_combination_no_rule_prices_raises_key_error() -> None:
    only_default = [{"service_tier": "default", "usd_per_million_tokens": "1"}]
    family = parse_family("f", family_spec(service_tiers=["default"], prices=only_default))
    assert family.usd_per_million("default", False, "720p", False) == 1
    with pytest.raises(KeyError):
        family.usd_per_million("flex", False, "720p", False)  # a tier the family does not sell


def test_audio_and_video_input_widen_the_combinations_to_price() -> None:
    spec = family_spec(
        audio={"supported": True, "default": True},
        content={"text": [], "video_url": ["reference_video"]},
        reference_videos={"max_count": 2, "max_total_seconds": 10},
        service_tiers=["default"],
        prices=[BASE, {"audio": False, "usd_per_million_tokens": "1/2"}],
    )
    family = parse_family("f", spec)
    assert len(family.combinations()) == 2 * 2 * 2  # audio × resolution × video input
    assert family.usd_per_million("default", False, "1080p", True) == Fraction(1, 2)
    assert family.usd_per_million("default", True, "1080p", True) == 1
    silent_video_rule = {"audio": False, "video_input": True, "usd_per_million_tokens": "1"}
    tie = {**spec, "prices": [BASE, {"video_input": True, "usd_per_million_tokens": "2"}]}
    tie["prices"].append({"audio": False, "usd_per_million_tokens": "1/2"})
    with pytest.raises(CatalogError, match=r"audio=False.*video_input=True"):
        parse_family("f", tie)  # silent with video: two rules of one condition each tie
    tie["prices"].append(silent_video_rule)
    assert parse_family("f", tie).usd_per_million("default", False, "720p", True) == 1


# --- amounts, markup and the wire form -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (3, 3),
        ("2.5", Fraction(5, 2)),
        (" 0.0000001 ", Fraction(1, 10**7)),
        ("5/3", Fraction(5, 3)),
    ],
)
def test_amounts_are_exact(value: Any, expected: Fraction) -> None:
    assert amount(value, "x") == expected


@pytest.mark.parametrize("value", [2.5, 0.0, True, -1, "-1", "1e3", "", "abc", None, [1]])
def test_floats_and_other_odd_amounts_are_refused(value: Any) -> None:
    with pytest.raises(CatalogError) as caught:
        amount(value, "where")
    assert caught.value.param == "where"
    if isinstance(value, float):
        assert "decimal string" in caught.value.message


@pytest.mark.parametrize(
    ("markup", "credits", "expected"),
    [
        ("0", "1", Fraction(2_500_000)),
        ("10", "1", Fraction(2_750_000)),
        ("12.5", "1", Fraction(2_812_500)),
        ("0", "100", Fraction(250_000_000)),
        ("20", "0.5", Fraction(1_500_000)),
        ("1/3", "1", Fraction(2_500_000) * Fraction(301, 300)),  # not rounded
    ],
)
def test_unit_price_includes_markup_and_credits_per_usd_exactly(
    markup: str, credits: str, expected: Fraction
) -> None:
    wire = SHIPPED.to_wire() | {"markup_percent": markup, "credits_per_usd": credits}
    catalog = Catalog.from_wire(wire)
    family = catalog.families["seedance-1-0-pro"]
    assert catalog.unit_price(family, "default", False, "1080p", False) == expected
    assert catalog.unit_price(family, "flex", False, "1080p", False) == expected / 2


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("markup_percent", 0.5),
        ("markup_percent", "-1"),
        ("markup_percent", True),
        ("credits_per_usd", 0),
        ("credits_per_usd", "0"),
        ("credits_per_usd", "abc"),
        ("credits_per_usd", 1.0),
    ],
)
def test_bad_markup_and_credits_per_usd_are_refused(key: str, value: Any) -> None:
    with pytest.raises(CatalogError) as caught:
        Catalog.from_wire({key: value, "families": {}})
    assert caught.value.param == key


def test_families_must_be_an_object() -> None:
    with pytest.raises(CatalogError) as caught:
        Catalog.from_wire({"families": [family_spec()]})
    assert caught.value.param == "families"
    assert Catalog.from_wire({}).families == {}


def test_to_wire_and_from_wire_round_trip_exactly() -> None:
    wire = SHIPPED.to_wire()
    text = json.dumps(wire)  # JSON types only: dates became text
    assert wire["families"]["seedance-1-5-pro"]["retired_at"] == "2026-09-21"
    again = Catalog.from_wire(json.loads(text))
    assert again == SHIPPED
    assert again.to_wire() == wire
    marked = Catalog.from_wire(wire | {"markup_percent": "12.5", "credits_per_usd": "1/3"})
    back = marked.to_wire()
    assert (back["markup_percent"], back["credits_per_usd"]) == ("25/2", "1/3")
    assert Catalog.from_wire(back) == marked


def test_a_family_document_is_kept_as_given() -> None:
    spec = family_spec(aliases=["ep-1"], frames={"min": 29, "max": 289, "step": 4})
    original = copy.deepcopy(spec)
    family = parse_family("f", spec)
    assert family.spec == original and spec == original  # not mutated, nothing added


# --- retirement -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retired_at", "before", "after"),
    [
        ("2026-11-24", "2026-11-23T23:59:59", "2026-11-24T00:00:00"),
        ("2026-11-24T09:00:00+09:00", "2026-11-23T23:59:59", "2026-11-24T00:00:00"),
        ("2026-11-24T00:00:00Z", "2026-11-23T23:59:59", "2026-11-24T00:00:00"),
    ],
)
def test_retired_from_its_date(retired_at: str, before: str, after: str) -> None:
    family = parse_family("f", family_spec(status="retired", retired_at=retired_at))
    assert not family.retired(moment(before))
    assert family.retired(moment(after))
    assert family.retired(moment("2030-01-01T00:00:00"))


def test_retired_without_a_date_is_retired_at_once_and_active_never() -> None:
    assert parse_family("f", family_spec(status="retired")).retired(0)
    active = parse_family("f", family_spec(retired_at="2020-01-01"))
    assert not active.retired(NOW)  # a date alone does not retire a family


# --- loading the file -----------------------------------------------------------------------------

TOML_FAMILY = """
[families.m-1]
ids = ["m-1-250101"]
default_resolution = "720p"
durations = { min = 2, max = 12 }
prices = [{ usd_per_million_tokens = "1.0" }]
status = "retired"
retired_at = 2026-05-13
replacement = "m-2-260101"
[families.m-1.resolutions]
720p = { "16:9" = [1280, 720] }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


def test_a_toml_offset_date_time_is_read_in_utc(tmp_path: Path) -> None:
    text = TOML_FAMILY.replace("2026-05-13", "2026-05-13T09:00:00+09:00")
    family = Catalog.load(write(tmp_path, text)).families["m-1"]
    assert family.spec["retired_at"] == "2026-05-13T09:00:00+09:00"
    assert family.retired_at == moment("2026-05-13T00:00:00")
    assert json.loads(json.dumps(family.spec))["retired_at"] == "2026-05-13T09:00:00+09:00"


def test_a_toml_file_loads_with_its_date(tmp_path: Path) -> None:
    catalog = Catalog.load(write(tmp_path, "markup_percent = 5\n" + TOML_FAMILY))
    family = catalog.families["m-1"]
    assert isinstance(family, ModelFamily) and family.spec["retired_at"] == "2026-05-13"
    assert family.retired(moment("2026-05-13T00:00:00"))
    assert not family.retired(moment("2026-05-12T23:59:59"))
    assert catalog.markup_percent == 5
    assert catalog.match("doubao-m-1-250101") is family


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("this is = = not toml", "cannot be read"),
        ("markup_pecent = 0\n" + TOML_FAMILY, "unknown key"),
        ("markup_percent = 0.5\n" + TOML_FAMILY, "markup_percent"),
        (TOML_FAMILY.replace('"1.0"', "1.0"), r"m-1\.prices\[0\]\.usd_per_million_tokens"),
        (TOML_FAMILY.replace("min = 2", "min = 2.0"), r"m-1\.durations\.min"),
    ],
)
def test_a_malformed_file_raises_value_error_naming_it(
    text: str, match: str, tmp_path: Path
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=match) as caught:
        Catalog.load(path)
    assert str(path) in str(caught.value)


def test_a_missing_file_raises_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be read"):
        Catalog.load(tmp_path / "absent.toml")


# --- rules that could never apply, exact amounts ------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "param"),
    [
        ({"resolution": "1080P"}, "x.prices[1].resolution"),
        ({"resolution": 1080}, "x.prices[1].resolution"),
        ({"audio": True}, "x.prices[1].audio"),  # the family makes no audio
        ({"video_input": True}, "x.prices[1].video_input"),  # nor takes video
        ({"service_tier": "priority"}, "x.prices[1].service_tier"),
    ],
)
def test_a_price_rule_that_could_never_apply_is_refused(rule: dict[str, Any], param: str) -> None:
    spec = family_spec(prices=[{"usd_per_million_tokens": "1"}, {**rule, **BASE}])
    with pytest.raises(CatalogError) as refused:
        parse_family("x", spec)
    assert refused.value.param == param


@pytest.mark.parametrize("text", ["0.5/3", "1.0/2", "5/0", "/2", "2/"])
def test_malformed_fractions_are_a_catalog_error(text: str) -> None:
    with pytest.raises(CatalogError) as refused:
        amount(text, "p")
    assert refused.value.param == "p"


def test_legacy_flags_are_a_family_setting() -> None:
    assert parse_family("x", family_spec()).legacy_flags is False
    assert parse_family("x", family_spec(legacy_flags=True)).legacy_flags is True
    with pytest.raises(CatalogError) as refused:
        parse_family("x", family_spec(legacy_flags="yes"))
    assert refused.value.param == "x.legacy_flags"
    flagged = {name for name, family in SHIPPED.families.items() if family.legacy_flags}
    assert flagged == {name for name in SHIPPED.families if name.startswith("seedance-1-")}


@pytest.mark.parametrize("value", [{}, [], 720, None, "4k"])
def test_a_default_resolution_that_is_not_one_of_its_resolutions_is_refused(value: Any) -> None:
    with pytest.raises(CatalogError) as refused:
        parse_family("x", family_spec(default_resolution=value))
    assert refused.value.param in ("x.default_resolution",)
