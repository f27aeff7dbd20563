"""Issue #15, item 1: every eval report says why answers fail — failure reasons, truncation, how far wrong
values are, accuracy by output type, example completions — checked against hand-counted rows."""

from __future__ import annotations

import json

import pytest

from ehrmind import get_task
from ehrmind.eval.analysis import failure_reason, format_problem, mask
from ehrmind.generate.base import Capabilities, Generated
from ehrmind.tasks.medcalc.analyses import OutputTypes
from ehrmind.tasks.medcalc.task import parse_gold
from ehrmind.types import Example


class _Scripted:
    """Answers each prompt with the completion scripted for its example, and reports finish reasons."""

    name, settings, capabilities = "scripted", None, Capabilities()

    def __init__(self, by_prompt: dict[str, tuple[str, str]]):
        self.by_prompt = by_prompt

    def describe(self):
        return {}

    def generate(self, prompts, n=1):
        got = [self.by_prompt[p[-1]["content"]] for p in prompts]
        return Generated([[c] * n for c, _ in got], [[f] * n for _, f in got])


def _answer(value) -> str:
    return f"<think>computed</think>\n<answer>{json.dumps({'answer': value})}</answer>"


def test_eval_report_explains_failures_against_hand_counted_rows(tmp_path, synthetic_csv):
    from ehrmind.eval.runner import run_eval, run_info

    task = get_task("medcalc")
    examples = task.load(synthetic_csv)[:6]
    gold = [ex.target["value"] for ex in examples]
    scripted = [
        (_answer(gold[0]), "stop"),  # correct
        (_answer(gold[1]), "stop"),  # correct
        (_answer(gold[2] * 1.5), "stop"),  # wrong value, relative error +0.5
        (_answer(gold[3] * 0.9), "stop"),  # wrong value, relative error -0.1
        ("<think>still thinking about the", "length"),  # no answer block: cut at max_new_tokens
        (_answer("10-12"), "stop"),  # in the format, but a range: no value read
    ]
    by_prompt = {task.render(ex)[-1]["content"]: s for ex, s in zip(examples, scripted, strict=True)}
    info = run_info(task, examples, str(synthetic_csv), model="scripted", max_new_tokens=8)
    metrics = run_eval(task, examples, _Scripted(by_prompt), tmp_path / "e", info=info, progress=False)

    errors = json.loads((tmp_path / "e" / "metrics.json").read_text())["errors"]
    assert errors == metrics["errors"]
    assert (errors["n"], errors["n_wrong"]) == (6, 4)
    assert errors["failures"] == [
        {"reason": "wrong value", "n": 2, "share": pytest.approx(2 / 6)},
        {
            "reason": "expected exactly one answer block, found 0 <answer> tag(s)",
            "n": 1,
            "share": pytest.approx(1 / 6),
        },
        {"reason": "answer is a range, not a value", "n": 1, "share": pytest.approx(1 / 6)},
    ]
    assert errors["format_problems"] == [
        {
            "reason": "expected exactly one answer block, found 0 <answer> tag(s)",
            "n": 1,
            "share": pytest.approx(1 / 6),
        }
    ]
    assert errors["truncation_rate"] == pytest.approx(1 / 6) and errors["n_with_finish_reason"] == 6
    types = metrics["output_types"]  # MedCalc's own analysis, beside the generic error analysis
    rel = types["numeric_error"]["relative error"]
    assert rel["n"] == 2 and rel["median_abs"] == pytest.approx(0.3) and rel["p90_abs"] == pytest.approx(0.5)
    assert types["by_output_type"] == {
        "decimal": {"n": 6, "accuracy": pytest.approx(2 / 6), "wrong_value": 2, "unread": 2}
    }
    assert [e["id"] for e in errors["examples"]["wrong value"]] == [examples[2].id, examples[3].id]
    assert errors["examples"]["answer is a range, not a value"][0]["completion_end"].endswith(
        '"10-12"}</answer>'
    )

    report = (tmp_path / "e" / "report.md").read_text()
    assert "## Why answers fail" in report and "Truncated (cut at max_new_tokens): **16.7%** of 6" in report
    assert (
        "| wrong value | 2 | 33.3% |" in report and "| answer is a range, not a value | 1 | 16.7% |" in report
    )
    assert (
        "**relative error** over 2 wrong answers that were read: median |error| 0.3, 90th percentile 0.5"
        in report
    )
    assert "| decimal | 6 | 33.3% | 2 | 2 |" in report
    assert "still thinking about the" in report  # the completion's end, as an example
    assert examples[0].input["note"][:40] not in report  # the patient note is never copied


def test_numeric_error_kinds_for_integers_dates_and_gestational_ages():
    task = get_task("medcalc")

    def ex(i, kind, answer, cid):
        target = parse_gold(kind, answer, "", "")
        return Example(id=str(i), task="medcalc", input={"note": "n", "question": "q"}, target=target,
                       metadata={"category": "c", "calculator_id": cid, "calculator_name": "c"})  # fmt: skip

    examples = {
        "1": ex(1, "integer", "4", 1),
        "2": ex(2, "integer", "4", 1),
        "3": ex(3, "date", "09/23/2014", 13),
        "4": ex(4, "gestational_age", "('4 weeks', '3 days')", 69),
    }
    rows = [
        {"id": "1", "correct": False, "parsed": 6.0, "format_ok": True},  # off by +2
        {"id": "2", "correct": False, "parsed": 3.4, "format_ok": True},  # rounds to 3: off by -1
        {"id": "3", "correct": False, "parsed": "09/30/2014", "format_ok": True},  # 7 days late
        {"id": "4", "correct": False, "parsed": [4, 1], "format_ok": True},  # 2 days early
    ]
    got = OutputTypes().summarize(task, examples, rows)
    assert got["numeric_error"]["off by"]["most_common"] == [[2.0, 1], [-1.0, 1]]
    assert got["numeric_error"]["days off (date)"]["median_abs"] == 7
    assert got["numeric_error"]["days off (gestational age)"]["most_common"] == [[-2.0, 1]]
    assert set(got["by_output_type"]) == {"integer", "date", "gestational_age"}


@pytest.mark.parametrize(
    ("row", "failure", "problem"),
    [
        ({"correct": True, "format_ok": True}, None, None),
        ({"correct": None}, "gold answer cannot be scored", None),
        ({"correct": False, "parsed": 5.0, "format_ok": True, "reason": "expected 4"}, "wrong value", None),
        (
            {
                "correct": False,
                "parsed": None,
                "format_ok": False,
                "reason": "format: text after </answer>; not a valid date: '13/45/2020'",
            },
            "not a valid date: '…'",
            "text after </answer>",
        ),
        (
            {
                "correct": True,
                "parsed": 4.0,
                "format_ok": False,
                "reason": "format: text before <think>; correct",
            },
            None,
            "text before <think>",
        ),
    ],
)
def test_failure_reason_and_format_problem_rules(row, failure, problem):
    assert failure_reason(row) == failure and format_problem(row) == problem
    assert mask("sample 12 of 3.5 and 7") == "sample N of N and 7"


def test_hf_generator_reports_finish_reasons(tiny_model):
    from ehrmind.generate.hf import GenerationSettings, HFGenerator

    gen = HFGenerator(str(tiny_model), GenerationSettings(max_new_tokens=3))
    prompts = [[{"role": "user", "content": "Hello"}], [{"role": "user", "content": "Compute the score."}]]
    got = gen.generate(prompts, n=1)
    assert len(got.finish_reasons) == 2 and all(len(f) == 1 for f in got.finish_reasons)
    for (text,), (why,) in zip(got.completions, got.finish_reasons, strict=True):
        assert why in ("stop", "length")
        if why == "length":  # cut at 3 tokens: the text is at most that long
            assert len(gen.tokenizer(text, add_special_tokens=False)["input_ids"]) <= 3
    described = gen.describe()
    assert (
        described["dtype"] == "float32"
        and described["device"] == "cpu"
        and described["backend"] == "transformers"
    )


def test_medcalc_analyses_need_the_examples_and_a_scorable_gold():
    """Scoring without the data at hand (`score` of rows alone): MedCalc's analyses that read the examples
    add no block; an example whose gold cannot be scored gets no official verdict (None, never False)."""
    from ehrmind.tasks.analysis import task_metrics
    from ehrmind.tasks.medcalc.analyses import OfficialVerdict, OutputTypes, ReasoningChecks

    task = get_task("medcalc")
    rows = [{"id": "1", "correct": False, "parsed": None, "format_ok": False, "completion": "x"}]
    assert (
        OutputTypes().summarize(task, {}, rows) is None
        and ReasoningChecks().summarize(task, {}, rows) is None
    )
    metrics = task_metrics(task, rows)
    assert "output_types" not in metrics and "reasoning_checks" not in metrics
    assert OutputTypes().report(metrics) == [] and ReasoningChecks().report(metrics) == []
    unscorable = Example(
        id="u", task="medcalc", input={"note": "n", "question": "q"},
        target={"output_type": "decimal", "answer": "1", "value": 1.0, "lower": None, "upper": None},
        metadata={"category": "lab", "calculator_id": 1, "calculator_name": "c"},
    )  # fmt: skip
    assert OfficialVerdict().row(task, unscorable, '<answer>{"answer": 1}</answer>') == {
        "official_correct": None,
        "official_parsed": None,
    }
