"""bench/make_meds_scale.py: N copies of a MEDS file, new subject ids, shifted times, sorted shards."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ehrmind.tasks.ehrshot.readers import iter_timelines

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "make_meds_scale.py"
SCHEMA = pa.schema(
    [
        ("subject_id", pa.int64()),
        ("time", pa.timestamp("us")),
        ("code", pa.string()),
        ("table", pa.string()),
        ("value", pa.float32()),
    ]
)


def demo_like(path: Path) -> pa.Table:
    """Three subjects in the demo's schema, rows deliberately out of order, static rows without a time."""
    t = datetime(2150, 3, 1, 8, 30)
    rows = [
        (20, t + timedelta(days=2), "LAB//50971//mEq/L", "condition", 5.9),
        (7, None, "GENDER//F", "condition", None),
        (20, t, "HOSPITAL_ADMISSION//URGENT//ER", "condition", None),
        (7, t + timedelta(hours=1), "LAB//50971//mEq/L", "condition", 4.1),
        (999, datetime(2150, 1, 1), "MEDS_BIRTH", "condition", None),
        (7, t, "DIAGNOSIS//ICD//10//I10", "condition", None),
        (20, None, "GENDER//M", "condition", None),
        (999, t, "LAB//50971//mEq/L", "condition", 3.9),
    ]
    table = pa.Table.from_pylist([dict(zip(SCHEMA.names, r, strict=True)) for r in rows], schema=SCHEMA)
    pq.write_table(table, path)
    return table


def generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False
    )


def read_shards(out: Path) -> tuple[list[Path], pa.Table]:
    shards = sorted((out / "data").glob("*.parquet"))
    return shards, pa.concat_tables(pq.read_table(p) for p in shards)


@pytest.mark.parametrize("shard_args", [[], ["--shard-subjects", "2"]])
def test_two_copies(tmp_path: Path, shard_args: list[str]) -> None:
    source = tmp_path / "events.parquet"
    original = demo_like(source)
    out = tmp_path / "x2"
    done = generate("--source", str(source), "--factor", "2", "--out", str(out), *shard_args)
    assert done.returncode == 0, done.stderr
    shards, table = read_shards(out)
    assert len(shards) == (2 if not shard_args else 3)  # one copy per shard, or 2 + 2 + 2 subjects
    for shard in shards:
        assert pq.read_schema(shard).remove_metadata() == SCHEMA
    assert table.num_rows == 2 * original.num_rows

    rows = table.to_pylist()
    assert rows == sorted(
        rows, key=lambda r: (r["subject_id"], r["time"] is not None, r["time"] or datetime.min)
    )
    ids = table.column("subject_id").to_pylist()
    assert sorted(set(ids)) == [7, 20, 999, 1007, 1020, 1999]  # offset 1000: the power of ten above 999

    def key(r: dict) -> tuple:
        return (r["code"], r["value"], r["table"])

    for sid in (7, 20, 999):
        first = [r for r in rows if r["subject_id"] == sid]
        second = [r for r in rows if r["subject_id"] == sid + 1000]
        assert sorted(map(key, first)) == sorted(map(key, second))
        mine = sorted((key(r), r["time"]) for r in original.to_pylist() if r["subject_id"] == sid)
        assert sorted((key(r), r["time"]) for r in first) == mine  # copy 0 is the original
        for a, b in zip(sorted(first, key=key), sorted(second, key=key), strict=True):
            assert (b["time"] is None) == (a["time"] is None)
            if a["time"] is not None:
                assert b["time"] - a["time"] == timedelta(days=7)

    # ehrmind's streaming reader takes the shards as one dataset: every subject contiguous, none repeated
    timelines = list(iter_timelines(out))
    assert [tl.subject_id for tl in timelines] == [7, 20, 999, 1007, 1020, 1999]
    assert sum(len(tl.events) for tl in timelines) == 2 * original.num_rows


def test_numeric_value_and_errors(tmp_path: Path) -> None:
    source = tmp_path / "events.parquet"
    demo_like(source)
    out = tmp_path / "x3"
    done = generate("--source", str(source), "--factor", "3", "--out", str(out), "--numeric-value")
    assert done.returncode == 0, done.stderr
    assert "wrote 24 rows, 9 subjects, 3 shards" in done.stdout
    shards, table = read_shards(out)
    assert table.column_names == ["subject_id", "time", "code", "table", "numeric_value"]
    assert (out / "metadata" / "dataset.json").is_file()

    again = generate("--source", str(source), "--factor", "3", "--out", str(out))
    assert again.returncode == 2
    assert again.stderr.strip() == f"error: {out}: already holds data/ files; choose an empty folder"

    missing = generate(
        "--source", str(tmp_path / "nope.parquet"), "--factor", "2", "--out", str(tmp_path / "o")
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope.parquet'}: file not found"]

    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"subject_id": [1], "code": ["X"]}), bad)
    no_time = generate("--source", str(bad), "--factor", "2", "--out", str(tmp_path / "o2"))
    assert no_time.returncode == 2
    assert no_time.stderr.strip() == f"error: {bad}: no 'time' column (has subject_id, code)"
