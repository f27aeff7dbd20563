"""`ehrmind.tasks.medcalc.audit`: recompute MedCalc rows with the knowledge base and judge them like the verifier."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from conftest import MEDCALC_TEST, SHARED_DATA, shared_file
from ehrmind.errors import DataError
from ehrmind.tasks.medcalc.audit import (
    AUDIT_COLUMNS,
    CORRECTED_COLUMNS,
    CorrectedLabel,
    corrected_target,
    load_corrected,
    run_audit,
    same_label,
)
from ehrmind.tasks.medcalc.calculators import CALCULATORS, CalcResult, calculator, load_all
from ehrmind.tasks.medcalc.calculators.base import MissingInput
from ehrmind.tasks.medcalc.calculators.units import value_unit
from ehrmind.tasks.medcalc.task import parse_gold

CORRECTED = SHARED_DATA / "medcalc_bench" / "junzeye_v1.0_test_corrected_labels_887.csv"
FAKE_ID, UNREGISTERED_ID = 9001, 9002

# Two real v1.0 test rows (Row Number 62: MAP; 1028: gestational age), copied verbatim.
REAL_ROWS = [
    {
        "Row Number": "62",
        "Calculator ID": "5",
        "Calculator Name": "Mean Arterial Pressure (MAP)",
        "Category": "physical",
        "Output Type": "decimal",
        "Note ID": "usmle-4629",
        "Note Type": "Extracted",
        "Patient Note": "A 40-year-old unrestrained passenger is brought into the emergency room after a motor vehicle "
        "collision. The patient is awake and alert, though he complains of chest and back pain. Soon after he is "
        "brought in, the patient loses consciousness. His vitals are: Temperature 96 deg F (35.6 deg C), pulse "
        "120/min, blood pressure 80/45 mmHg, and respirations 22/min. His physical exam is significant for "
        "bruising on his chest along with crepitus present with sternal palpation. His chest radiograph is shown "
        "in Figure A.",
        "Question": "What is patient's mean arterial pressure in mm Hg?",
        "Relevant Entities": "{'Diastolic Blood Pressure': [45.0, 'mm hg'], 'Systolic Blood Pressure': [80.0, 'mm hg']}",
        "Ground Truth Answer": "56.667",
        "Lower Limit": "53.83365",
        "Upper Limit": "59.50035",
        "Ground Truth Explanation": "2/3 * 45.0 mm Hg + 1/3 * 80.0 mm Hg = 56.667 mm Hg.",
    },
    {
        "Row Number": "1028",
        "Calculator ID": "69",
        "Calculator Name": "Estimated Gestational Age",
        "Category": "date",
        "Output Type": "integer",
        "Note ID": "1",
        "Note Type": "Template",
        "Patient Note": "The patient's last menstrual period was on 03/23/2020. Today's date is 03/29/2020.",
        "Question": "Based on the patient's last menstrual period, what is the patient's estimated gestational age?",
        "Relevant Entities": "{'Current Date': '03/29/2020', 'Last menstrual date': '03/23/2020'}",
        "Ground Truth Answer": "('0 weeks', '6 days')",
        "Lower Limit": "('0 weeks', '6 days')",
        "Upper Limit": "('0 weeks', '6 days')",
        "Ground Truth Explanation": "The gap between these two dates is 6 days.",
    },
]


def _fake_row(row_id: str, entities: str, label: float, calc_id: int = FAKE_ID) -> dict[str, str]:
    return {
        "Row Number": row_id,
        "Calculator ID": str(calc_id),
        "Calculator Name": "Fake doubler",
        "Category": "lab",
        "Output Type": "decimal",
        "Note ID": "",
        "Note Type": "Template",
        "Patient Note": "x is given.",
        "Question": "What is twice x?",
        "Relevant Entities": entities,
        "Ground Truth Answer": f"{label:g}",
        "Lower Limit": f"{0.95 * label:g}",
        "Upper Limit": f"{1.05 * label:g}",
        "Ground Truth Explanation": "",
    }


FAKE_ROWS = [
    _fake_row("f1", "{'x': [5, 'mg']}", 10),  # agrees
    _fake_row("f2", "{'x': [5, 'mg']}", 20),  # label is wrong
    _fake_row("f3", "{'y': [5, 'mg']}", 10),  # the input is absent
    _fake_row("f4", "{'x': [5, 'g']}", 10),  # a unit the calculator refuses
    _fake_row("f5", "{'x': [0, 'mg']}", 10),  # the calculator raises
    _fake_row("f6", "{'x': [5, 'mg']}", 10, calc_id=UNREGISTERED_ID),  # no calculator at all
    _fake_row("f7", "{'x': [6, 'mg']}", 12),  # agrees with v1.0, not with the corrected label
]


@pytest.fixture()
def fake_calculator():
    """Register calculator 9001 (value = 2x, x in mg) for the test only."""
    load_all()

    def from_entities(e):
        if "x" not in e:
            raise MissingInput("x")
        v, unit = value_unit(e["x"])
        if unit != "mg":
            raise ValueError(f"unknown unit {unit!r} for x")
        return {"x": v}

    @calculator(
        id=FAKE_ID,
        name="Fake doubler",
        category="lab",
        output_type="decimal",
        reference="Test fixture.",
        formula="2 × x",
        inputs={"x": "x, mg"},
        from_entities=from_entities,
    )
    def doubler(*, x: float) -> CalcResult:
        return CalcResult(2 * x * (x / x), f"2 × {x} = {2 * x}")

    yield CALCULATORS[FAKE_ID]
    CALCULATORS.pop(FAKE_ID, None)


@pytest.fixture()
def small_csv(tmp_path: Path) -> Path:
    path = tmp_path / "small.csv"
    pd.DataFrame(REAL_ROWS + FAKE_ROWS).to_csv(path, index=False)
    return path


@pytest.fixture()
def corrected_csv(tmp_path: Path) -> Path:
    path = tmp_path / "corrected.csv"
    rows = [
        ("62", "56.67", "53.8365", "59.5035"),  # confirms 56.667 up to the file's 2-decimal rounding
        ("1028", "6", "5.7", "6.3"),  # gestational age written as total days: (0 weeks, 6 days)
        ("f1", "10", "9.5", "10.5"),  # confirms
        ("f2", "10", "9.5", "10.5"),  # corrects the wrong label
        ("f3", "N/A", "N/A", "N/A"),  # no corrected label
        ("f7", "14", "13.3", "14.7"),  # disagrees with the recomputation
    ]
    pd.DataFrame(rows, columns=["Unique ID", "Ground Truth Answer", "Lower Limit", "Upper Limit"]).to_csv(
        path, index=False
    )
    return path


def _read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return {r["id"]: r for r in csv.DictReader(fh)}


def test_audit_small_csv_writes_files_columns_and_causes(fake_calculator, small_csv, tmp_path):
    out = tmp_path / "audit"
    summary = run_audit(small_csv, out)
    rows = _read_csv(out / "audit.csv")
    header = next(csv.reader(open(out / "audit.csv", encoding="utf-8")))
    assert header == list(AUDIT_COLUMNS)  # no corrected columns without a corrected file
    assert set(rows) == {"62", "1028", "f1", "f2", "f3", "f4", "f5", "f6", "f7"}
    assert rows["f1"]["agrees"] == "True" and rows["f1"]["recomputed"] == "10" and rows["f1"]["note"] == ""
    assert rows["f2"]["agrees"] == "False" and rows["f2"]["note"] == "label differs beyond tolerance"
    assert rows["f3"]["note"] == "missing input x" and rows["f3"]["recomputed"] == ""
    assert rows["f4"]["note"].startswith("unit error") and "'g'" in rows["f4"]["note"]
    assert rows["f5"]["note"] == "calculator error in compute (ZeroDivisionError)"
    assert rows["f6"]["note"] == f"no calculator for id {UNREGISTERED_ID}"
    assert rows["f1"]["calculator_id"] == str(FAKE_ID) and rows["f1"]["calculator"] == "Fake doubler"
    # causes are grouped, with counts and example ids
    causes = summary["causes"]
    assert causes["missing input x"] == {"count": 1, "example_ids": ["f3"], "calculators": {str(FAKE_ID): 1}}
    assert causes["label differs beyond tolerance"]["example_ids"] == ["f2"]
    fake = next(p for p in summary["per_calculator"] if p["calculator_id"] == FAKE_ID)
    assert (fake["n"], fake["agree"]) == (6, 2)
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "## Agreement per calculator" in md and "## Disagreements by cause" in md
    assert f"| missing input x | 1 | f3 | {FAKE_ID}: 1 |" in md
    assert f"| no calculator for id {UNREGISTERED_ID} | 1 | f6 | {UNREGISTERED_ID}: 1 |" in md
    assert "![Agreement per calculator](agreement.png)" in md
    assert (out / "agreement.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "summary.json").exists()


def test_audit_with_corrected_labels(fake_calculator, small_csv, corrected_csv, tmp_path):
    out = tmp_path / "audit"
    summary = run_audit(small_csv, out, corrected=corrected_csv)
    header = next(csv.reader(open(out / "audit.csv", encoding="utf-8")))
    assert header == list(AUDIT_COLUMNS + CORRECTED_COLUMNS)
    rows = _read_csv(out / "audit.csv")
    assert rows["f1"]["label_confirmed"] == "True" and rows["f1"]["agrees_corrected"] == "True"
    assert rows["f2"]["note"] == "corrected label agrees with recomputation"
    assert rows["f2"]["label_confirmed"] == "False" and rows["f2"]["agrees_corrected"] == "True"
    assert rows["f3"]["corrected_label"] == "N/A" and rows["f3"]["label_confirmed"] == ""
    assert rows["f7"]["agrees"] == "True" and rows["f7"]["agrees_corrected"] == "False"
    assert rows["f7"]["note"] == "agrees with v1.0 label but not with the corrected label"
    assert rows["62"]["label_confirmed"] == "True"  # 56.67 confirms 56.667
    assert (
        rows["1028"]["corrected_label"] == "(0 weeks, 6 days)" and rows["1028"]["label_confirmed"] == "True"
    )
    assert rows["f4"]["corrected_label"] == ""  # not in the corrected file
    fake = next(p for p in summary["per_calculator"] if p["calculator_id"] == FAKE_ID)
    assert fake["confirmed"] == {"n": 1, "agree": 1, "agreement": 1.0}  # f1 only
    assert fake["corrected"]["n"] == 3 and fake["corrected"]["agree"] == 2  # f1, f2 agree; f7 does not
    assert summary["confirmed"]["n"] >= 1 and summary["corrected"]["n"] >= 3
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "confirms" in md and "## Disagreements with the corrected labels, by cause" in md


def test_corrected_file_errors_name_file_row_field(tmp_path, small_csv, fake_calculator):
    with pytest.raises(DataError, match="file not found"):
        run_audit(small_csv, tmp_path / "o", corrected=tmp_path / "nope.csv")
    bad = tmp_path / "bad_cols.csv"
    pd.DataFrame([{"Unique ID": "1", "Answer": "3"}]).to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"bad_cols\.csv.*row 1.*Ground Truth Answer"):
        load_corrected(bad)
    dup = tmp_path / "dup.csv"
    pd.DataFrame(
        [("1", "3", "3", "3"), ("1", "4", "4", "4")],
        columns=["Unique ID", "Ground Truth Answer", "Lower Limit", "Upper Limit"],
    ).to_csv(dup, index=False)
    with pytest.raises(DataError, match=r"row 2.*Unique ID.*duplicate"):
        load_corrected(dup)
    word = tmp_path / "word.csv"
    pd.DataFrame(
        [("f1", "ten", "9", "11")], columns=["Unique ID", "Ground Truth Answer", "Lower Limit", "Upper Limit"]
    ).to_csv(word, index=False)
    with pytest.raises(DataError, match=r"word\.csv, row 1, field 'Ground Truth Answer'"):
        run_audit(small_csv, tmp_path / "o2", corrected=word)


@pytest.mark.parametrize(
    ("output_type", "answer", "expected"),
    [
        pytest.param("gestational_age", "99", [14, 1], id="days-total"),  # the corrected file's own format
        pytest.param("gestational_age", "('2 weeks', '3 days')", [2, 3], id="tuple"),
        pytest.param("integer", "4", 4, id="integer"),
    ],
)
def test_corrected_target_formats(output_type, answer, expected):
    t = corrected_target(CorrectedLabel(1, answer, answer, answer), output_type, "c.csv")
    assert t["value"] == expected


def test_same_label_rounding_rule():
    def dec(a: str) -> dict:
        return parse_gold("decimal", a, a, a)

    assert same_label(dec("25.24"), dec("25.238"))  # the corrected file rounds to 2 decimals
    assert not same_label(dec("53.07"), dec("53.093"))  # a real correction
    assert not same_label(dec("38"), dec("38.4"))  # integers are not a rounding licence
    assert same_label(parse_gold("date", "09/12/2014", "", ""), parse_gold("date", "09/12/2014", "", ""))


def test_audit_full_v1_test_set(tmp_path):
    data = shared_file(MEDCALC_TEST)
    corrected = shared_file(CORRECTED)
    summary = run_audit(data, tmp_path / "full", corrected=corrected)
    rows = _read_csv(tmp_path / "full" / "audit.csv")
    assert len(rows) == 1047 and summary["rows"] == 1047
    assert summary["corrected"]["n"] > 700 and summary["confirmed"]["n"] > 300
    assert sum(p["n"] for p in summary["per_calculator"]) == 1047
    # every disagreement has a named cause
    assert all(r["note"] for r in rows.values() if r["agrees"] != "True")
