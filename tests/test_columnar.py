"""The columnar reader (`tasks/ehrshot/columnar.py`) against the row-by-row reference (`reader="rows"`):
the same timelines, counts, errors, labels and prompts, on generated files of every shape and on the MIMIC-IV
demo; every labeler's examples on the demo pinned to the row reader's (issue #30)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import MIMIC_DEMO, shared_file
from ehrmind.errors import DataError
from ehrmind.tasks.ehrshot.codes import Vocabulary
from ehrmind.tasks.ehrshot.labelers import LABELER_NAMES, get_labeler
from ehrmind.tasks.ehrshot.readers import ReadStats, iter_timelines

D = datetime


def read(path: Path | list[Path], reader: str, **kwargs) -> tuple[list[tuple], dict]:
    """Every timeline as plain data (events materialized), and the read counts."""
    stats = ReadStats()
    source = path
    if isinstance(path, list):
        from ehrmind.tasks.ehrshot.readers import EventSource

        source = EventSource(path[0].parent, path)
    out = [
        (tl.subject_id, tl.n_static, list(tl.events), list(tl.times), tl.start_time, tl.end_time)
        for tl in iter_timelines(source, reader=reader, stats=stats, **kwargs)
    ]
    return out, stats.to_dict() | {
        "unknown": dict(stats.unknown_codes),
        "untimed": dict(stats.untimed_events),
    }


def same_or_same_error(path: Path | list[Path], **kwargs) -> None:
    """Both readers give the same timelines and counts, or the same error (file, row, field and words)."""
    results = {}
    for reader in ("rows", "columnar"):
        try:
            results[reader] = read(path, reader, **kwargs)
        except DataError as e:
            results[reader] = ("error", str(e), e.row, e.field)
    assert results["columnar"] == results["rows"]


# ---------------------------------------------------------------------------------------------- generated files

CODES = [
    "LAB//50983//mEq/L",
    "LAB//50971//mEq/L",
    "LAB//51221//%",
    "LAB//50931//UNK",
    "DIAGNOSIS//ICD//10//I10",
    "DIAGNOSIS//ICD//10//Q99ZZZ",
    "DIAGNOSIS//ICD//9//4019",
    "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM",
    "HOSPITAL_DISCHARGE//HOME",
    "ICU_ADMISSION//MICU",
    "MEDS_BIRTH",
    "GENDER//F",
    "MEDICATION//START//Aspirin",
    "PROCEDURE//ICD//10//0DTJ4ZZ",
    " SNOMED/59621000 ",
    "Visit/IP",
    "SUBJECT_WEIGHT_AT_INFUSION//KG",
]
TIMES = [
    None,
    D(2020, 1, 1),
    D(2020, 1, 1, 8, 30),
    D(2020, 1, 1, 23, 59),
    D(2020, 1, 2),
    D(2020, 1, 2, 0, 0, 1),
    D(2021, 6, 1, 12),
]
VALUES = [None, 0.0, -0.0, 1.5, 8.4, 140.0, 5.6, float("nan"), float("inf"), 129.0]
UNITS = [None, "", " ", "mmol/L", "mg/dL "]
TEXTS = [None, "", "Yellow", " normal ", "8.1"]
TABLES = [None, "measurement", "visit_occurrence", "hosp/labevents", "visit_detail"]
ENDS = [None, D(2020, 1, 1), D(2020, 1, 1, 9), D(2020, 1, 3), D(2019, 12, 31, 12)]


@st.composite
def event_tables(draw) -> tuple[pa.Table, int]:
    """A MEDS-like table: subjects grouped (ids in order), events of every kind in any order, ties at the
    same time with equal codes and different values, units, texts, ends and tables; and a batch size."""
    n_subjects = draw(st.integers(1, 4))
    rows = []
    for s in range(n_subjects):
        for _ in range(draw(st.integers(1, 12))):
            rows.append(
                (
                    10 * s + 7,
                    draw(st.sampled_from(TIMES)),
                    draw(st.sampled_from(CODES)),
                    draw(st.sampled_from(VALUES)),
                    draw(st.sampled_from(UNITS)),
                    draw(st.sampled_from(TEXTS)),
                    draw(st.sampled_from(TABLES)),
                    draw(st.sampled_from(ENDS)),
                )
            )
    value_type = draw(st.sampled_from([pa.float32(), pa.float64()]))
    columns = ["subject_id", "time", "code", "numeric_value", "unit", "text_value", "table", "end"]
    types = [pa.int64(), pa.timestamp("us"), pa.string(), value_type, pa.string(), pa.string(), pa.string()]
    types.append(pa.timestamp("us"))
    table = pa.table(
        {c: pa.array([r[i] for r in rows], t) for i, (c, t) in enumerate(zip(columns, types, strict=True))}
    )
    return table, draw(st.integers(1, 9))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=event_tables(), day_end=st.booleans(), timed=st.sampled_from([None, ()]))
def test_columnar_reads_any_table_as_the_row_reader(tmp_path, data, day_end, timed):
    table, batch_rows = data
    path = tmp_path / "events.parquet"
    pq.write_table(table, path, row_group_size=5)
    kwargs = {"day_end": day_end, "batch_rows": batch_rows, "vocab": Vocabulary()}
    if timed is not None:
        kwargs["timed_codes"] = timed
    same_or_same_error(path, **kwargs)


def test_ties_are_broken_by_every_field_as_the_row_reader_does(tmp_path):
    """Rows equal in subject, time and code ordered by number, text, unit, end and table, whatever the file
    order; codes carrying their unit (`LAB//…//mEq/L`) tie with a unit cell of the same text."""
    t = D(2020, 3, 1, 10)
    rows = [
        (1, t, "LAB//50983//mEq/L", None, "", None, None, None),
        (1, t, "LAB//50983//mEq/L", 140.0, "mEq/L", None, None, None),
        (1, t, "LAB//50983//mEq/L", 140.0, None, None, None, D(2020, 3, 2)),
        (1, t, "LAB//50983//mEq/L", -0.0, "a", None, "measurement", None),
        (1, t, "LAB//50983//mEq/L", 0.0, "Z", "x", None, None),
        (1, t, "LAB//50983//mEq/L", 139.0, "zz", "b", "observation", D(2020, 3, 1, 11)),
        (1, None, "GENDER//F", None, None, None, None, None),
        (1, None, "GENDER//F", 1.0, None, None, None, None),
    ]
    columns = ["subject_id", "time", "code", "numeric_value", "unit", "text_value", "table", "end"]
    for order in (rows, rows[::-1], rows[3:] + rows[:3]):
        table = pa.table({c: [r[i] for r in order] for i, c in enumerate(columns)})
        path = tmp_path / "ties.parquet"
        pq.write_table(table, path)
        same_or_same_error(path)
        same_or_same_error(path, batch_rows=2)


def test_subjects_across_batches_and_files(tmp_path):
    """A subject read across batches and across shards is one timeline in both readers; one that comes back
    in a later shard after others is the same error."""
    first = [(1, D(2020, 1, 1, h), "LAB//50983//mEq/L", float(h)) for h in range(5)]
    first += [(2, D(2020, 1, 1, h), "LAB//50971//mEq/L", float(h)) for h in range(7)]
    second = [(2, D(2020, 1, 2, h), "LAB//50971//mEq/L", float(h)) for h in range(3)]
    second += [(3, D(2020, 1, 3), "DIAGNOSIS//ICD//10//I10", None)]
    paths = [_meds(tmp_path / "a.parquet", first), _meds(tmp_path / "b.parquet", second)]
    for batch_rows in (1, 3, 100):
        same_or_same_error(paths, batch_rows=batch_rows)
    again = _meds(tmp_path / "c.parquet", [(1, D(2020, 2, 1), "X", None)])
    same_or_same_error([*paths, again])
    with pytest.raises(DataError, match=r"c.parquet, row 1, field 'subject_id': subject 1 appears again"):
        read([*paths, again], "columnar")


@pytest.mark.parametrize(
    ("column", "values", "kind"),
    [
        ("subject_id", [1, 1, None, 2, 2, 2], pa.int64()),
        ("subject_id", ["7", "7", " ", "8", "8", "8"], pa.string()),
        ("subject_id", [1.0, 1.0, 2.5, 2.5, 3.0, 3.0], pa.float64()),
        ("subject_id", ["a", "a", "b", "b", "a", "a"], pa.string()),
        ("code", ["A", "B", None, "C", "D", "E"], pa.string()),
        ("code", ["A", "B", "C", "  ", "D", "E"], pa.string()),
        ("code", ["A", "B", "C", "D", "E\tF", "G"], pa.string()),
        (
            "time",
            ["2020-01-01", "2020-01-02T10:00:00+02:00", "2020-01-03Z", "bad", "2020-01-05", ""],
            pa.string(),
        ),
        ("time", [date(2020, 1, d) for d in range(1, 7)], pa.date32()),
        (
            "time",
            [D(2020, 1, d, tzinfo=timezone(timedelta(hours=-5))) for d in range(1, 7)],
            pa.timestamp("us", "America/New_York"),
        ),
        ("time", [D(2020, 1, d, 1, 2, 3) for d in range(1, 7)], pa.timestamp("ns")),
        ("time", [D(2020, 1, d) for d in range(1, 7)], pa.timestamp("s")),
        ("numeric_value", ["1.5", "high", "", " 2 ", "nan", None], pa.string()),
        ("numeric_value", [1, 2, None, 4, 5, 6], pa.int32()),
    ],
    ids=lambda v: str(v)[:24],
)
def test_cells_of_every_type_and_their_errors(tmp_path, column, values, kind):
    """Ids, codes, times and values of every type the readers take, good and bad: the same timelines, or the
    same error naming file, row and field."""
    table = pa.table(
        {
            "subject_id": pa.array([1, 1, 2, 2, 3, 3], pa.int64()),
            "time": pa.array([D(2020, 1, d) for d in range(1, 7)], pa.timestamp("us")),
            "code": pa.array(["A", "B", "C", "D", "E", "F"], pa.string()),
        }
    )
    table = (
        table.append_column(column, pa.array(values, kind))
        if column not in table.column_names
        else table.set_column(table.column_names.index(column), column, pa.array(values, kind))
    )
    path = tmp_path / "cells.parquet"
    pq.write_table(table, path)
    same_or_same_error(path)
    same_or_same_error(path, batch_rows=2)


def test_unknown_codes_strict_and_counted(tmp_path):
    rows = [(1, D(2020, 1, 1), "DIAGNOSIS//ICD//10//I10"), (1, D(2020, 1, 2), "DIAGNOSIS//ICD//10//Q99ZZZ")]
    rows += [(2, D(2020, 1, 3), "DIAGNOSIS//ICD//10//Q99ZZZ"), (2, None, "DIAGNOSIS//ICD//10//I10")]
    path = _meds(tmp_path / "events.parquet", rows)
    same_or_same_error(path, vocab=Vocabulary())
    same_or_same_error(path, vocab=Vocabulary(), strict_codes=True)
    with pytest.raises(DataError, match=r"row 2, field 'code': unknown code 'DIAGNOSIS//ICD//10//Q99ZZZ'"):
        read(path, "columnar", vocab=Vocabulary(), strict_codes=True)


def test_out_of_range_times_and_csv(tmp_path):
    path = tmp_path / "far.parquet"
    far = pa.array([0, 10**18, 3 * 10**17], pa.int64()).cast(pa.timestamp("us"))
    pq.write_table(pa.table({"subject_id": [1, 1, 1], "time": far, "code": ["A", "B", "C"]}), path)
    same_or_same_error(path)
    with pytest.raises(DataError, match="row 2, field 'time': time outside the years 1-9999"):
        read(path, "columnar")
    csv = tmp_path / "ehrshot.csv"
    csv.write_text(
        "patient_id,start,end,code,value,unit,visit_id,omop_table\n"
        "7,1960-05-01 00:00:00,,SNOMED/3950001,,,,person\n"
        "7,2020-01-01 10:00:00,2020-01-05 00:00:00,Visit/IP,,,1,visit_occurrence\n"
        "7,2020-01-02 08:00:00,,LOINC/2951-2,129,mmol/L,1,measurement\n"
        "7,2020-01-02 08:00:00,,LOINC/5778-6,Yellow,,1,measurement\n"
        "8,2019-01-01 00:00:00+05:00,,ICD10CM/E78.5,,,,condition_occurrence\n"
        "8,2019-01-02,2019-01-01,Visit/IP,,,2,visit_occurrence\n"
    )
    same_or_same_error(csv)
    same_or_same_error(csv, sort=True)
    same_or_same_error(csv, day_end=False, batch_rows=2)


def test_sort_option(tmp_path):
    rows = [
        (2, D(2020, 1, 1), "A"),
        (10, D(2020, 1, 1), "B"),
        (2, D(2020, 1, 2), "C"),
        (10, D(2019, 1, 1), "D"),
    ]
    path = _meds(tmp_path / "events.parquet", rows)
    same_or_same_error(path, sort=True)
    same_or_same_error(path, sort=True, batch_rows=1)


def _meds(path: Path, rows: list[tuple]) -> Path:
    pq.write_table(
        pa.table(
            {
                "subject_id": pa.array([r[0] for r in rows], pa.int64()),
                "time": pa.array([r[1] for r in rows], pa.timestamp("us")),
                "code": pa.array([r[2] for r in rows], pa.string()),
                "numeric_value": pa.array([r[3] if len(r) > 3 else None for r in rows], pa.float32()),
            }
        ),
        path,
    )
    return path


# ---------------------------------------------------------------------------------------------- the MIMIC-IV demo


@pytest.fixture(scope="module")
def demo_part(tmp_path_factory) -> Path:
    """The first 16 subjects of the MIMIC-IV demo (about 100,000 events), in two shards."""
    table = pq.read_table(shared_file(MIMIC_DEMO))
    ids = sorted(set(table.column("subject_id").to_pylist()))[:16]
    out = tmp_path_factory.mktemp("demo_part")
    import pyarrow.compute as pc

    for name, part in (("a", ids[:8]), ("b", ids[8:])):
        pq.write_table(
            table.filter(pc.is_in(table.column("subject_id"), pa.array(part))), out / f"{name}.parquet"
        )
    return out


def test_demo_timelines_and_every_labelers_labels_are_the_row_readers(demo_part):
    """On real data: the same timelines and counts; and every labeler gives the same labels and exclusions
    from the columnar reader's `for_labels` (only the events the labeler wants) as from the row reader's
    whole timeline."""
    stats_rows, stats_columnar = ReadStats(), ReadStats()
    rows = list(iter_timelines(demo_part, reader="rows", stats=stats_rows))
    columnar = list(iter_timelines(demo_part, stats=stats_columnar))
    assert stats_columnar.to_dict() == stats_rows.to_dict() and stats_rows.rows > 50_000
    for a, b in zip(columnar, rows, strict=True):
        assert (a.subject_id, a.n_static, a.start_time, a.end_time) == (
            b.subject_id,
            b.n_static,
            b.start_time,
            b.end_time,
        )
        assert a.events == b.events and a.times == b.times
    for name in LABELER_NAMES:
        labeler = get_labeler(name)
        views = list(iter_timelines(demo_part, wanted=labeler.wanted))
        got, expected = Counter(), Counter()
        labels = [labeler.label(v.for_labels, got) for v in views]
        assert labels == [labeler.label(tl, expected) for tl in rows], name
        assert got == expected, name
        assert sum(len(v.for_labels.events) for v in views) < stats_rows.rows / 4, name  # few events each


# Today's examples (the row reader's, ehrmind 1d1131f) of every labeler on the whole MIMIC-IV demo, as the
# sha256 `ehrmind data` records (manifest files.examples.jsonl.sha256), with n and positives. "alt":
# --set rules=ehrmind --set tables=all --set max_tokens=1024.
PINNED = {
    ("default", "guo_icu"): ("52bd628b89c815cde431dff94f78a0137b304969668a899d07bc0236840ff722", 176, 42),
    ("default", "guo_los"): ("6e066142a420634536238f12ce6dd8f4cb4b25eeb7de4f5ff4256e4a0f41684c", 262, 92),
    ("default", "guo_readmission"): (
        "1f94c3d1b3a93cfa17a0bb990d42f0c5b91b5ab53f8b2d12aae6bc9420f57ac8",
        223,
        51,
    ),
    ("default", "lab_anemia"): (
        "9a4742037a2562ecb0abf3bbbfe6ef8ffd3b304bbe806a6fc3a8fa00d01e5f65",
        2920,
        2333,
    ),
    ("default", "lab_hyperkalemia"): (
        "5fc1c0f9ea5ab0f5e1a3a7634ed7ab00672a7c7f547c98c83b9f531547f4f5af",
        3317,
        110,
    ),
    ("default", "lab_hypoglycemia"): (
        "3c927c3e4328e25bcbc8bfa39bd742bf3356e44759a7189cd3d6695bacb5fd1a",
        2968,
        71,
    ),
    ("default", "lab_hyponatremia"): (
        "2d1986c9825696c49361efbd916ce7a99afb99c21cb314739b3c98d09f389f66",
        3143,
        1045,
    ),
    ("default", "lab_thrombocytopenia"): (
        "28f9ea86c594dd31c9c95c6eff9da1509619b1f08cae84b4caf18f67ddd5018f",
        2818,
        1050,
    ),
    ("default", "new_acutemi"): ("9240d9d4bc34f358b7697c6a8ce348b6b3c5708e310c5e8ca8fef07c5fd1b1bf", 236, 5),
    ("default", "new_celiac"): ("5222ccd43fc6d4948a601d83b398d664390e85c64af839f0a14b12060b21f94b", 275, 0),
    ("default", "new_hyperlipidemia"): (
        "1189411d3e784922c1ba873995a715b3516c33e1a704e5089c0bc637ddfd780b",
        121,
        2,
    ),
    ("default", "new_hypertension"): (
        "43fd95de6d595e81d02d5b9d2262b94c12bfd59ceb990cd44fe9d0cf09c1a44f",
        76,
        6,
    ),
    ("default", "new_lupus"): ("250f9488bc22a0991d1842223fe600354f594c07774f2d224284dd0788c75cbf", 275, 0),
    ("default", "new_pancan"): ("b749b67367d63d030be9d9dee04b60cd98de711fdf71c12f96fcc6f9a697fd48", 274, 0),
    ("alt", "guo_icu"): ("50788d2ddb9e043903e053215cea7b84256c0382fc9bc8f411b28baf5f416a3e", 176, 42),
    ("alt", "guo_los"): ("89c3606768f465af3a7aed216c5825f1bab9930bd560d23190a96077e5ccf468", 262, 92),
    ("alt", "guo_readmission"): ("78a46a99ef8f80c62771b7ce8ccf7d930392b4279804408652b5d7a1702a6359", 220, 50),
    ("alt", "lab_anemia"): ("00be88af58e0a98fe3a26d9b1231d3b0142221b3d44b902f23b2cd0384bf45ad", 2920, 2333),
    ("alt", "lab_hyperkalemia"): (
        "9b9b90c025ddda16e7c0c97a6eb7e63f392b10d20676ea91a228e3f0fe655acd",
        3317,
        110,
    ),
    ("alt", "lab_hypoglycemia"): (
        "c2a9466f99c887d09cbfcd38c4a30a5252d5e2a1320d6fface0fb57eff3cb8bf",
        2968,
        71,
    ),
    ("alt", "lab_hyponatremia"): (
        "bce0a5a34cdc192f7a968f43b3588a6c5052905fb1d34fdec42d6cfb6bbc5c8b",
        3143,
        1045,
    ),
    ("alt", "lab_thrombocytopenia"): (
        "93e3b5cbeba78713f819d9dd041b7deb5a6c072a0fc7c9d3bd665e37be515656",
        2818,
        1050,
    ),
    ("alt", "new_acutemi"): ("572037092127fe91a57c567f48985f046902a33bc0ead16143287c0692487a29", 96, 5),
    ("alt", "new_celiac"): ("fbe215326ec39caa6769bb3148165f09232aca8b996e065d9796d95dc00ec97d", 117, 0),
    ("alt", "new_hyperlipidemia"): (
        "30cae4639bd55db18cac4532e8d37755960591d22ca3e9289f611e5333cea178",
        45,
        2,
    ),
    ("alt", "new_hypertension"): ("910be3bbe30902fb58dccecfa9781cdb3ba59a55a6e000352656a28eba7a7d09", 27, 6),
    ("alt", "new_lupus"): ("4d75f1ef528dd8e2d55a3589095cd8ed988a3bc906a29e515ec7fad7568829f9", 117, 0),
    ("alt", "new_pancan"): ("70a951d022e801be7a40e18f5cf52ad8485617757a5f9ae4aead012c749ab34e", 117, 0),
}
SETTINGS = {"default": {}, "alt": {"rules": "ehrmind", "tables": "all", "max_tokens": 1024}}


def test_every_labeler_is_pinned():
    assert {name for _, name in PINNED} == set(LABELER_NAMES)


@pytest.mark.slow
@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("labeler", LABELER_NAMES)
def test_every_labelers_examples_on_the_mimic_demo_are_todays(tmp_path, labeler, setting):
    """Labels and prompts of every labeler on the whole MIMIC-IV demo (916,166 events) are byte for byte the
    row reader's, pinned before the columnar reader came (the content hash of examples.jsonl)."""
    from ehrmind import get_task
    from ehrmind.tasks.ehrshot.build import build_snapshot

    source = shared_file(MIMIC_DEMO)
    manifest = build_snapshot(
        get_task("ehrshot"), source, tmp_path / "out", labeler=labeler, **SETTINGS[setting]
    )
    sha, n, positives = PINNED[(setting, labeler)]
    assert (manifest["n"], manifest["stats"]["positives"]) == (n, positives)
    assert manifest["files"]["examples.jsonl"]["sha256"] == sha
    lines = (tmp_path / "out" / "examples.jsonl").read_text().splitlines()
    assert len(lines) == n and hashlib.sha256(b"".join(_hash_line(x) for x in lines)).hexdigest() == sha


def _hash_line(line: str) -> bytes:
    """A written line as `ehrmind.snapshot.examples_hash` hashes it: the Example's own fields."""
    d = json.loads(line)
    example = {k: d[k] for k in ("id", "task", "input", "target", "metadata")}
    return json.dumps(example, sort_keys=True, ensure_ascii=False, default=str).encode() + b"\n"


def test_naive_and_aware_times_agree(tmp_path):
    """A time with an offset is the same instant in UTC in both readers (a sanity check of the arithmetic)."""
    aware = D(2020, 1, 1, 23, 30, tzinfo=timezone(timedelta(hours=-3)))
    path = tmp_path / "tz.parquet"
    pq.write_table(
        pa.table({"subject_id": [1], "time": pa.array([aware], pa.timestamp("us", "UTC")), "code": ["A"]}),
        path,
    )
    (tl,) = iter_timelines(path)
    assert tl.events[0].time == aware.astimezone(UTC).replace(tzinfo=None) == D(2020, 1, 2, 2, 30)
