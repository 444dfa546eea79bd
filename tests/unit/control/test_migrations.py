"""The schema's changes as numbered files: read in their numbers' order, a gap, a doubled number
or a misnamed file refused before any database is touched, each file saying why at its top."""

from __future__ import annotations

import re

import pytest

from control.store import migrations


def test_the_shipped_files_are_numbered_one_to_the_newest_each_with_its_why_on_top() -> None:
    known = migrations.load()
    assert [m.number for m in known] == list(range(1, len(known) + 1))
    assert len(known) >= 15  # the 15 of db.py's list when they moved, and any since
    for migration in known:
        assert migration.file_name.startswith(f"{migration.number:04d}_")
        assert migration.sql.startswith("-- "), f"{migration.file_name} has no comment on top"
    # The newest when the list moved: upstream_orphans and orphan_scan, at version 15.
    assert "CREATE TABLE orphan_scan" in known[14].sql


def test_files_are_ordered_by_number_not_as_listed() -> None:
    texts = {"0002_b.sql": "-- b", "0010_j.sql": "-- j", "0001_a.sql": "-- a"}
    texts |= {f"{n:04d}_x{n}.sql": f"-- {n}" for n in range(3, 10)}
    known = migrations.ordered(texts)
    assert [m.number for m in known] == list(range(1, 11))
    assert [m.file_name for m in known[:2]] == ["0001_a.sql", "0002_b.sql"]
    assert known[9].sql == "-- j"


def test_a_gap_in_the_numbers_is_refused() -> None:
    with pytest.raises(RuntimeError, match=r"skip number 2 \(the next file is 0003_c\.sql\)"):
        migrations.ordered({"0001_a.sql": "", "0003_c.sql": ""})


def test_numbers_start_at_one() -> None:
    with pytest.raises(RuntimeError, match="skip number 1"):
        migrations.ordered({"0002_b.sql": ""})


def test_two_files_with_one_number_are_refused() -> None:
    with pytest.raises(RuntimeError, match=r"0002_b\.sql and 0002_c\.sql have one number, 2"):
        migrations.ordered({"0001_a.sql": "", "0002_b.sql": "", "0002_c.sql": ""})


@pytest.mark.parametrize("file_name", ["2_b.sql", "0002-b.sql", "0002_B.sql", "00002_b.sql"])
def test_a_misnamed_sql_file_is_refused_not_skipped(file_name: str) -> None:
    named = f"{re.escape(file_name)} is not named NNNN_what_it_does"
    with pytest.raises(RuntimeError, match=named):
        migrations.ordered({"0001_a.sql": "", file_name: ""})
