"""EHRSHOT task on hand-built timelines: labelers and their windows/exclusions, leakage, truncation, readers,
malformed files, label files, the verifier and the metrics against hand-computed values."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehrmind import Example, get_task
from ehrmind.errors import ConfigError, DataError
from ehrmind.snapshot import examples_hash
from ehrmind.tasks.analysis import ChoicePoint, attached, report_sections, task_metrics
from ehrmind.tasks.base import gold_completion
from ehrmind.tasks.ehrshot import (
    LABELER_NAMES,
    SerializerConfig,
    Timeline,
    TimelineSerializer,
    build_snapshot,
    canonical_code,
    get_labeler,
    iter_timelines,
    parse_prediction,
    parse_probability,
    read_label_file,
)
from ehrmind.tasks.ehrshot.analyses import YesProbability, binary_block
from ehrmind.tasks.ehrshot.build import LABEL_NAMES
from ehrmind.tasks.ehrshot.readers import Event

D = datetime


def ev(
    t: datetime | None, code: str, value: float | str | None = None, unit: str | None = None, end=None
) -> Event:
    num = value if isinstance(value, (int, float)) else None
    text = value if isinstance(value, str) else None
    if unit is None and code.startswith("LAB//") and len(code.split("//")) > 2:
        unit = code.split("//")[2]
    return Event(t, code, canonical_code(code), None if num is None else float(num), text, unit, end, None)


def timeline(*events: Event, subject: int = 1) -> Timeline:
    return Timeline.build(subject, list(events))


def stay(adm: datetime, dis: datetime) -> list[Event]:
    """A MIMIC-IV MEDS inpatient stay."""
    return [ev(adm, "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM"), ev(dis, "HOSPITAL_DISCHARGE//HOME")]


def labels(name: str, tl: Timeline, **overrides) -> tuple[list[tuple[datetime, bool]], dict]:
    from collections import Counter

    stats: Counter[str] = Counter()
    got = get_labeler(name, **overrides).label(tl, stats)
    return [(r.prediction_time, r.value) for r in got], dict(stats)


def write_meds(path: Path, rows: list[tuple], *, row_group_size: int | None = None) -> Path:
    """A MEDS events file from (subject_id, time, code, numeric_value) rows."""
    table = pa.table(
        {
            "subject_id": pa.array([r[0] for r in rows], pa.int64()),
            "time": pa.array([r[1] for r in rows], pa.timestamp("us")),
            "code": pa.array([r[2] for r in rows], pa.string()),
            "numeric_value": pa.array([r[3] if len(r) > 3 else None for r in rows], pa.float32()),
        }
    )
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


# ---------------------------------------------------------------------------------------------- labelers

DIS = D(2020, 1, 5, 12, 0)
PT = D(2020, 1, 5, 23, 59, 59)  # 11:59pm on the discharge day
HTN = "DIAGNOSIS//ICD//10//I10"


@pytest.mark.parametrize(
    ("extra", "expected", "excluded"),
    [
        # first diagnosis 5 months later, record goes on: positive
        ([ev(D(2020, 6, 1), HTN), ev(D(2021, 6, 1), "LAB//50983//mEq/L", 140)], [(PT, True)], None),
        # diagnosis exactly 365 days after the prediction time: still inside the window
        ([ev(PT + timedelta(days=365), HTN)], [(PT, True)], None),
        # one minute past the window, record goes on: negative
        ([ev(PT + timedelta(days=365, minutes=1), HTN)], [(PT, False)], None),
        # no diagnosis, record goes on past the window: negative
        ([ev(D(2021, 3, 1), "LAB//50983//mEq/L", 140)], [(PT, False)], None),
        # no diagnosis and the record ends inside the window: a negative (EHRSHOT: is_apply_censoring False)
        ([ev(D(2020, 3, 1), "LAB//50983//mEq/L", 140)], [(PT, False)], None),
        # diagnosed during the stay (MIMIC writes diagnoses at discharge): already diagnosed, excluded
        ([ev(DIS, HTN), ev(D(2021, 6, 1), "LAB//50983//mEq/L", 140)], [], "excluded: already diagnosed"),
        # diagnosed the evening after discharge, before 11:59pm: already diagnosed at the prediction time
        ([ev(D(2020, 1, 5, 20, 0), HTN), ev(D(2021, 6, 1), HTN)], [], "excluded: already diagnosed"),
        # ICD-9 spelling of the same disease counts (401.9 without a dot, as MIMIC writes it)
        ([ev(D(2020, 6, 1), "DIAGNOSIS//ICD//9//4019")], [(PT, True)], None),
        # ICD-9 406 is not in the set (401-405): no outcome, record goes on -> negative
        ([ev(D(2020, 6, 1), "DIAGNOSIS//ICD//9//4060"), ev(D(2021, 2, 1), "X")], [(PT, False)], None),
    ],
)
def test_new_diagnosis_window_and_exclusions(extra, expected, excluded):
    tl = timeline(*stay(D(2020, 1, 1, 10), DIS), *extra)
    got, stats = labels("new_hypertension", tl)
    assert got == expected
    if excluded:
        assert stats[excluded] == 1


def test_new_diagnosis_keeps_only_stays_before_the_first_diagnosis():
    tl = timeline(
        *stay(D(2019, 1, 1), D(2019, 1, 3)),
        *stay(D(2019, 6, 1), D(2019, 6, 4)),
        ev(D(2019, 9, 1), "DIAGNOSIS//ICD//10//E785"),  # first hyperlipidemia diagnosis
        *stay(D(2019, 12, 1), D(2019, 12, 2)),  # after it: excluded
        ev(D(2021, 1, 1), "X"),
    )
    got, stats = labels("new_hyperlipidemia", tl)
    # 2019-01-03: diagnosis 241 days later -> positive; 2019-06-04: 89 days later -> positive
    assert got == [(D(2019, 1, 3, 23, 59, 59), True), (D(2019, 6, 4, 23, 59, 59), True)]
    assert stats["excluded: already diagnosed"] == 1


CENSORED = "excluded: censored (follow-up ends inside the window)"
AFTER = ev(D(2021, 6, 1), "X")  # the record goes on past the 365-day window


@pytest.mark.parametrize(
    ("extra", "options", "expected", "censored"),
    [
        # window opening: EHRSHOT's TimeHorizon(timedelta(days=1), timedelta(days=365))
        # diagnosed 12 hours after the prediction time, never again: before the window opens -> negative
        ([ev(PT + timedelta(hours=12), HTN), AFTER], {}, [(PT, False)], 0),
        # ... but a positive with ehrmind's window from 1 minute
        ([ev(PT + timedelta(hours=12), HTN), AFTER], {"rules": "ehrmind"}, [(PT, True)], 0),
        ([ev(PT + timedelta(hours=12), HTN), AFTER], {"horizon_start_minutes": 1}, [(PT, True)], 0),
        # exactly 1 day after: the window's first instant (inclusive) -> positive
        ([ev(PT + timedelta(days=1), HTN), AFTER], {}, [(PT, True)], 0),
        # a minute short of 1 day: outside
        ([ev(PT + timedelta(days=1, minutes=-1), HTN), AFTER], {}, [(PT, False)], 0),
        # censoring: the record ends 27 days after the prediction time, no diagnosis
        # EHRSHOT (is_apply_censoring -> False): a negative
        ([ev(D(2020, 2, 1), "X")], {}, [(PT, False)], 0),
        # ehrmind's earlier rule: dropped as censored, by the rule set or the one option
        ([ev(D(2020, 2, 1), "X")], {"rules": "ehrmind"}, [], 1),
        ([ev(D(2020, 2, 1), "X")], {"censor": True}, [], 1),
        # an explicit option wins over the rule set
        ([ev(D(2020, 2, 1), "X")], {"rules": "ehrmind", "censor": False}, [(PT, False)], 0),
    ],
)
def test_new_diagnosis_window_start_and_censoring(extra, options, expected, censored):
    tl = timeline(*stay(D(2020, 1, 1), DIS), *extra)
    got, stats = labels("new_hypertension", tl, **options)
    assert got == expected
    assert stats.get(CENSORED, 0) == censored


def test_new_diagnosis_question_states_the_window():
    q = get_labeler("new_hypertension").question(PT, {})
    assert "between 1 day and 365 days after the prediction time (2020-01-05 23:59)" in q
    assert "within 365 days after" in get_labeler("new_hypertension", rules="ehrmind").question(PT, {})
    with pytest.raises(ConfigError, match="unknown rules 'benchmark'"):
        get_labeler("new_hypertension", rules="benchmark")
    with pytest.raises(ConfigError, match="horizon_start_minutes must be between 0 and"):
        get_labeler("new_hypertension", horizon_start_minutes=-1)
    with pytest.raises(ConfigError, match="censor must be true or false"):
        get_labeler("new_hypertension", censor="sometimes")


def test_new_diagnosis_on_ehrshot_omop_visits_and_snomed():
    # EHRSHOT CSV: a Visit/IP event with an end; the SNOMED root of EHRSHOT's essential hypertension task
    visit = ev(D(2020, 1, 1, 10), "Visit/IP", end=DIS)
    visit.table = "visit_occurrence"
    point = ev(D(2020, 2, 1), "Visit/IP", end=D(2020, 2, 1))  # single point in time: dropped, as EHRSHOT
    tl = timeline(visit, point, ev(D(2020, 8, 1), "SNOMED/59621000"), ev(D(2021, 8, 1), "X"))
    assert labels("new_hypertension", tl)[0] == [(PT, True)]


@pytest.mark.parametrize(
    ("events", "expected", "excluded"),
    [
        # readmitted 15 days later; the second stay is followed for 30+ days without readmission
        (
            [*stay(D(2020, 1, 1), DIS), *stay(D(2020, 1, 20), D(2020, 1, 25)), ev(D(2020, 4, 1), "X")],
            [(PT, True), (D(2020, 1, 25, 23, 59, 59), False)],
            None,
        ),
        # admission exactly 30 days after the prediction time: inside; a minute later: outside
        (
            [
                *stay(D(2020, 1, 1), DIS),
                *stay(PT + timedelta(days=30), PT + timedelta(days=32)),
                ev(D(2020, 6, 1), "X"),
            ],
            [(PT, True), (D(2020, 2, 6, 23, 59, 59), False)],
            None,
        ),
        (
            [
                *stay(D(2020, 1, 1), DIS),
                *stay(PT + timedelta(days=30, minutes=1), PT + timedelta(days=32)),
                ev(D(2020, 6, 1), "X"),
            ],
            [(PT, False), (D(2020, 2, 6, 23, 59, 59), False)],
            None,
        ),
        # readmitted the same day as discharge: the benchmark's code keeps it (its docstring's rule is
        # same_day=next_admission, test_readmission_same_day_rules); the readmission is before the window
        (
            [*stay(D(2020, 1, 1), DIS), *stay(D(2020, 1, 5, 18), D(2020, 1, 9)), ev(D(2020, 4, 1), "X")],
            [(PT, False), (D(2020, 1, 9, 23, 59, 59), False)],
            None,
        ),
        # record ends 10 days after discharge: censored
        (
            [*stay(D(2020, 1, 1), DIS), ev(D(2020, 1, 15), "X")],
            [],
            "excluded: censored (follow-up ends inside the window)",
        ),
    ],
)
def test_readmission(events, expected, excluded):
    got, stats = labels("guo_readmission", timeline(*events))
    assert got == expected
    if excluded:
        assert stats[excluded] == 1


def test_readmission_same_day_rules():
    """ehrshot-benchmark `ehrshot/labelers/ehrshot.py:95-105` drops a stay discharged on the day an earlier
    kept stay was admitted; its docstring ("readmitted on same day as discharge"), ehrmind's earlier rule, drops
    a stay followed by an admission on its discharge day (issue #29: 223/51 vs 221/50 on the MIMIC demo)."""
    two_same_day = [  # a same-day stay, then another stay admitted and discharged that day
        *stay(D(2020, 1, 1, 8), D(2020, 1, 1, 12)),
        *stay(D(2020, 1, 1, 14), D(2020, 1, 1, 20)),
        ev(D(2020, 6, 1), "X"),
    ]
    got, stats = labels("guo_readmission", timeline(*two_same_day))
    assert got == [(D(2020, 1, 1, 23, 59, 59), False)]
    assert stats["excluded: readmitted on the day of discharge"] == 1  # stay 2 ends on stay 1's admission day
    later = [
        *stay(D(2020, 1, 1), D(2020, 1, 3)),
        *stay(D(2020, 1, 3, 9), D(2020, 1, 3, 18)),
        ev(D(2020, 6, 1), "X"),
    ]
    bench, stats = labels("guo_readmission", timeline(*later))
    assert bench == [(D(2020, 1, 3, 23, 59, 59), False)]  # stay 2 ends on stay 2's own admission day: kept
    assert stats.get("excluded: readmitted on the day of discharge") is None
    docstring, stats = labels("guo_readmission", timeline(*later), same_day="next_admission")
    assert docstring == [(D(2020, 1, 3, 23, 59, 59), False)]
    assert (
        stats["excluded: readmitted on the day of discharge"] == 1
    )  # stay 1: readmitted on its discharge day
    # the benchmark's rule: stay 3 is discharged on day 5, when stay 2 (kept) was admitted
    three = [
        *stay(D(2020, 1, 1), D(2020, 1, 3)),
        *stay(D(2020, 1, 5, 8), D(2020, 1, 5, 10)),
        *stay(D(2020, 1, 5, 12), D(2020, 1, 5, 20)),
        ev(D(2020, 6, 1), "X"),
    ]
    got, stats = labels("guo_readmission", timeline(*three))
    assert stats["excluded: readmitted on the day of discharge"] == 1
    assert got == [(D(2020, 1, 3, 23, 59, 59), True), (D(2020, 1, 5, 23, 59, 59), False)]
    with pytest.raises(ConfigError, match="same_day must be benchmark or next_admission"):
        get_labeler("guo_readmission", same_day="sometimes")


@pytest.mark.parametrize(
    ("adm", "dis", "expected"),
    [
        (D(2020, 1, 1, 10), D(2020, 1, 8, 10), [(D(2020, 1, 1, 23, 59, 59), True)]),  # exactly 7 days: long
        (D(2020, 1, 1, 10), D(2020, 1, 8, 9, 59), [(D(2020, 1, 1, 23, 59, 59), False)]),  # a minute short
        (D(2020, 1, 1, 10), D(2020, 1, 1, 20), []),  # discharged the day of admission: excluded
    ],
)
def test_long_length_of_stay(adm, dis, expected):
    assert labels("guo_los", timeline(*stay(adm, dis)))[0] == expected


def test_same_time_events_give_the_same_labels_in_any_file_order():
    """Issue #16, cause 8: labels depended on the file order of same-minute events (on the MIMIC demo 74 vs
    76 `new_hypertension` examples for the rows of each subject reversed). A transfer discharges and admits
    in one minute; with two labs at that minute too, every file order gives one timeline and one set of
    labels, the transfer read as two stays."""
    import itertools

    t = D(2020, 1, 5, 12)
    same_minute = [
        ev(t, "HOSPITAL_DISCHARGE//HOME"),
        ev(t, "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM"),
        ev(t, "LAB//50983//mEq/L", 131.0),
        ev(t, "LAB//50983//mEq/L", 128.0),
    ]
    before = [
        ev(D(1960, 1, 1), "MEDS_BIRTH"),
        ev(D(2020, 1, 1, 10), "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM"),
    ]
    after = [ev(D(2020, 1, 9, 12), "HOSPITAL_DISCHARGE//HOME")]
    seen_events, seen_labels = set(), set()
    for order in itertools.permutations(same_minute):
        tl = timeline(*after, *order, *before)  # the file order is also shuffled across times
        seen_events.add(tuple((e.time, e.code, e.numeric_value) for e in tl.events))
        seen_labels.add(
            tuple(tuple(labels(name, tl)[0]) for name in ("new_hypertension", "guo_los", "lab_hyponatremia"))
        )
    assert len(seen_events) == 1 and len(seen_labels) == 1
    htn, los, _ = seen_labels.pop()
    assert [pt for pt, _ in htn] == [
        D(2020, 1, 5, 23, 59, 59),
        D(2020, 1, 9, 23, 59, 59),
    ]  # two stays, not none
    assert [pt for pt, _ in los] == [D(2020, 1, 1, 23, 59, 59), D(2020, 1, 5, 23, 59, 59)]


def icu(t: datetime, unit: str = "Medical Intensive Care Unit (MICU)") -> Event:
    return ev(t, f"ICU_ADMISSION//{unit}")


def omop_icu(t: datetime, end: datetime | None, code: str = "CARE_SITE/7928450") -> Event:
    return dataclasses.replace(ev(t, code, end=end), table="visit_detail")


I_ADM, I_DIS = D(2020, 1, 1, 10), D(2020, 1, 6, 12)


@pytest.mark.parametrize(
    ("events", "expected", "excluded"),
    [
        # an ICU admission after the prediction time (11:59pm on the admission day), before discharge: positive
        ([*stay(I_ADM, I_DIS), icu(D(2020, 1, 3, 4))], [(D(2020, 1, 1, 23, 59, 59), True)], None),
        # at the discharge time itself: still within the stay (WithinVisitLabeler's <= end)
        ([*stay(I_ADM, I_DIS), icu(I_DIS)], [(D(2020, 1, 1, 23, 59, 59), True)], None),
        # after discharge, or none: negative (no censoring within a visit)
        ([*stay(I_ADM, I_DIS), icu(D(2020, 1, 7))], [(D(2020, 1, 1, 23, 59, 59), False)], None),
        (stay(I_ADM, I_DIS), [(D(2020, 1, 1, 23, 59, 59), False)], None),
        # ICU on the day of admission: the stay is excluded (it would be in the prompt)
        (
            [*stay(I_ADM, I_DIS), icu(D(2020, 1, 1, 22))],
            [],
            "excluded: ICU admission on the day of admission",
        ),
        # discharged on the day of admission: excluded
        (stay(I_ADM, D(2020, 1, 1, 20)), [], "excluded: discharged on the day of admission"),
        # OMOP (EHRSHOT): visit_detail at an ICU care site with an end after its start
        (
            [*stay(I_ADM, I_DIS), omop_icu(D(2020, 1, 2), D(2020, 1, 4))],
            [(D(2020, 1, 1, 23, 59, 59), True)],
            None,
        ),
        # a single-point ICU visit_detail, or another care site, is not an ICU stay
        (
            [*stay(I_ADM, I_DIS), omop_icu(D(2020, 1, 2), D(2020, 1, 2))],
            [(D(2020, 1, 1, 23, 59, 59), False)],
            None,
        ),
        (
            [*stay(I_ADM, I_DIS), omop_icu(D(2020, 1, 2), D(2020, 1, 4), "CARE_SITE/1")],
            [(D(2020, 1, 1, 23, 59, 59), False)],
            None,
        ),
    ],
)
def test_icu_transfer(events, expected, excluded):
    got, stats = labels("guo_icu", timeline(*events))
    assert got == expected
    if excluded:
        assert stats[excluded] == 1


@pytest.mark.parametrize(
    ("labeler", "code", "value", "expected_class"),
    [
        ("lab_hyponatremia", "LAB//50983//mEq/L", 135, "mild"),  # EHRSHOT: <= 135 is mild
        ("lab_hyponatremia", "LAB//50983//mEq/L", 135.5, "normal"),
        ("lab_hyponatremia", "LAB//50983//mEq/L", 124, "severe"),
        ("lab_hyponatremia", "LOINC/2951-2", 129, "moderate"),
        ("lab_hyperkalemia", "LAB//50971//mEq/L", 5.5, "normal"),  # > 5.5 is mild
        ("lab_hyperkalemia", "LAB//50971//mEq/L", 6.1, "moderate"),
        ("lab_hyperkalemia", "LAB//50971//mEq/L", 7.1, "severe"),
        ("lab_hypoglycemia", "LAB//50931//mg/dL", 70, "mild"),  # 70/18 = 3.89 <= 3.9
        ("lab_hypoglycemia", "LAB//50931//mg/dL", 71, "normal"),  # 3.94
        ("lab_hypoglycemia", "LAB//50931//mg/dL", 53, "severe"),  # 2.94 < 3
        ("lab_anemia", "LAB//51222//g/dL", 11.9, "mild"),  # g/dL x 10 = 119 g/L < 120
        ("lab_anemia", "LAB//51222//g/dL", 12.0, "normal"),
        ("lab_anemia", "LAB//51222//g/dL", 6.9, "severe"),
        ("lab_thrombocytopenia", "LAB//51265//K/uL", 149, "mild"),
        ("lab_thrombocytopenia", "LAB//51265//K/uL", 150, "normal"),
        ("lab_thrombocytopenia", "LAB//51265//K/uL", "normal", "normal"),  # EHRSHOT reads text 'normal'
    ],
)
def test_lab_thresholds(labeler, code, value, expected_class):
    from collections import Counter

    t = D(2020, 1, 2, 8, 30)
    tl = timeline(ev(D(2020, 1, 1), "X"), ev(t, code, value))
    got = get_labeler(labeler).label(tl, Counter())
    assert len(got) == 1
    assert got[0].prediction_time == t - timedelta(minutes=1)  # one minute before the result
    assert got[0].label_class == expected_class
    assert got[0].value is (expected_class != "normal")  # EHRSHOT's evaluation: mild or worse is positive


def test_lab_exclusions():
    from collections import Counter

    stats: Counter[str] = Counter()
    tl = timeline(
        ev(D(2020, 1, 1), "LAB//50971//mEq/L", 6.5),  # at the first event of the record: excluded
        ev(D(2020, 1, 2), "LAB//50971//furlongs", 6.5),  # unit EHRSHOT cannot convert: skipped
        ev(D(2020, 1, 3), "LAB//50971//UNK"),  # no value: skipped
        ev(D(2020, 1, 4), "LAB//50971//mg/dL", 108.0),  # EHRSHOT's mg/dL factor (1/18): 6.0 -> mild
    )
    got = get_labeler("lab_hyperkalemia").label(tl, stats)
    assert [(r.prediction_time, r.label_class) for r in got] == [(D(2020, 1, 3, 23, 59), "mild")]
    assert stats["excluded: result at the time of the first event"] == 1
    assert stats["excluded: no usable value or unit"] == 2


def test_labeler_names_and_config_errors():
    assert set(LABELER_NAMES) == {
        "guo_los",
        "guo_icu",
        "guo_readmission",
        "new_hypertension",
        "new_hyperlipidemia",
        "new_pancan",
        "new_celiac",
        "new_lupus",
        "new_acutemi",
        "lab_thrombocytopenia",
        "lab_hyperkalemia",
        "lab_hypoglycemia",
        "lab_hyponatremia",
        "lab_anemia",
    }
    assert LABEL_NAMES == {True: "yes", False: "no"}
    with pytest.raises(ConfigError, match="unknown labeler"):
        get_labeler("new_flu")
    with pytest.raises(ConfigError, match="valid:"):
        get_labeler("new_hypertension", horizon=3)
    with pytest.raises(ConfigError, match="codes"):
        get_labeler("new_hypertension", codes=[])
    # codes are configuration: a narrower set (essential hypertension only) changes the labels
    narrow = get_labeler("new_hypertension", codes=["ICD10CM/I10", "ICD9CM/401*"])
    assert "ICD10CM/I10" in narrow.codes and "ICD10CM/I110" not in narrow.codes


# ---------------------------------------------------------------------------------------------- serializer

LEAK = "ZZLEAKCODE"


def _leaky_timeline() -> tuple[Timeline, datetime]:
    """A stay whose prediction time is 2020-01-05 23:59, with distinctive events after it."""
    events = [
        ev(None, "GENDER//F"),
        ev(D(1970, 3, 1), "MEDS_BIRTH"),
        *stay(D(2020, 1, 1, 10), DIS),
        ev(D(2020, 1, 2, 7), "LAB//50983//mEq/L", 131),
        ev(D(2020, 1, 3, 7), "DIAGNOSIS//ICD//10//E119"),
        ev(D(2020, 1, 4, 9), "MEDICATION//START//Metformin"),
        # after the prediction time
        ev(D(2020, 1, 6, 0, 0), f"MEDICATION//START//{LEAK}"),
        ev(D(2020, 1, 6, 8), "LAB//50983//mEq/L", 999),
        ev(D(2020, 2, 1), f"DIAGNOSIS//ICD//10//{LEAK}"),
        ev(D(2020, 2, 1), "DIAGNOSIS//ICD//10//I10"),
        ev(D(2020, 2, 1), "MEDS_DEATH"),
        ev(D(2021, 6, 1), "X"),
    ]
    return timeline(*events), PT


def test_no_event_after_the_prediction_time_reaches_the_prompt():
    tl, pt = _leaky_timeline()
    text = TimelineSerializer(SerializerConfig(tables="all")).serialize(tl, pt).text
    assert "Sodium: 131 mEq/L (low)" in text and "Metformin" in text and "Type 2 diabetes" in text
    assert "49-year-old female" in text
    for planted in (LEAK, "999", "hypertension", "Death", "2020-01-06", "2020-02-01"):
        assert planted not in text
    # and through the whole pipeline: every example's prompt only has times at or before its own
    from collections import Counter

    from ehrmind.tasks.ehrshot.build import make_example

    task, labeler = get_task("ehrshot"), get_labeler("new_hypertension")
    (result,) = labeler.label(tl, Counter())
    ex = make_example(task.name, labeler, TimelineSerializer(SerializerConfig(tables="all")), tl, result)
    prompt = "\n".join(m["content"] for m in task.render(ex))
    assert LEAK not in prompt and result.value is True
    for stamp in re.findall(r"\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2})?", prompt):
        fmt = "%Y-%m-%d %H:%M" if " " in stamp else "%Y-%m-%d"
        assert datetime.strptime(stamp, fmt) <= pt, stamp


def test_visit_end_after_the_prediction_time_is_not_shown():
    # long length of stay: predicting on the admission day; the visit's end (the answer) must not leak
    visit = ev(D(2020, 1, 1, 10), "Visit/IP", end=D(2020, 1, 9, 10))
    earlier = ev(D(2019, 5, 1, 10), "Visit/IP", end=D(2019, 5, 3, 10))
    tl = timeline(earlier, visit)
    text = TimelineSerializer().serialize(tl, D(2020, 1, 1, 23, 59)).text
    assert "ongoing at the prediction time" in text and "2020-01-09" not in text
    assert "until 2019-05-03 10:00" in text


@settings(max_examples=60, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=-500, max_value=500), min_size=1, max_size=40),
    cut=st.integers(min_value=-200, max_value=200),
    budget=st.integers(min_value=64, max_value=400),
)
def test_serializer_never_shows_the_future(offsets, cut, budget):
    base = D(2020, 1, 1)
    pt = base + timedelta(days=cut)
    codes = [
        "DIAGNOSIS//ICD//10//I10",
        "LAB//50983//mEq/L",
        "MEDICATION//START//Aspirin",
        "PROCEDURE//ICD//9//5491",
    ]
    events = []
    for i, off in enumerate(offsets):
        t = base + timedelta(days=off)
        future = t > pt
        code = f"MEDICATION//START//FUTURE{i}" if future else codes[i % len(codes)]
        events.append(ev(t, code, float(i) if code.startswith("LAB") else None))
    ser = TimelineSerializer(SerializerConfig(max_tokens=budget, tables="all")).serialize(
        timeline(*events), pt
    )
    assert "FUTURE" not in ser.text
    assert ser.approx_tokens <= budget
    assert (
        ser.n_events_used
        <= ser.n_events_before
        == sum(1 for off in offsets if base + timedelta(days=off) <= pt)
    )


def test_truncation_keeps_the_most_recent_events():
    # 300 diagnoses on consecutive days, each a distinct code: a small budget keeps a recent suffix
    days = 300
    pool = [c for c in ("A000", "A001", "A009", "A010", "A011", "A0100", "A0101", "A0102")]
    events = [ev(D(2019, 1, 1) + timedelta(days=i), f"DIAGNOSIS//ICD//10//X{i:03d}") for i in range(days)]
    events += [ev(D(2019, 1, 1), f"DIAGNOSIS//ICD//10//{c}") for c in pool]
    pt = D(2019, 1, 1) + timedelta(days=days)
    ser = TimelineSerializer(SerializerConfig(max_tokens=256, tables="paper")).serialize(
        timeline(*events), pt
    )
    shown = [int(m) for m in re.findall(r"X(\d{3})", ser.text)]
    assert ser.truncated and "[Truncated to fit the length budget" in ser.text
    assert ser.approx_tokens <= 256
    assert shown and shown == list(range(days - 1, days - 1 - len(shown), -1))  # newest first, no gaps
    assert min(shown) > 200 and "A000" not in ser.text  # the oldest are the ones dropped
    # a larger budget shows everything, untruncated
    full = TimelineSerializer(SerializerConfig(max_tokens=20000, tables="paper")).serialize(
        timeline(*events), pt
    )
    assert not full.truncated and full.n_events_used == full.n_events_before == days + len(pool)


def test_reused_serializer_never_mixes_up_subjects():
    # the serializer caches one timeline's categories and demographics; it was keyed by id(), which a
    # new timeline can reuse once the previous one is freed: another patient's sex, or an IndexError
    ser = TimelineSerializer()
    for n in range(1, 40):
        sex = "F" if n % 2 else "M"
        events = [ev(None, f"GENDER//{sex}"), ev(D(1960, 1, 1), "MEDS_BIRTH")]
        events += [ev(D(2020, 1, 1, h), "LAB//50983//mEq/L", 140) for h in range(n % 5)]
        text = ser.serialize(timeline(*events, subject=n), D(2020, 1, 2)).text  # freed after the call
        assert ("female" in text) is (sex == "F"), n


@settings(max_examples=40, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=60),
    cuts=st.lists(st.integers(min_value=-10, max_value=320), min_size=1, max_size=8),
    budget=st.integers(min_value=80, max_value=600),
)
def test_a_reused_serializer_renders_every_prediction_time_as_a_fresh_one(offsets, cuts, budget):
    """The serializer keeps each event's rendered line for the next prediction time of the same timeline (issue
    #31: 20,000 labels of one file rendered every event again for each); every prompt must stay what a fresh
    serializer writes — visits too, whose end is shown only when it is before the prediction time."""
    base = D(2020, 1, 1)
    codes = [
        "LAB//50983//mEq/L",
        "LAB//50971//mEq/L",
        "DIAGNOSIS//ICD//10//I10",
        "MEDICATION//START//Aspirin",
    ]
    events = [
        ev(base + timedelta(days=o, hours=i % 24), codes[i % 4], 130.0 + i if i % 4 < 2 else None)
        for i, o in enumerate(offsets)
    ]
    events += [
        ev(base + timedelta(days=o), "Visit/IP", end=base + timedelta(days=o + 3)) for o in offsets[::5]
    ]
    tl = timeline(*events)
    config = SerializerConfig(max_tokens=budget, tables="all", lab_history=3)
    reused = TimelineSerializer(config)
    for cut in cuts:
        pt = base + timedelta(days=cut, hours=12)
        assert reused.serialize(tl, pt) == TimelineSerializer(config).serialize(tl, pt)


def test_tables_option_selects_sections():
    tl, pt = _leaky_timeline()
    paper = TimelineSerializer(SerializerConfig(tables="paper")).serialize(tl, pt).text
    assert "Conditions and diagnoses" in paper and "Lab results" not in paper and "Medications" not in paper
    assert "Patient:" not in paper  # demographics are a table too
    labs = TimelineSerializer(SerializerConfig(tables="demographics,labs")).serialize(tl, pt).text
    assert "Lab results" in labs and "Conditions" not in labs and "Patient: 49-year-old female" in labs
    with pytest.raises(ConfigError, match="tables"):
        SerializerConfig(tables="labs,notes")


# ---------------------------------------------------------------------------------------------- readers and files


def _ehrshot_csv(path: Path, rows: list[list[str]]) -> Path:
    header = "patient_id,start,end,code,value,unit,visit_id,omop_table\n"
    path.write_text(header + "".join(",".join(r) + "\n" for r in rows))
    return path


def test_ehrshot_csv_reader(tmp_path):
    path = _ehrshot_csv(
        tmp_path / "ehrshot.csv",
        [
            ["7", "1960-05-01 00:00:00", "", "SNOMED/3950001", "", "", "", "person"],
            ["7", "1960-05-01 00:00:00", "", "Gender/F", "", "", "", "person"],
            ["7", "2020-01-01 10:00:00", "2020-01-05 12:00:00", "Visit/IP", "", "", "1", "visit_occurrence"],
            ["7", "2020-01-02 08:00:00", "", "LOINC/2951-2", "129", "mmol/L", "1", "measurement"],
            ["7", "2020-01-02 08:00:00", "", "LOINC/5778-6", "Yellow", "", "1", "measurement"],
            ["7", "2020-06-01 00:00:00", "", "SNOMED/59621000", "", "", "2", "condition_occurrence"],
            ["8", "2019-01-01 00:00:00", "", "ICD10CM/E78.5", "", "", "", "condition_occurrence"],
        ],
    )
    tls = list(iter_timelines(path))
    assert [tl.subject_id for tl in tls] == [7, 8]
    visit = tls[0].timed[2]
    assert (visit.code, visit.end, visit.table) == ("Visit/IP", D(2020, 1, 5, 12), "visit_occurrence")
    na, color = tls[0].timed[3], tls[0].timed[4]
    assert (na.numeric_value, na.unit, na.canonical) == (129.0, "mmol/L", "LOINC/2951-2")
    assert (color.numeric_value, color.text_value) == (None, "Yellow")
    assert tls[1].events[0].canonical == "ICD10CM/E785"
    text = TimelineSerializer().serialize(tls[0], D(2020, 1, 3)).text
    assert "LOINC 2951-2: 129 mmol/L (low)" in text and "59-year-old female" in text
    assert "Inpatient visit (Visit IP), ongoing at the prediction time" in text


@pytest.mark.parametrize(("reader", "ahead"), [("rows", 0), ("columnar", 3)])
def test_streaming_reads_one_subject_at_a_time(tmp_path, monkeypatch, reader, ahead):
    """Each subject is yielded once its rows end, with at most `ahead` batches read in advance (the columnar
    reader reads up to 2 batches ahead in a thread, plus the one it is handing over)."""
    import ehrmind.tasks.ehrshot.columnar as columnar
    import ehrmind.tasks.ehrshot.readers as readers

    rows = [
        (s, D(2020, 1, 1) + timedelta(hours=h), "LAB//50983//mEq/L", 140.0)
        for s in range(1, 21)
        for h in range(100)
    ]
    path = write_meds(tmp_path / "events.parquet", rows, row_group_size=100)
    read = []
    module, name = (readers, "iter_table_batches") if reader == "rows" else (columnar, "iter_arrow_batches")
    real = getattr(module, name)

    def counting(*args, **kwargs):
        for batch in real(*args, **kwargs):
            read.append(100)
            yield batch

    monkeypatch.setattr(module, name, counting)
    stream = iter_timelines(path, batch_rows=100, reader=reader)
    first = next(stream)
    # the first subject is complete after two batches of 100 rows, out of 20 batches in the file
    assert first.subject_id == 1 and len(first.events) == 100 and sum(read) <= 200 + 100 * ahead
    assert sum(len(tl.events) for tl in stream) == 1900 and len(read) == 20


@pytest.mark.parametrize(
    ("mutate", "row", "field", "message"),
    [
        pytest.param(lambda t: t.drop_columns(["code"]), 1, "code", "missing column", id="missing-column"),
        pytest.param(
            lambda t: t.set_column(
                1, "time", pa.array(["2020-01-01"] * 4 + ["not a time"] + ["2020-01-02"], pa.string())
            ),
            5,
            "time",
            "unparseable time",
            id="unparseable-time",
        ),
        pytest.param(
            lambda t: t.set_column(2, "code", pa.array(["A"] * 3 + [""] + ["B"] * 2, pa.string())),
            4,
            "code",
            "empty code",
            id="empty-code",
        ),
        pytest.param(
            lambda t: t.set_column(2, "code", pa.array(["A", "B", "C\nD", "E", "F", "G"], pa.string())),
            3,
            "code",
            "line break",
            id="code-with-newline",
        ),
        pytest.param(
            lambda t: t.set_column(0, "subject_id", pa.array([1, 1, 2, 2, 1, 1], pa.int64())),
            5,
            "subject_id",
            "appears again",
            id="subjects-not-grouped",
        ),
    ],
)
def test_malformed_event_files_name_file_row_and_field(tmp_path, mutate, row, field, message):
    rows = [(1, D(2020, 1, 1), "A"), (1, D(2020, 1, 2), "B"), (1, D(2020, 1, 3), "C")]
    rows += [(2, D(2020, 1, 1), "D"), (2, D(2020, 1, 2), "E"), (2, D(2020, 1, 3), "F")]
    path = write_meds(tmp_path / "events.parquet", rows)
    pq.write_table(mutate(pq.read_table(path)), path)
    with pytest.raises(DataError) as err:
        list(iter_timelines(path))
    assert err.value.file == path and err.value.row == row and err.value.field == field
    assert message in str(err.value) and str(path) in str(err.value) and f"row {row}" in str(err.value)


def test_malformed_csv_names_the_row(tmp_path):
    path = _ehrshot_csv(
        tmp_path / "ehrshot.csv",
        [
            ["7", "2020-01-01 00:00:00", "", "ICD10CM/I10", "", "", "", ""],
            ["7", "2020-13-45", "", "X", "", "", "", ""],
        ],
    )
    with pytest.raises(DataError, match=r"ehrshot.csv, row 2, field 'start': unparseable time"):
        list(iter_timelines(path))
    bad = tmp_path / "short.csv"
    bad.write_text(
        "patient_id,start,end,code,value,unit,visit_id,omop_table\n7,2020-01-01,,X,,,,\n7,2020-01-02\n"
    )
    with pytest.raises(DataError, match=r"short.csv, row 2: cannot parse CSV") as err:
        list(iter_timelines(bad))
    assert "2020-01-02" not in str(
        err.value
    )  # pyarrow quotes the bad line; patient data stay out of messages


def test_unknown_codes_counted_or_strict(tmp_path):
    from ehrmind.tasks.ehrshot import Vocabulary
    from ehrmind.tasks.ehrshot.readers import ReadStats

    rows = [(1, D(2020, 1, 1), "DIAGNOSIS//ICD//10//I10"), (1, D(2020, 1, 2), "DIAGNOSIS//ICD//10//Q99ZZZ")]
    path = write_meds(tmp_path / "events.parquet", rows)
    stats = ReadStats()
    assert len(list(iter_timelines(path, vocab=Vocabulary(), stats=stats))) == 1
    assert stats.unknown_codes == {"ICD10CM/Q99ZZZ": 1} and "row 2" in stats.unknown_examples[0]
    with pytest.raises(DataError, match=r"row 2, field 'code': unknown code 'DIAGNOSIS//ICD//10//Q99ZZZ'"):
        list(iter_timelines(path, vocab=Vocabulary(), strict_codes=True))


def test_sort_option_handles_unsorted_data(tmp_path):
    rows = [
        (2, D(2020, 1, 1), "A"),
        (1, D(2020, 1, 1), "B"),
        (2, D(2020, 1, 2), "C"),
        (1, D(2019, 1, 1), "D"),
    ]
    path = write_meds(tmp_path / "events.parquet", rows)
    tls = {tl.subject_id: [e.code for e in tl.events] for tl in iter_timelines(path, sort=True)}
    assert tls == {1: ["D", "B"], 2: ["A", "C"]}


def test_label_files_ehrshot_and_meds(tmp_path):
    ehrshot = tmp_path / "labeled_patients.csv"
    ehrshot.write_text(
        "patient_id,prediction_time,value,label_type\n"
        "7,2020-01-05 23:59:00,True,boolean\n7,2020-03-01 23:59:00,False,boolean\n"
    )
    labs = tmp_path / "lab_labels.csv"
    labs.write_text(
        "patient_id,prediction_time,value,label_type\n7,2020-01-02 07:59:00,2,categorical\n8,2020-01-02 07:59:00,0,categorical\n"
    )
    meds = tmp_path / "labels.parquet"
    pq.write_table(
        pa.table(
            {
                "subject_id": pa.array([7], pa.int64()),
                "prediction_time": pa.array([D(2020, 1, 5, 23, 59)], pa.timestamp("us")),
                "boolean_value": pa.array([True]),
            }
        ),
        meds,
    )
    got = read_label_file(ehrshot)
    assert [(x.prediction_time, x.value) for x in got[7]] == [
        (D(2020, 1, 5, 23, 59), True),
        (D(2020, 3, 1, 23, 59), False),
    ]
    lab = read_label_file(labs)
    assert (lab[7][0].value, lab[7][0].label_class, lab[8][0].value) == (True, "moderate", False)
    assert read_label_file(meds)[7][0].value is True
    bad = tmp_path / "bad.csv"
    bad.write_text("patient_id,prediction_time,value\n7,2020-01-05 23:59:00,True\n7,yesterday,False\n")
    with pytest.raises(DataError, match=r"bad.csv, row 2, field 'prediction_time'"):
        read_label_file(bad)
    with pytest.raises(DataError, match=r"missing column 'boolean_value'"):
        (tmp_path / "nolabel.csv").write_text("patient_id,prediction_time\n7,2020-01-05\n")
        read_label_file(tmp_path / "nolabel.csv")


def test_conflicting_labels_in_a_label_file_are_an_error_in_either_order(tmp_path):
    """Issue #31: two rows for one subject and time with different labels — the first row won, so reversing the
    file flipped the label. Now an error naming both rows, whatever the order; the same label twice is fine."""
    head = "patient_id,prediction_time,value\n"
    rows = ["7,2020-01-05 23:59:00,True\n", "8,2020-01-05 23:59:00,True\n", "7,2020-01-05 23:59:00,False\n"]
    for name, body in (("fwd.csv", rows), ("rev.csv", rows[::-1])):
        (tmp_path / name).write_text(head + "".join(body))
        with pytest.raises(
            DataError,
            match=rf"{name}, row 3, field 'prediction_time': subject 7 has two different labels at 2020-01-05T23:59:00 \(rows 1 and 3\)",
        ):
            read_label_file(tmp_path / name)
    (tmp_path / "twice.csv").write_text(head + rows[0] + rows[1] + rows[0])
    assert [x.value for x in read_label_file(tmp_path / "twice.csv")[7]] == [True, True]


# ---------------------------------------------------------------------------------------------- build (ehrmind data)


def _demo_events(tmp_path: Path) -> Path:
    rows = [
        (1, D(1960, 1, 1), "MEDS_BIRTH"),
        (1, D(2020, 1, 1, 10), "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM"),
        (1, D(2020, 1, 2, 8), "LAB//50983//mEq/L", 131.0),
        (1, D(2020, 1, 5, 12), "HOSPITAL_DISCHARGE//HOME"),
        (1, D(2020, 6, 1), "DIAGNOSIS//ICD//10//I10"),
        (1, D(2021, 6, 1), "LAB//50983//mEq/L", 140.0),
        (2, D(1950, 1, 1), "MEDS_BIRTH"),
        (2, D(2020, 3, 1, 10), "HOSPITAL_ADMISSION//URGENT//TRANSFER FROM HOSPITAL"),
        (2, D(2020, 3, 3, 12), "HOSPITAL_DISCHARGE//HOME"),
        (2, D(2021, 6, 1), "LAB//50983//mEq/L", 140.0),
    ]
    return write_meds(tmp_path / "events.parquet", rows)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("seed", 1.5, "seed: input should be a valid integer"),
        ("sort", "maybe", "sort: input should be a valid boolean"),
        ("strict_codes", 3, "strict_codes: input should be a valid boolean"),
        ("min_age", float("nan"), "min_age: input should be greater than or equal to 0, got nan"),
        ("min_age", float("inf"), "min_age: input should be a finite number"),
        ("min_age", True, "min_age: input should be a valid integer"),
        ("batch_rows", -1, "batch_rows: input should be greater than or equal to 1"),
        ("tables", 3, "tables: input should be a valid string"),
        ("rules", "x", "rules: input should be 'ehrshot' or 'ehrmind'"),
        ("horizon_days", True, "horizon_days must be a number"),
        ("horizon_days", 1.5, "horizon_days must be a whole number"),
        ("censor", 1, "censor must be true or false"),
        ("timed_codes", 3, "timed_codes: input should be a valid string"),
    ],
)
def test_build_options_of_the_wrong_type_are_refused_before_reading(tmp_path, option, value, message):
    """Issue #31: these were taken (seed 1.5, sort=maybe), dropped every example (min_age NaN) or tracebacks."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        get_task("ehrshot").build_data(
            _demo_events(tmp_path), tmp_path / "out", labeler="new_hypertension", **{option: value}
        )
    assert not (tmp_path / "out" / "examples.jsonl").exists()


def test_build_data_writes_jsonl_with_top_level_fields(tmp_path):
    task = get_task("ehrshot")
    manifest = task.build_data(
        _demo_events(tmp_path), tmp_path / "out", labeler="new_hypertension", max_tokens=200
    )
    lines = [json.loads(x) for x in (tmp_path / "out" / "examples.jsonl").read_text().splitlines()]
    assert [(x["id"], x["subject_id"], x["prediction_time"], x["label"]) for x in lines] == [
        ("1@2020-01-05T23:59:59", 1, "2020-01-05T23:59:59", True),
        ("2@2020-03-03T23:59:59", 2, "2020-03-03T23:59:59", False),
    ]
    assert lines[0]["target"] == {"label": True, "label_name": "yes"}
    assert lines[0]["metadata"]["category"] == "new_hypertension" and "truncated" in lines[0]["metadata"]
    examples = task.load(tmp_path / "out")  # Example.from_dict ignores the extra top-level keys
    assert manifest["files"]["examples.jsonl"]["sha256"] == examples_hash(examples)
    assert manifest["stats"]["positives"] == 1 and manifest["labeler_config"]["horizon_days"] == 365
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["n"] == 2


def test_build_with_existing_label_file_uses_it_as_is(tmp_path):
    labels_csv = tmp_path / "labeled_patients.csv"
    labels_csv.write_text(
        "patient_id,prediction_time,value,label_type\n"
        "1,2020-01-03 12:00:00,False,boolean\n"  # not a time our labeler would pick: used as given
        "2,2020-03-03 23:59:00,True,boolean\n"
        "99,2020-03-03 23:59:00,True,boolean\n"  # subject without events: skipped, counted
    )
    manifest = build_snapshot(
        get_task("ehrshot"),
        _demo_events(tmp_path),
        tmp_path / "out",
        labeler="new_hypertension",
        labels=str(labels_csv),
    )
    examples = get_task("ehrshot").load(tmp_path / "out")
    assert [(e.id, e.target["label"]) for e in examples] == [
        ("1@2020-01-03T12:00:00", False),
        ("2@2020-03-03T23:59:00", True),
    ]
    assert manifest["label_file_subjects_without_events"] == 1
    assert "131 mEq/L" in examples[0].input["timeline"]  # 2020-01-02 lab: before the label's time


def test_label_file_is_asked_its_own_question(tmp_path):
    """Issue #15, item 4: an ACES-style label file (hypertension-free, say) was asked the question of the
    labeler it had to be given (hypertension). Now a label file brings its question; a labeler is asked only
    when named."""
    labels_csv = tmp_path / "htn_free.csv"
    labels_csv.write_text("patient_id,prediction_time,value,label_type\n1,2020-01-03 12:00:00,True,boolean\n")
    question = "Will this patient stay free of hypertension for a year after {prediction_time}?"
    manifest = build_snapshot(
        get_task("ehrshot"),
        _demo_events(tmp_path),
        tmp_path / "out",
        labels=str(labels_csv),
        question=question,
    )
    (ex,) = get_task("ehrshot").load(tmp_path / "out")
    assert (
        ex.input["question"]
        == "Will this patient stay free of hypertension for a year after 2020-01-03 12:00?"
    )
    assert (
        ex.metadata["category"] == ex.metadata["labeler"] == "htn_free" and manifest["labeler"] == "htn_free"
    )
    assert manifest["question"] == question and manifest["labeler_config"] is None
    with pytest.raises(ConfigError, match="a label file needs the question its labels answer"):
        build_snapshot(get_task("ehrshot"), _demo_events(tmp_path), tmp_path / "o2", labels=str(labels_csv))
    with pytest.raises(ConfigError, match="question applies to a label file"):
        build_snapshot(
            get_task("ehrshot"), _demo_events(tmp_path), tmp_path / "o3", labeler="guo_los", question="x?"
        )


def test_build_options_and_config(tmp_path):
    events = _demo_events(tmp_path)
    task = get_task("ehrshot")
    with pytest.raises(ConfigError, match="needs a labeler"):
        task.build_data(events, tmp_path / "a")
    with pytest.raises(ConfigError, match="unknown ehrshot option"):
        task.build_data(events, tmp_path / "a", labeler="new_hypertension", max_token=5)
    config = tmp_path / "htn.yaml"
    config.write_text("horizon_days: 100\ncodes: [ICD10CM/I10]\n")
    m = task.build_data(events, tmp_path / "b", labeler="new_hypertension", config=str(config))
    # diagnosis 148 days after discharge: outside a 100-day window -> negative
    assert m["labeler_config"]["horizon_days"] == 100 and m["stats"]["positives"] == 0
    with pytest.raises(ConfigError, match="raw events"):
        task.load(events)
    direct = get_task("ehrshot", labeler="new_hypertension", max_tokens=200).load(events)
    assert [e.target["label"] for e in direct] == [True, False]


# ---------------------------------------------------------------------------------------------- verifier, metrics


def _example(label: bool, labeler: str = "new_hypertension", ex_id: str = "1@t"):
    from ehrmind.types import Example

    return Example(
        id=ex_id,
        task="ehrshot",
        input={"timeline": "Prediction time: 2020-01-01", "question": "?"},
        target={"label": label, "label_name": LABEL_NAMES[label]},
        metadata={
            "labeler": labeler,
            "category": labeler,
            "label": label,
            "subject_id": 1,
            "prediction_time": "t",
        },
    )


@pytest.mark.parametrize(
    ("value", "labeler", "expected"),
    [
        ("yes", "new_hypertension", True),
        ("No.", "new_hypertension", False),  # case and trailing punctuation
        (True, "new_hypertension", True),  # JSON booleans
        (0, "new_hypertension", False),
        ("readmitted", "guo_readmission", True),  # the labeler's own names
        ("Not readmitted", "guo_readmission", False),
        ("long stay", "guo_los", True),
        ("abnormal", "lab_hyponatremia", True),
        ("severe", "lab_hyponatremia", True),
        ("normal", "lab_hyponatremia", False),
        ("hypertension", "new_hypertension", True),
        ("maybe", "new_hypertension", None),  # never guessed
        (2, "new_hypertension", None),
        ("readmitted", "new_hypertension", None),  # another labeler's name is not an answer here
    ],
)
def test_parse_prediction(value, labeler, expected):
    assert parse_prediction(value, labeler)[0] is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.7, 0.7),
        ("0.25", 0.25),
        ("70%", 0.7),
        (1, 1.0),
        (1.5, None),
        (-0.1, None),
        ("high", None),
        (True, None),
        (10**400, None),  # too large for a float: no OverflowError (issue #16, cause 2)
        ("9" * 400, None),
    ],
)
def test_parse_probability(value, expected):
    assert parse_probability(value) == expected


def test_verify_reads_prediction_and_probability():
    task = get_task("ehrshot")
    ex = _example(True)
    good = task.verify(ex, '<think>risk</think><answer>{"prediction": "yes", "probability": 0.8}</answer>')
    assert (good.format_ok, good.correct, good.parsed) == (
        True,
        True,
        {"prediction": "yes", "probability": 0.8},
    )
    wrong = task.verify(ex, '<think>x</think><answer>{"prediction": "no"}</answer>')
    assert (wrong.correct, wrong.parsed, wrong.reward) == (
        False,
        {"prediction": "no", "probability": None},
        0.0,
    )
    bad = task.verify(ex, "<answer>perhaps</answer>")
    assert (bad.format_ok, bad.correct, bad.parsed, bad.reward) == (False, False, None, -2.0)
    huge = task.verify(
        ex, '<think>x</think><answer>{"prediction": "yes", "probability": ' + "9" * 400 + "}</answer>"
    )
    assert huge.correct is True and huge.parsed["probability"] is None  # a reward never raises
    assert task.verify(ex, gold_completion(task, ex)).correct is True
    direct = get_task("ehrshot", mode="direct")
    assert direct.verify(ex, '<answer>{"prediction": "yes"}</answer>').format_ok is True
    msgs = task.render(ex)
    assert (
        '{"prediction": "yes"}' in msgs[0]["content"] and "Prediction time: 2020-01-01" in msgs[1]["content"]
    )


def _row(ex_id: str, label: bool, pred: str | None, prob: float | None = None, sample: int = 0) -> dict:
    parsed = None if pred is None else {"prediction": pred, "probability": prob}
    correct = None if pred is None else (pred == "yes") == label
    return {
        "id": ex_id,
        "sample": sample,
        "label": label,
        "category": "t",
        "parsed": parsed,
        "correct": False if pred is None else correct,
        "format_ok": pred is not None,
    }


def test_metrics_against_hand_computed_values():
    # gold 1,1,0,0; answers yes,no,no,yes with stated probabilities 0.9, 0.4, 0.2, 0.6
    rows = [
        _row("a", True, "yes", 0.9),
        _row("b", True, "no", 0.4),
        _row("c", False, "no", 0.2),
        _row("d", False, "yes", 0.6),
    ]
    b = binary_block(rows)
    # sensitivity 1/2, specificity 1/2 -> balanced accuracy 0.5
    assert (
        b["balanced_accuracy"] == pytest.approx(0.5) and b["sensitivity"] == 0.5 and b["specificity"] == 0.5
    )
    # AUROC: positive > negative in 3 of 4 pairs (0.9>0.2, 0.9>0.6, 0.4>0.2; 0.4<0.6)
    assert b["auroc"] == pytest.approx(0.75)
    # AUPRC (average precision): ranks P(0.9) N(0.6) P(0.4) N(0.2): 0.5*1 + 0.5*(2/3)
    assert b["auprc"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert b["score_source"] == "stated probability" and b["n_positive"] == 2
    lo, hi = b["balanced_accuracy_ci95"]
    assert 0 <= lo <= 0.5 <= hi <= 1
    # several samples and no probability: score = share of yes; an unreadable answer is wrong (-1)
    rows = [
        _row("a", True, "yes", sample=0),
        _row("a", True, "yes", sample=1),
        _row("a", True, "no", sample=2),
        _row("b", True, None, sample=0),
        _row("b", True, None, sample=1),
        _row("b", True, None, sample=2),
        _row("c", False, "no", sample=0),
        _row("c", False, "yes", sample=1),
        _row("c", False, "no", sample=2),
        _row("d", False, "no", sample=0),
        _row("d", False, "no", sample=1),
        _row("d", False, "no", sample=2),
    ]
    task = get_task("ehrshot")
    m = task_metrics(
        task, rows
    )  # summarize's blocks plus the per-labeler block (one labeler: also the overall)
    b = m["by_labeler"]["t"]
    # predictions: a yes (2/3), b invalid, c no (1/3), d no -> sensitivity 1/2, specificity 1 -> 0.75
    assert b["balanced_accuracy"] == pytest.approx(0.75) and b["invalid_rate"] == pytest.approx(0.25)
    # scores a 2/3, b 0 (no readable answer: counted wrong, never 0.5), c 1/3, d 0: of the 4 positive-negative
    # pairs a > c, a > d, b < c, b = d (a tie counts 1/2): AUROC 2.5 / 4
    assert (
        b["auroc"] == pytest.approx(0.625) and b["score_source"] == "share of yes" and b["n_unreadable"] == 1
    )
    assert (
        m["binary"]["balanced_accuracy"] == pytest.approx(0.75)
        and m["binary"]["auroc"] == pytest.approx(0.625)
        and m["n"] == 4
    )
    assert any("| t | 4 | 2 | 0.750 |" in line for line in report_sections(task, m))
    # one class only: AUROC undefined (None), never a made-up number
    assert binary_block([_row("a", True, "yes"), _row("b", True, "no")])["auroc"] is None


def test_model_probability_is_the_score_and_differs_from_balanced_accuracy():
    # one sample per example, yes/no answers only: the share of yes is 0/1, so AUROC = balanced accuracy
    answers = [
        ("a", True, "yes"),
        ("b", True, "no"),
        ("c", False, "no"),
        ("d", False, "yes"),
        ("e", True, "no"),
    ]
    votes = binary_block([_row(i, g, p) for i, g, p in answers])
    assert (
        votes["auroc"] == pytest.approx(votes["balanced_accuracy"])
        and votes["score_source"] == "share of yes"
    )
    # the model's own P(yes) at its answer ranks the positives above the negatives although two answers are wrong
    p_yes = {"a": 0.8, "b": 0.45, "c": 0.1, "d": 0.4, "e": 0.42}
    rows = [_row(i, g, p) | {"yes_probability": p_yes[i]} for i, g, p in answers]
    b = binary_block(rows)
    assert b["balanced_accuracy"] == pytest.approx(votes["balanced_accuracy"])  # the labels did not change
    assert b["auroc"] == pytest.approx(1.0) != pytest.approx(b["balanced_accuracy"])
    assert b["score_source"] == "model probability"
    # it wins over a stated probability; rows without it keep theirs, and the source says so
    mixed = [rows[0] | {"parsed": {"prediction": "yes", "probability": 0.1}}, _row("f", False, "no", 0.3)]
    assert binary_block(mixed)["score_source"] == "mixed: model probability, stated probability"


def test_choice_point_is_where_the_answer_value_starts():
    task = get_task("ehrshot")
    ex = None  # the completion alone decides
    done = '<think>BP high.</think>\n<answer>{"prediction": "yes", "probability": 0.7}</answer>'
    prefix, choices = YesProbability().point(task, ex, done)
    assert prefix == '<think>BP high.</think>\n<answer>{"prediction": ' and choices == {
        "yes": '"yes"',
        "no": '"no"',
    }
    assert YesProbability().point(task, ex, "I cannot tell.") is None
    assert attached(get_task("medcalc"), ChoicePoint) == []  # not a binary task


def test_records_to_examples_from_flat_rows(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(
        json.dumps({"id": "x", "timeline": "T", "question": "Q?", "label": "yes", "labeler": "guo_los"})
        + "\n"
        + json.dumps({"id": "y", "timeline": "T", "question": "Q?", "label": False})
        + "\n"
    )
    exs = get_task("ehrshot").load(path)
    assert [(e.id, e.target["label"], e.metadata["category"]) for e in exs] == [
        ("x", True, "guo_los"),
        ("y", False, ""),
    ]
    path.write_text(json.dumps({"id": "x", "timeline": "T", "question": "Q?", "label": "perhaps"}) + "\n")
    with pytest.raises(DataError, match=r"row 1, field 'label'"):
        get_task("ehrshot").load(path)


def test_lab_task_prompt_stops_before_the_result(tmp_path):
    rows = [
        (1, D(2020, 1, 1), "MEDS_BIRTH"),
        (1, D(2020, 1, 2, 8), "LAB//50983//mEq/L", 141.0),
        (1, D(2020, 1, 3, 8), "LAB//50983//mEq/L", 128.0),  # the result to predict (moderate)
        (1, D(2020, 1, 3, 8), "LAB//51222//g/dL", 7.7),  # drawn with it: also after the prediction time
    ]
    path = write_meds(tmp_path / "events.parquet", rows)
    exs = get_task("ehrshot", labeler="lab_hyponatremia").load(path)
    assert [(e.metadata["prediction_time"], e.target["label"], e.target.get("label_class")) for e in exs] == [
        ("2020-01-02T07:59:00", False, "normal"),
        ("2020-01-03T07:59:00", True, "moderate"),
    ]
    text = exs[1].input["timeline"]
    assert "141 mEq/L" in text and "128" not in text and "7.7" not in text
    assert "sodium <= 135 mmol/L" in exs[1].input["question"]


# EHRSHOT's ETL (femr transforms/stanford.py move_to_day_end): a date-only event, stamped 00:00, happened
# some time that day, so it is moved to 23:59 and a prediction earlier that day does not see it.
def _same_day_events(tmp_path: Path) -> Path:
    rows = [
        (1, D(1960, 1, 1), "MEDS_BIRTH"),
        (1, D(2020, 1, 2, 8), "LAB//50983//mEq/L", 141.0),
        (1, D(2020, 1, 3), "ICD10CM/E871"),  # date-only diagnosis (hypo-osmolality), an OMOP source code
        (1, D(2020, 1, 3, 12, 1), "LAB//50983//mEq/L", 128.0),  # the result to predict: at 12:00
    ]
    return write_meds(tmp_path / "events.parquet", rows)


@pytest.mark.parametrize(
    ("options", "visible"),
    [
        ({}, False),  # default: the diagnosis sits at 23:59, after the noon prediction time
        ({"rules": "ehrmind"}, True),  # ehrmind's earlier reading: 00:00, so in the noon prompt
        ({"move_to_day_end": False}, True),
        ({"rules": "ehrmind", "move_to_day_end": True}, False),  # the explicit option wins
    ],
)
def test_midnight_event_is_not_visible_to_an_earlier_prediction_that_day(tmp_path, options, visible):
    exs = get_task("ehrshot", labeler="lab_hyponatremia", **options).load(_same_day_events(tmp_path))
    noon = next(e for e in exs if e.metadata["prediction_time"] == "2020-01-03T12:00:00")
    assert ("E87.1" in noon.input["timeline"]) is visible
    assert "60-year-old" in noon.input["timeline"]  # the birth is never moved: the age is unchanged


def test_real_midnight_times_stay_at_midnight_on_mimic_data(tmp_path):
    """Issue #29, MIMIC look-ahead: MIMIC-IV MEDS takes lab times from `charttime`, so a 00:00 sodium is a real
    00:00 result. Read as a date (moved to 23:59), its label's prediction time became 23:58 and the prompt
    showed that day's later results. `timed_codes` (default: MIMIC's datetime-column codes) keeps them."""
    rows = [
        (1, D(1960, 1, 1), "MEDS_BIRTH"),
        (1, D(2020, 1, 1, 9), "LAB//50983//mEq/L", 140.0),
        (1, D(2020, 1, 3), "LAB//50983//mEq/L", 128.0),  # a real midnight result: the one to predict
        (1, D(2020, 1, 3, 11), "LAB//50983//mEq/L", 131.0),  # later that day
        (1, D(2020, 1, 3), "PROCEDURE//ICD//10//5A1D60Z"),  # procedures_icd `chartdate`: a date, moved
        (1, D(2020, 1, 3), "ICD10CM/E871"),  # an OMOP code at midnight (EHRSHOT): a date, moved
    ]
    path = write_meds(tmp_path / "events.parquet", rows)
    exs = get_task("ehrshot", labeler="lab_hyponatremia").load(path)
    ids = [e.id for e in exs]
    assert ids == ["1@2020-01-01T08:59:00", "1@2020-01-02T23:59:00", "1@2020-01-03T10:59:00"]
    midnight = exs[1].input["timeline"]
    assert "131" not in midnight and "128" not in midnight and "E87.1" not in midnight
    from ehrmind.tasks.ehrshot.readers import ReadStats, iter_timelines

    read = ReadStats()
    (tl,) = iter_timelines(path, stats=read)
    moved = {e.code: e.time for e in tl.timed}
    assert moved["PROCEDURE//ICD//10//5A1D60Z"] == moved["ICD10CM/E871"] == D(2020, 1, 3, 23, 59)
    assert (read.moved_to_day_end, read.kept_at_midnight) == (2, 1)
    # femr's rule for every source (timed_codes=[]): the old look-ahead, kept reachable as an option
    old = get_task("ehrshot", labeler="lab_hyponatremia", timed_codes=[]).load(path)
    assert [e.id for e in old][1:] == ["1@2020-01-03T10:59:00", "1@2020-01-03T23:58:00"]
    assert "131" in old[2].input["timeline"]  # the later result, shown before the "midnight" one


def test_move_to_day_end_in_the_reader(tmp_path):
    from ehrmind.tasks.ehrshot.readers import ReadStats, move_to_day_end

    assert move_to_day_end(D(2020, 1, 3)) == D(2020, 1, 3, 23, 59)
    assert move_to_day_end(D(2020, 1, 3, 0, 0, 1)) == D(2020, 1, 3, 0, 0, 1)  # not exactly midnight: kept
    path = _ehrshot_csv(
        tmp_path / "ehrshot.csv",
        [
            ["7", "1960-05-01 00:00:00", "", "SNOMED/3950001", "", "", "", "person"],  # birth: kept
            # a visit stamped by date on both ends: both moved, the end kept at or after the start
            ["7", "2020-01-01 00:00:00", "2020-01-01 00:00:00", "Visit/IP", "", "", "1", "visit_occurrence"],
            ["7", "2020-01-01 10:00:00", "", "LOINC/2951-2", "129", "mmol/L", "1", "measurement"],
        ],
    )
    stats = ReadStats()
    (tl,) = iter_timelines(path, stats=stats)
    birth, na, visit = tl.timed  # re-sorted: the visit now comes after the 10:00 result
    assert birth.time == D(1960, 5, 1) and na.time == D(2020, 1, 1, 10)
    assert (visit.code, visit.time, visit.end) == ("Visit/IP", D(2020, 1, 1, 23, 59), D(2020, 1, 1, 23, 59))
    assert stats.moved_to_day_end == 1 and stats.to_dict()["moved_to_day_end"] == 1
    (old,) = iter_timelines(path, day_end=False)
    assert [e.time for e in old.timed] == [D(1960, 5, 1), D(2020, 1, 1), D(2020, 1, 1, 10)]
    with pytest.raises(ConfigError, match="move_to_day_end: Input should be a valid boolean"):
        get_task("ehrshot", labeler="lab_hyponatremia", move_to_day_end="yes").load(path)


def test_time_zone_offsets_are_converted_to_utc(tmp_path):
    from ehrmind.tasks.ehrshot.readers import parse_time

    assert parse_time("2020-01-01T10:00:00+02:00") == D(2020, 1, 1, 8)
    assert parse_time("2020-01-01T10:00:00Z") == D(2020, 1, 1, 10)
    assert parse_time("2020-01-01 10:00:00") == D(2020, 1, 1, 10)  # naive: its zone is unknown, kept
    # two results written with different offsets: on one clock, the +02:00 one (08:00 UTC) comes first,
    # although its wall-clock time (10:00) is later; dropping the offsets would swap them
    path = _ehrshot_csv(
        tmp_path / "ehrshot.csv",
        [
            ["7", "2020-01-01T09:00:00+00:00", "", "LOINC/2951-2", "140", "mmol/L", "", "measurement"],
            ["7", "2020-01-01T10:00:00+02:00", "", "LOINC/2951-2", "129", "mmol/L", "", "measurement"],
        ],
    )
    (tl,) = iter_timelines(path)
    assert [(e.time, e.numeric_value) for e in tl.timed] == [
        (D(2020, 1, 1, 8), 129.0),
        (D(2020, 1, 1, 9), 140.0),
    ]
    # a Parquet column with a time zone: start and end converted to UTC
    from zoneinfo import ZoneInfo

    ny = ZoneInfo("America/New_York")
    table = pa.table(
        {
            "subject_id": pa.array([1], pa.int64()),
            "time": pa.array([D(2020, 1, 1, 10, tzinfo=ny)], pa.timestamp("us", tz="America/New_York")),
            "code": pa.array(["Visit/IP"]),
            "end": pa.array([D(2020, 1, 3, 10, tzinfo=ny)], pa.timestamp("us", tz="America/New_York")),
        }
    )
    pq.write_table(table, tmp_path / "tz.parquet")
    (tl,) = iter_timelines(tmp_path / "tz.parquet")
    assert (tl.timed[0].time, tl.timed[0].end) == (D(2020, 1, 1, 15), D(2020, 1, 3, 15))  # EST = UTC-5


def test_max_examples_per_subject_is_a_seeded_sample(tmp_path):
    rows = [(1, D(2020, 1, 1), "MEDS_BIRTH")]
    rows += [(1, D(2020, 1, 2) + timedelta(hours=h), "LAB//50983//mEq/L", 130.0 + h) for h in range(10)]
    path = write_meds(tmp_path / "events.parquet", rows)

    def ids(**opts):
        return [e.id for e in get_task("ehrshot", labeler="lab_hyponatremia", **opts).load(path)]

    assert len(ids()) == 10 and len(ids(limit=4)) == 4
    a, b = ids(max_examples_per_subject=3, seed=1), ids(max_examples_per_subject=3, seed=1)
    assert a == b and len(a) == 3 and a == sorted(a)  # deterministic, kept in time order
    assert ids(max_examples_per_subject=3, seed=2) != a


def test_vocabulary_and_ontology_files(tmp_path):
    from ehrmind.tasks.ehrshot import CodeSet, Vocabulary
    from ehrmind.tasks.ehrshot.ontology import expand_descendants

    # OMOP Athena files are tab-separated, without quoting
    (tmp_path / "CONCEPT.csv").write_text(
        "concept_id\tconcept_name\tdomain_id\tvocabulary_id\tconcept_class_id\tstandard_concept\tconcept_code\n"
        "320128\tEssential hypertension\tCondition\tSNOMED\tClinical Finding\tS\t59621000\n"
        "319826\tBenign essential hypertension\tCondition\tSNOMED\tClinical Finding\tS\t1201005\n"
        '3004249\tSystolic blood pressure "office"\tMeasurement\tLOINC\tLab Test\tS\t8480-6\n'
    )
    (tmp_path / "CONCEPT_ANCESTOR.csv").write_text(
        "ancestor_concept_id\tdescendant_concept_id\tmin_levels_of_separation\tmax_levels_of_separation\n"
        "320128\t320128\t0\t0\n320128\t319826\t1\t1\n"
    )
    codes, info = expand_descendants(CodeSet.parse(["SNOMED/59621000", "ICD10CM/I10*"]), tmp_path)
    assert "SNOMED/1201005" in codes and "ICD10CM/I109" in codes and info["descendants_added"] == 1
    vocab = Vocabulary.load([tmp_path / "CONCEPT.csv"])
    assert vocab.describe("SNOMED/1201005") == "Benign essential hypertension"
    assert vocab.describe("LOINC/8480-6") == 'Systolic blood pressure "office"'
    assert vocab.is_known("SNOMED/999") is False and vocab.is_known("RxNorm/1") is None
    # built-in descriptions: ICD-10-CM (maintained package tables), ICD-9-CM
    assert Vocabulary().describe("ICD10CM/I10") == "Essential (primary) hypertension"
    assert Vocabulary().describe("ICD9CM/4019") == "Unspecified essential hypertension"
    tl = timeline(ev(D(2020, 1, 1), "SNOMED/1201005"))
    text = TimelineSerializer(vocab=vocab).serialize(tl, D(2020, 1, 2)).text
    assert "Benign essential hypertension (SNOMED 1201005)" in text
    with pytest.raises(DataError, match="a vocabulary needs columns"):
        (tmp_path / "v.csv").write_text("a,b\n1,2\n")
        Vocabulary.load([tmp_path / "v.csv"])


def test_hf_model_probability_from_the_logits(tiny_model, tmp_path):
    """The HF backend scores P("yes") vs P("no") after the model's own reasoning; eval writes it per row and the
    metrics use it (#12 item 8)."""
    import math as _math

    from ehrmind.eval.runner import model_probability
    from ehrmind.generate.hf import GenerationSettings, HFGenerator

    gen = HFGenerator(str(tiny_model), GenerationSettings(max_new_tokens=4))
    task = get_task("ehrshot")
    ex = Example(
        id="1@2020-01-01T23:59:00",
        task="ehrshot",
        input={"timeline": "Prediction time: 2020-01-01 23:59", "question": "Will it happen?"},
        target={"label": True, "label_name": "yes"},
        metadata={"category": "t", "labeler": "new_hypertension"},
    )
    done = '<think>r</think>\n<answer>{"prediction": "no"}</answer>'
    prefix, choices = YesProbability().point(task, ex, done)
    yes, no = gen.choice_logprobs(task.render(ex), prefix, [choices["yes"], choices["no"]])
    assert yes < 0 and no < 0 and yes != no
    p = model_probability(task, gen, ex, done)
    assert p == pytest.approx(1 / (1 + _math.exp(no - yes)))
    assert model_probability(task, gen, ex, "no answer") is None


# ---------------------------------------------------------------------------------------------- issue #16, cause 12


def test_rows_without_time_are_counted_and_an_empty_source_is_an_error(tmp_path, caplog):
    """Issue #16, cause 12: MEDS rows with a null time became static facts and the subject's examples
    vanished uncounted; a 0-row source exited 0 with an empty snapshot. Now the rows are counted in the
    manifest (a sex code without a time is expected; a discharge is not) and no examples is an error that
    leaves no folder behind."""
    import logging

    rows = [
        (1, None, "GENDER//F"),
        (1, D(1960, 1, 1), "MEDS_BIRTH"),
        (1, D(2020, 1, 1, 10), "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM"),
        (1, D(2020, 1, 9, 12), "HOSPITAL_DISCHARGE//HOME"),
        (2, None, "GENDER//M"),
        (2, D(1950, 1, 1), "MEDS_BIRTH"),
        (2, D(2020, 3, 1, 10), "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM"),
        (2, None, "HOSPITAL_DISCHARGE//HOME"),  # its time was lost: subject 2 has no stay
    ]
    task = get_task("ehrshot")
    with caplog.at_level(logging.WARNING):
        manifest = task.build_data(
            write_meds(tmp_path / "e.parquet", rows), tmp_path / "out", labeler="guo_los"
        )
    read = manifest["read"]
    assert (read["rows_without_time"], read["rows_without_time_not_static"]) == (3, 1)
    assert read["rows_without_time_examples"] == ["HOSPITAL_DISCHARGE//HOME (e.parquet row 8)"]
    assert any("have no time and were read as static facts" in r.getMessage() for r in caplog.records)
    assert manifest["n"] == 1

    empty = write_meds(tmp_path / "empty.parquet", [])
    with pytest.raises(DataError, match="no events: the source has no rows"):
        task.build_data(empty, tmp_path / "empty-out", labeler="guo_los")
    assert not (tmp_path / "empty-out").exists()
    births_only = write_meds(tmp_path / "births.parquet", [(1, D(1960, 1, 1), "MEDS_BIRTH")])
    with pytest.raises(DataError, match="no examples from 1 rows of 1 subjects"):
        task.build_data(births_only, tmp_path / "b-out", labeler="guo_los")


def test_snapshot_and_flat_rows_with_wrong_types_are_refused(tmp_path):
    """Issue #16, cause 12: a snapshot label that is not a boolean, or a timeline given as a list, was
    accepted (the list became the text "[1, 2]")."""
    task = get_task("ehrshot")
    good = _example(True).to_dict()
    for mutate, field in (
        (lambda d: d["target"].update(label="yes"), "target.label"),
        (lambda d: d["target"].update(label_name="no"), "target.label_name"),
        (lambda d: d["input"].update(timeline=[1, 2]), "input.timeline"),
    ):
        row = json.loads(json.dumps(good))
        mutate(row)
        path = tmp_path / "snap.jsonl"
        path.write_text(json.dumps(row) + "\n")
        with pytest.raises(DataError, match=f"row 1, field '{field}'"):
            task.load(path)
    flat = tmp_path / "flat.jsonl"
    flat.write_text(json.dumps({"timeline": [1, 2], "question": "?", "label": "yes"}) + "\n")
    with pytest.raises(DataError, match="field 'timeline': expected text, got a list"):
        task.load(flat)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 2.63, -0.1, True])
def test_a_probability_outside_zero_to_one_is_not_a_score(bad):
    """Issue #31: a hand-edited or foreign row's probability (NaN, inf, 2.63) reached AUROC and the MEDS
    export; it is ignored, and the example is scored by its share of yes, as a row without one."""
    rows = [_row("a", True, "yes", prob=bad), _row("b", False, "no", prob=bad)]
    rows[0]["yes_probability"] = bad
    b = binary_block(rows)
    assert b["score_source"] == "share of yes" and b["auroc"] == 1.0
