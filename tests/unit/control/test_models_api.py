"""/v1/models: the catalog seeded once, listed, changed (checked, audited, published in the
snapshot) and deleted; read tokens change nothing."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.core.seedance.catalog import Catalog
from proxy.policy import Snapshot
from tests.unit.conftest import Control, ControlRunner

SHIPPED = Catalog.load()
FAMILY: dict[str, Any] = {
    "ids": ["seedance-9-0-261201"],
    "resolutions": {"720p": {"16:9": [1280, 720], "9:16": [720, 1280]}},
    "default_resolution": "720p",
    "durations": {"min": 4, "max": 10, "default": 5},
    "prices": [{"usd_per_million_tokens": "3"}],
}


def test_the_shipped_catalog_is_seeded_and_listed(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        listed = (await ctl.get("/v1/models")).json()
        assert [f["family"] for f in listed["items"]] == sorted(SHIPPED.families)
        assert (listed["markup_percent"], listed["credits_per_usd"]) == ("0", "1")
        lite = (await ctl.get("/v1/models/seedance-1-0-lite-t2v")).json()
        assert lite["retired"] is True and lite["replacement"] == "seedance-1-0-pro-fast-251015"
        snapshot = Snapshot.from_wire(ctl.snapshot)
        assert snapshot.catalog.match("dreamina-seedance-2-5-260628") is not None
        assert (await ctl.get("/v1/models/nope")).status_code == 404

    control_plane(body)


def test_a_family_is_put_patched_and_deleted_with_an_audit_entry_each(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        before = ctl.version
        created = await ctl.request("PUT", "/v1/models/seedance-9-0", json=FAMILY)
        assert created.status_code == 201, created.text
        assert ctl.version > before
        assert Snapshot.from_wire(ctl.snapshot).catalog.match("seedance-9-0-261201") is not None
        replaced = await ctl.request("PUT", "/v1/models/seedance-9-0", json=FAMILY)
        assert replaced.status_code == 200
        patched = await ctl.patch("/v1/models/seedance-9-0", json={"status": "retired"})
        assert patched.status_code == 200 and patched.json()["retired"] is True
        # GET's own shape can be sent back as it is
        echoed = await ctl.request("PUT", "/v1/models/seedance-9-0", json=patched.json())
        assert echoed.status_code == 200, echoed.text
        assert (await ctl.delete("/v1/models/seedance-9-0")).json()["deleted"] is True
        assert (await ctl.delete("/v1/models/seedance-9-0")).status_code == 404
        assert (await ctl.patch("/v1/models/seedance-9-0", json={})).status_code == 404
        actions = [
            row["action"]
            for row in await ctl.rows("SELECT action FROM audit WHERE target='seedance-9-0'")
        ]
        assert actions == ["model.put", "model.put", "model.patch", "model.put", "model.delete"]

    control_plane(body)


AMBIGUOUS = [  # two rules equally specific for 720p at the default tier
    {"resolution": "720p", "usd_per_million_tokens": "1"},
    {"service_tier": "default", "usd_per_million_tokens": "2"},
]


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"durations": {"min": 4, "max": 2}}, "seedance-9-0.durations.max"),
        ({"default_resolution": "4k"}, "seedance-9-0.default_resolution"),
        (
            {"prices": [{"usd_per_million_tokens": 3.5}]},
            "seedance-9-0.prices[0].usd_per_million_tokens",
        ),
        ({"prices": AMBIGUOUS}, "seedance-9-0.prices"),
        ({"ids": ["seedance-1-0-pro-250528"]}, "seedance-9-0.ids"),
        ({"colour": "blue"}, "seedance-9-0.colour"),
        ({"status": "gone"}, "seedance-9-0.status"),
    ],
)
def test_a_family_that_cannot_be_used_is_refused_with_its_param(
    control_plane: ControlRunner, change: dict[str, Any], param: str
) -> None:
    async def body(ctl: Control) -> None:
        answer = await ctl.request("PUT", "/v1/models/seedance-9-0", json=FAMILY | change)
        assert answer.status_code == 400
        assert f"`{param}`" in answer.json()["error"]["message"]
        assert (await ctl.get("/v1/models/seedance-9-0")).status_code == 404

    control_plane(body)


def test_a_read_token_reads_the_catalog_and_changes_nothing(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        reader = (await ctl.create_admin_token(["read"]))["token"]
        assert (await ctl.get("/v1/models", token=reader)).status_code == 200
        put = await ctl.request("PUT", "/v1/models/seedance-9-0", json=FAMILY, token=reader)
        assert put.status_code == 403
        deleted = await ctl.delete("/v1/models/seedance-2-0", token=reader)
        assert deleted.status_code == 403
        assert (await ctl.get("/v1/models/seedance-2-0")).status_code == 200

    control_plane(body)


def test_the_seed_runs_once_so_a_deleted_family_stays_deleted(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        assert (await ctl.delete("/v1/models/seedance-2-0-mini")).status_code == 200
        await ctl.restart()
        assert (await ctl.get("/v1/models/seedance-2-0-mini")).status_code == 404
        assert (await ctl.get("/v1/models/seedance-2-0")).status_code == 200

    control_plane(body)
