"""Issue #16, causes 1 and 2: model text of any shape is scored in bounded time and never raises.

Every scoring path a model's text reaches — `Task.verify` (eval, `ehrmind score`), the benchmark's own
extraction (`verify_extra`), the TRL reward functions and verl's `compute_score` — returns a number (or None
where the gold answer cannot be scored) for arbitrary text. One bad rollout must not stall or abort RL.
Precise timings live in `bench/bench_verify.py`; the bound here only catches quadratic or worse behaviour.
"""

from __future__ import annotations

import json
import math
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehrmind import get_task
from ehrmind.rewards.trl import reward_functions
from ehrmind.rewards.verl import compute_score, verl_rows
from ehrmind.tasks.analysis import row_fields
from ehrmind.tasks.medcalc.task import parse_gold
from ehrmind.types import Example

M = 1_000_000
SECONDS_PER_MB = 5.0  # generous for a shared machine; bench_verify.py measures ~0.1 s


def _wrap(inner: str) -> str:
    return "<think>x</think>\n<answer>" + inner + "</answer>"


SHAPES = {
    "digits": "9" * M,
    "braces": "{" * M,
    "brackets": "[" * M,
    "quotes": '"' * M,
    "backslashes": "\\" * M,
    "answer-tags": "<answer>" * (M // 8),
    "think-tags": "<think>" * (M // 7),
    "close-tags": "</answer>" * (M // 9),
    "many-json-objects": '{"answer": 1}' * (M // 13),
    "nested-objects": _wrap('{"a":' * 50_000 + "1" + "}" * 50_000),
    "nested-lists": _wrap('{"answer": ' + "[" * 100_000 + "]" * 100_000 + "}"),
    "huge-integer": _wrap('{"answer": ' + "9" * M + "}"),
    "huge-exponent": _wrap('{"answer": 1e' + "9" * M + "}"),
    "huge-probability": _wrap('{"prediction": "yes", "probability": ' + "9" * M + "}"),
    "long-weeks": _wrap('{"answer": "' + "1 weeks " * (M // 8) + '"}'),
    "long-tuple": _wrap('{"answer": "(' + "1," * (M // 2) + ')"}'),
    "long-equation": _wrap('{"answer": "' + "1+" * (M // 2) + '1"}'),
    "long-date": _wrap('{"answer": "' + "01/" * (M // 3) + '"}'),
    "long-label": _wrap('{"prediction": "' + "eligible " * (M // 9) + '"}'),
    "whitespace-think": "<think>" + " " * M + '</think><answer>{"answer": 4}</answer>',
    "unicode-digits": _wrap('{"answer": "' + "\u0663" * M + '"}'),
    "lone-surrogates": _wrap('{"answer": "' + "\\ud800" * (M // 6) + '"}'),
    # issue #31: a ```json fence then spaces backtracked cubically (2 KB: 9 s); 64 unclosed objects each read
    # the 1 MB after them (1.2 s); spaces in one field of a weeks/days pair backtracked quadratically
    "fence-spaces": _wrap("```" + " " * M + "x"),
    "unclosed-objects": '{"k": [' * 64 + "[[[[]]]]," * (M // 9),
    "answer-unclosed-objects": _wrap('{"k": [' * 64 + "[[[[]]]]," * (M // 9)),
    "pair-field-spaces": _wrap('{"answer": ["1' + " " * M + 'x", 3]}'),
    # the longest answer block still read (MAX_JSON_CHARS), its labels of superscripts (normalised one by one)
    "long-labels": _wrap(
        json.dumps(
            {k: "\u00b9a" * 16_000 for k in ("answer", "prediction", "probability")}, ensure_ascii=False
        )
    ),
}


def _medcalc(kind: str, answer: str, lower: str = "", upper: str = "", calculator_id: int = 0) -> Example:
    return Example(
        id=f"{kind}",
        task="medcalc",
        input={"note": "n", "question": "q"},
        target=parse_gold(kind, answer, lower, upper),
        metadata={"category": "lab", "calculator_id": calculator_id, "calculator_name": "c"},
    )


CASES = [
    ("medcalc", _medcalc("decimal", "4", "3.9", "4.1")),
    ("medcalc", _medcalc("integer", "4")),
    ("medcalc", _medcalc("date", "09/23/2014", calculator_id=13)),
    ("medcalc", _medcalc("gestational_age", "('4 weeks', '3 days')", calculator_id=69)),
    (
        "trec_ct",
        Example(
            id="p::t",
            task="trec_ct",
            input={"patient": "p", "trial_title": "T", "conditions": [], "inclusion": [], "exclusion": []},
            target={"label": 2, "label_name": "eligible", "scale": "trec"},
            metadata={"patient_id": "p", "trial_id": "t", "label": 2, "cohort": "trec_2021"},
        ),
    ),
    (
        "ehrshot",
        Example(
            id="1@t",
            task="ehrshot",
            input={"timeline": "Prediction time: 2020-01-01", "question": "?"},
            target={"label": True, "label_name": "yes"},
            metadata={"labeler": "new_hypertension", "category": "new_hypertension", "label": True},
        ),
    ),
]


def _is_reward(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isfinite(v))


def _all_paths(task_name: str, example: Example, text: str) -> None:
    """Every scoring path for one completion: each returns a finite number or None, none raises."""
    task = get_task(task_name)
    score = task.verify(example, text)
    assert _is_reward(score.reward) and score.format_ok in (True, False)
    json.dumps(row_fields(task, example, text))  # the prediction row stays writable
    for fn in reward_functions(task, [example]):
        assert all(_is_reward(v) for v in fn([text], [example.id]))
    (row,) = verl_rows(task, [example])
    got = compute_score(row["data_source"], text, "", row["extra_info"])
    assert isinstance(got["score"], float) and math.isfinite(got["score"])


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_megabyte_of_hostile_text_is_scored_in_bounded_time(shape):
    text = SHAPES[shape]
    for task_name, example in CASES:
        started = time.perf_counter()
        get_task(task_name).verify(example, text)
        elapsed = time.perf_counter() - started
        assert elapsed < SECONDS_PER_MB * len(text) / M, (task_name, example.id, shape, elapsed)
    _all_paths("medcalc", CASES[0][1], text)  # the reward paths on top of the same verdict


FRAGMENTS = st.sampled_from(
    ["<think>", "</think>", "<answer>", "</answer>", "{", "}", "[", "]", '"', ":", ",", "\\", " ", "\n",
     '"answer"', '"prediction"', '"probability"', "yes", "no", "eligible", "excluded", "not relevant",
     "4", "9" * 400, "1e308", "1e999", "-", ".", "/", "weeks", "days", "(", ")", "NaN", "Infinity",
     "```json", "```", "true", "null", "×10^", "²", "\u0663", "\ud800"]
)  # fmt: skip
TEXTS = st.one_of(st.text(max_size=300), st.lists(FRAGMENTS, max_size=60).map("".join))


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS, case=st.sampled_from(range(len(CASES))))
def test_every_reward_path_returns_a_number_for_any_text(text, case):
    task_name, example = CASES[case]
    _all_paths(task_name, example, text)


@pytest.mark.parametrize("depth", [600, 5000])
@pytest.mark.parametrize("shape", ["list", "object"])
def test_a_deeply_nested_answer_is_scored_and_its_row_written(shape, depth):
    """Issue #31: an answer nested hundreds of levels deep (about 1 KB) crashed score, eval and diagnose with
    a RecursionError when its Score became a prediction row; now it is wrong, and the row is written."""
    from ehrmind.eval.runner import prediction_row

    key = {"medcalc": "answer"}
    for task_name, example in CASES:
        k = key.get(task_name, "prediction")
        inner = "[" * depth + "1" + "]" * depth if shape == "list" else '{"a": ' * depth + "1" + "}" * depth
        text = f'<think>x</think><answer>{{"{k}": {inner}}}</answer>'
        row = prediction_row(get_task(task_name), example, 0, text).to_dict()
        assert row["correct"] is False, (task_name, example.id)
        json.dumps(row)
        _all_paths(task_name, example, text)
