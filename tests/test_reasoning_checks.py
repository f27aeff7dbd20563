"""Reasoning checks (MedCalc): values of the reasoning found in the note, final value of the reasoning = answer."""

from __future__ import annotations

import json

import pytest

from ehrmind import get_task
from ehrmind.tasks.analysis import task_metrics
from ehrmind.tasks.base import gold_completion
from ehrmind.tasks.medcalc.analyses import ReasoningChecks
from ehrmind.tasks.medcalc.reasoning import check_medcalc_reasoning as check_reading
from ehrmind.tasks.medcalc.reasoning import value_tokens
from ehrmind.types import Example


def check_medcalc_reasoning(example: Example, completion: str, prefill: bool = False) -> dict:
    """The checks as evaluation reaches them: the contract's reading, then MedCalc's checks."""
    task = get_task("medcalc", prefill=prefill)
    got = task.contract.read(completion).strict
    return check_reading(example, got.think, got.answer)


QT_NOTE = "Heart rate 80 bpm, QT interval 400 msec."


def _ex(note: str, target: dict | None = None, ex_id: str = "1", explanation: str = "") -> Example:
    return Example(
        id=ex_id,
        task="medcalc",
        input={"note": note, "question": "What is the value?"},
        target=target or {"output_type": "decimal", "answer": "1", "value": 1.0, "lower": 0.0, "upper": 2.0},
        metadata={"category": "physical", "calculator_name": "X", "explanation": explanation},
    )


def _c(think: str, answer) -> str:
    return f"<think>{think}</think>\n<answer>{json.dumps({'answer': answer})}</answer>"


DATE = {"output_type": "date", "answer": "11/30/2000"}
WEEKS = {"output_type": "gestational_age", "answer": "('34 weeks', '3 days')", "value": [34, 3]}
INTEGER = {"output_type": "integer", "answer": "2", "value": 2}

CASES = [
    # 400 and 80 are read from the note, 60 (seconds per minute) is a constant; 0.75 and 461.88 are computed.
    # 461.88 ~ 461.9: equal to one decimal, the precision of the less precise of the two
    pytest.param(
        QT_NOTE,
        None,
        _c(
            "QT is 400 msec and the heart rate is 80 bpm. RR = 60/80 = 0.75. QTc = 400/√0.75 = 461.88 msec.",
            461.9,
        ),
        {"n_values": 3, "n_in_note": 2, "numbers_in_note_rate": 2 / 3, "final_value_matches_answer": True},
        id="qtc-constant-not-in-note",
    ),
    # 87 after '=' is an operand (an operator follows), 1.75 and 28.41 end computations
    pytest.param(
        "Weight 87 kg, height 175 cm.",
        None,
        _c("Height 175 cm = 1.75 m. BMI = 87 / 1.75^2 = 28.41 kg/m^2.", 28.4),
        {"n_values": 2, "n_in_note": 2, "numbers_in_note_rate": 1.0, "final_value": "28.41"},
        id="operand-after-equals",
    ),
    # values the note does not hold, and a reasoning that ends elsewhere than the answer
    pytest.param(
        QT_NOTE,
        None,
        _c("QT is 380 msec, heart rate 95. QTc = 380/√(60/95) = 478.2", 500),
        {"n_values": 3, "n_in_note": 0, "numbers_in_note_rate": 0.0, "final_value_matches_answer": False},
        id="ungrounded-and-mismatch",
    ),
    # dates are values: the LMP is read (in the note), 280 is a constant, the due date is computed
    pytest.param(
        "The patient's last menstrual period was on 02/24/2000. Her cycle length is 28 days.",
        DATE,
        _c("Naegele: 02/24/2000 plus 280 days is 11/30/2000.", "11/30/2000"),
        {
            "n_values": 2,
            "numbers_in_note_rate": 0.5,
            "final_value": "11/30/2000",
            "final_value_matches_answer": True,
        },
        id="date",
    ),
    # gestational age: the last "W weeks ... D days" against [W, D]; both dates are in the note
    pytest.param(
        "LMP 12/23/2020. Today's date is 08/21/2021.",
        WEEKS,
        _c("From 12/23/2020 to 08/21/2021 is 34 weeks and 3 days.", ["34 weeks", "3 days"]),
        {"n_values": 2, "numbers_in_note_rate": 1.0, "final_value_matches_answer": True},
        id="gestational-age",
    ),
    # thousands separators and unicode minus; enumeration markers are not values
    pytest.param(
        "Platelets 150,000 per µL; base excess -3.",
        INTEGER,
        _c("1. Platelets are 150000.\n2. Base excess is −3.\nScore = 2", 2),
        {"n_values": 2, "n_in_note": 2, "final_value": "2", "final_value_matches_answer": True},
        id="thousands-minus-enumeration",
    ),
    # direct mode: no reasoning, nothing to check
    pytest.param(
        QT_NOTE,
        None,
        '<answer>{"answer": 5}</answer>',
        {"has_reasoning": False, "numbers_in_note_rate": None, "final_value_matches_answer": None},
        id="no-reasoning",
    ),
    # an unreadable answer: grounding is still measured, the final value is not checked
    pytest.param(
        QT_NOTE,
        None,
        _c("QT is 400.", "unknown"),
        {"numbers_in_note_rate": 1.0, "final_value_matches_answer": None},
        id="unreadable-answer",
    ),
    # a reasoning that states no value cannot end on the answer
    pytest.param(
        QT_NOTE,
        None,
        _c("I guess.", 450),
        {"n_values": 0, "numbers_in_note_rate": None, "final_value_matches_answer": False},
        id="no-value",
    ),
]


@pytest.mark.parametrize(("note", "target", "completion", "expected"), CASES)
def test_checks_on_hand_made_completions(note, target, completion, expected):
    got = check_medcalc_reasoning(_ex(note, target), completion)
    for key, value in expected.items():
        assert got[key] == (pytest.approx(value) if isinstance(value, float) else value), key


def test_prefill_prefix_is_part_of_the_reasoning():
    got = check_medcalc_reasoning(
        _ex(QT_NOTE), 'QTc = 400 / 1 = 400.</think><answer>{"answer": 400}</answer>', prefill=True
    )
    assert got["has_reasoning"] and got["final_value_matches_answer"] is True


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("GFR = 127.718 mL/min/1.73 m²", [127.718]),  # 1.73 belongs to the unit
        ("CHA2DS2-VASc score 3", [3.0]),  # digits glued to a word are not values
        ("WBC 12 × 10^9/L", [12.0, 10.0]),  # an exponent is not a value
        ("60/113 = 0.53", [60.0, 113.0, 0.53]),  # a division's operands are
    ],
)
def test_value_tokens(text, values):
    assert [t["value"] for t in value_tokens(text) if t["kind"] == "number"] == values


def test_rates_over_rows_with_the_explanations_as_reference():
    task = get_task("medcalc")
    good = _ex(QT_NOTE, ex_id="a", explanation="QT 400, HR 80: QTc = 400/√(60/80) = 461.88.")
    bad = _ex(QT_NOTE, ex_id="b")
    rows = [
        {
            "id": "a",
            "category": "physical",
            "completion": _c("QT is 400. RR = 60/80 = 0.75. QTc = 461.88", 461.9),
        },
        {"id": "a", "category": "physical", "completion": _c("QT is 380, so QTc = 500", 500)},
        {"id": "b", "category": "physical", "completion": '<answer>{"answer": 5}</answer>'},
    ]
    block = ReasoningChecks().summarize(task, {ex.id: ex for ex in (good, bad)}, rows)
    # completion 1: 400, 80 found, 60 not (2/3); completion 2: 380 not found (0/1); completion 3: no reasoning
    assert block["n_completions"] == 3 and block["n_with_reasoning"] == 2 and block["n_with_values"] == 2
    assert block["numbers_in_note_rate"] == pytest.approx((2 / 3 + 0) / 2)
    assert block["numbers_in_note_pooled"] == pytest.approx(2 / 4)
    assert block["final_value_matches_answer_rate"] == 1.0 and block["n_final_checked"] == 2
    # the explanation of item a (item b has none): 400, 80 read, 60 not
    assert block["reference_n_items"] == 1 and block["reference_numbers_in_note_rate"] == pytest.approx(2 / 3)
    assert block["by_category"]["physical"]["n_completions"] == 3


def test_only_tasks_with_a_check_get_one():
    rows = [{"id": "1", "category": "physical", "completion": '<answer>{"answer": 5}</answer>'}]
    assert "reasoning_checks" in task_metrics(get_task("medcalc"), rows, [_ex(QT_NOTE)])
    assert "reasoning_checks" not in task_metrics(get_task("ehrshot"), [], [])


def test_scored_medcalc_runs_report_the_rates(tmp_path, synthetic_csv):
    from typer.testing import CliRunner

    from ehrmind.cli import app

    task = get_task("medcalc")
    examples = task.load(synthetic_csv)[:6]
    preds = tmp_path / "preds.jsonl"
    preds.write_text(
        "".join(
            json.dumps({"id": ex.id, "completion": gold_completion(task, ex, ex.metadata["explanation"])})
            + "\n"
            for ex in examples
        )
    )
    out = tmp_path / "score"
    args = [
        "score",
        "--task",
        "medcalc",
        "--data",
        str(synthetic_csv),
        "--predictions",
        str(preds),
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    checks = json.loads((out / "metrics.json").read_text())["reasoning_checks"]
    # the reference explanations end on their answers, and so do these completions (they are the explanations)
    assert checks["n_completions"] == 6 and checks["final_value_matches_answer_rate"] == 1.0
    assert checks["numbers_in_note_rate"] == pytest.approx(checks["reference_numbers_in_note_rate"])
    assert "## Reasoning checks" in (out / "report.md").read_text()
