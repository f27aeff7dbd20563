"""Table-driven tests of the MedCalc verifier, through the task object (the one scoring path).

The correctness rules are MedCalc-Bench's official ones: decimals inside [Lower, Upper] inclusive,
integers `round(answer) == label` (Python's round), dates equal as MM/DD/YYYY, gestational ages equal
as the (weeks, days) pair. Rewards follow the paper: 1.1 correct, 0 wrong, -2 bad format.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from ehrmind import Example, get_task
from ehrmind.tasks.base import gold_completion
from ehrmind.tasks.medcalc.schema import CATEGORIES
from ehrmind.tasks.medcalc.task import parse_gold

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared/data/medcalc_bench"
TEST_CSV = DATA_DIR / "medcalc_bench_v1.0_test.csv"
TRAIN_CSV = DATA_DIR / "medcalc_bench_v1.0_train_sample_1006.csv"
VERIFIED_CSV = DATA_DIR / "medcalc_bench_verified_one_shot_55.csv"

# ehrmind's own rules, reward included (`strict`): the paper's reward rules are pinned in test_reward_format.py
STRICT = {"format": "strict"}
TASK = get_task("medcalc", reward_weights=STRICT)
PREFILL_TASK = get_task("medcalc", prefill=True, reward_weights=STRICT)
DIRECT_TASK = get_task("medcalc", mode="direct", reward_weights=STRICT)


def make_example(
    output_type: str,
    answer: str,
    lower: str = "",
    upper: str = "",
    *,
    calculator_id: int = 0,
    category: str = "lab",
) -> Example:
    return Example(
        id=f"{output_type}-{answer}",
        task="medcalc",
        input={"note": "n", "question": "q"},
        target=parse_gold(output_type, answer, lower, upper),
        metadata={"category": category, "calculator_id": calculator_id, "calculator_name": "calc"},
    )


def contract(value, think: str = "reasoning") -> str:
    """A well-formed completion stating `value` as the answer."""
    return f"<think>{think}</think>\n<answer>{json.dumps({'answer': value}, ensure_ascii=False)}</answer>"


def assert_judged(example: Example, value, expected: bool) -> None:
    score = TASK.verify(example, contract(value))
    assert score.format_ok is True, score.reason
    assert score.correct is expected, score.reason
    assert score.reward == (1.1 if expected else 0.0)


# ---------------------------------------------------------------- decimal

CREATININE = ("67.00495", "63.6547", "70.3552")  # a real v1.0 row: gold with +-5% limits
PERCENT = ("24.7", "23.465", "25.935")
NEGATIVE_SWAPPED = ("-5", "-4.75", "-5.25")  # a negative gold whose limits come swapped in the source
ZERO = ("0", "0", "0")


@pytest.mark.parametrize(
    ("gold", "value", "expected"),
    [
        # Inside the limits, not equal to the gold: the official rule is a tolerance, not equality.
        pytest.param(CREATININE, 67.0, True, id="inside"),
        pytest.param(CREATININE, 67.00495, True, id="exact-gold"),
        # The limits are inclusive at both ends.
        pytest.param(CREATININE, 63.6547, True, id="on-lower-limit"),
        pytest.param(CREATININE, 70.3552, True, id="on-upper-limit"),
        pytest.param(CREATININE, "63.6547", True, id="on-lower-limit-as-string"),
        # Just outside on either side.
        pytest.param(CREATININE, 63.6546, False, id="just-below"),
        pytest.param(CREATININE, 70.3553, False, id="just-above"),
        # A string answer with units is read as its number.
        pytest.param(CREATININE, "67.0 mL/min", True, id="with-units"),
        pytest.param(CREATININE, "67", True, id="as-string"),
        pytest.param(CREATININE, "67,0", False, id="decimal-comma-rejected"),
        pytest.param(CREATININE, "63-70", False, id="range-rejected"),
        pytest.param(CREATININE, None, False, id="null"),
        # Percent is the label's own unit: 24.7% is 24.7, and 0.247 is wrong.
        pytest.param(PERCENT, "24.7%", True, id="percent-not-divided"),
        pytest.param(PERCENT, 0.247, False, id="fraction-is-wrong"),
        # Negative gold with swapped limits: the interval is normalised to [-5.25, -4.75].
        pytest.param(NEGATIVE_SWAPPED, -5, True, id="negative-gold"),
        pytest.param(NEGATIVE_SWAPPED, -4.75, True, id="negative-on-upper"),
        pytest.param(NEGATIVE_SWAPPED, -5.25, True, id="negative-on-lower"),
        pytest.param(NEGATIVE_SWAPPED, "\u22125.1", True, id="negative-unicode-minus"),
        pytest.param(NEGATIVE_SWAPPED, 5, False, id="negative-sign-dropped"),
        pytest.param(NEGATIVE_SWAPPED, -5.3, False, id="negative-outside"),
        # A zero-width interval [0, 0]: only exactly zero.
        pytest.param(ZERO, 0, True, id="zero"),
        pytest.param(ZERO, "0.0", True, id="zero-string"),
        pytest.param(ZERO, -0.0, True, id="negative-zero"),
        pytest.param(ZERO, 0.001, False, id="zero-near-miss"),
    ],
)
def test_decimal(gold, value, expected):
    assert_judged(make_example("decimal", *gold), value, expected)


def test_decimal_swapped_limits_are_normalised():
    # The source's swapped limits must not make an empty interval (which would mark everything wrong).
    target = parse_gold("decimal", "-5", "-4.75", "-5.25")
    assert (target["lower"], target["upper"]) == (-5.25, -4.75)


# ---------------------------------------------------------------- integer


@pytest.mark.parametrize(
    ("gold", "value", "expected"),
    [
        # The JSON int, float and string forms of the same score.
        pytest.param("4", 4, True, id="int"),
        pytest.param("4", 4.0, True, id="float"),
        pytest.param("4", "4 points", True, id="with-unit"),
        pytest.param("4", "4 out of 9", True, id="out-of"),
        # round(answer) == label, as the official evaluator.
        pytest.param("4", 4.4, True, id="rounds-down"),
        pytest.param("4", 4.6, False, id="rounds-up-wrong"),
        # Python's banker's rounding: round(3.5) == 4 and round(4.5) == 4. Pinned: the official behaviour.
        pytest.param("4", 3.5, True, id="bankers-3.5"),
        pytest.param("4", 4.5, True, id="bankers-4.5"),
        pytest.param("5", 4.5, False, id="bankers-4.5-not-5"),
        pytest.param("4", 5, False, id="wrong"),
        # A thousands separator is one number (the official regex would see two items).
        pytest.param("1200", "1,200", True, id="thousands-separator"),
        # A list of candidates is not accepted as the right one (only the first is read: 3 != 4).
        pytest.param("4", "3, 4, 5", False, id="list-of-candidates"),
        pytest.param("4", "3,4,5", False, id="comma-list"),
        # bool is an int subclass in Python; True must not be 1.
        pytest.param("1", True, False, id="bool-not-one"),
        pytest.param("0", "zero", False, id="number-word"),
    ],
)
def test_integer(gold, value, expected):
    assert_judged(make_example("integer", gold), value, expected)


# ---------------------------------------------------------------- date


@pytest.mark.parametrize("calculator_id", [13, 68])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # The benchmark's own format and the equivalent spellings.
        pytest.param("09/23/2014", True, id="mm-dd-yyyy"),
        pytest.param("9/23/2014", True, id="no-leading-zero"),
        pytest.param("2014-09-23", True, id="iso"),
        pytest.param("September 23, 2014", True, id="spelled-month"),
        # DD/MM is not a valid MM/DD date and is not guessed.
        pytest.param("23/09/2014", False, id="dd-mm-not-guessed"),
        # Off by one day.
        pytest.param("09/24/2014", False, id="wrong-day"),
        # A number is not a date.
        pytest.param(20140923, False, id="int"),
    ],
)
def test_date(calculator_id, value, expected):
    example = make_example("date", "09/23/2014", calculator_id=calculator_id, category="date")
    assert_judged(example, value, expected)


# ---------------------------------------------------------------- gestational age


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # The prompt's format, a plain pair, and free-text spellings.
        pytest.param(["4 weeks", "3 days"], True, id="list-strings"),
        pytest.param([4, 3], True, id="list-ints"),
        pytest.param("(4, 3)", True, id="pair-string"),
        pytest.param("4 weeks and 3 days", True, id="weeks-and-days"),
        pytest.param("4+3", True, id="obstetric-plus"),
        pytest.param({"weeks": 4, "days": 3}, True, id="dict"),
        pytest.param("('4 weeks', '3 days')", True, id="gold-literal"),
        # Same total days (31) but a different pair: the official evaluator compares the pair.
        pytest.param("(3, 10)", False, id="same-total-different-pair"),
        pytest.param("14 weeks", False, id="wrong-weeks"),
        pytest.param([3, 4], False, id="swapped"),
        pytest.param(31, False, id="bare-number"),
    ],
)
def test_gestational_age(value, expected):
    example = make_example("gestational_age", "('4 weeks', '3 days')", calculator_id=69, category="date")
    assert_judged(example, value, expected)


# ---------------------------------------------------------------- score semantics

INT4 = make_example("integer", "4")


@pytest.mark.parametrize(
    ("completion", "format_ok", "correct", "reward", "strict"),
    [
        # The only completion RL should push towards.
        pytest.param(contract(4), True, True, 1.1, True, id="well-formed-correct"),
        # Well-formed but wrong: zero, not a penalty.
        pytest.param(contract(5), True, False, 0.0, False, id="well-formed-wrong"),
        pytest.param(contract("n/a"), True, False, 0.0, False, id="well-formed-unparseable"),
        # Issue #16, cause 4: an expression whose first number is the gold was rewarded 1.1.
        pytest.param(contract("4*10"), True, False, 0.0, False, id="expression-not-its-first-number"),
        pytest.param(contract("round(4.4)"), True, False, 0.0, False, id="call-not-its-argument"),
        # Right answer, broken contract: accuracy still counts it, the reward penalises the format.
        pytest.param('<answer>{"answer": 4}</answer>', False, True, -2.0, False, id="no-think-correct"),
        # MedCalc-Bench's own output style, no tags at all: found by the lenient fallback.
        pytest.param(
            '{"step_by_step_thinking": "The score is 4.", "answer": "4"}',
            False,
            True,
            -2.0,
            False,
            id="official-json-no-tags",
        ),
        pytest.param(contract(4) + " Hope this helps!", False, True, -2.0, False, id="trailing-text-correct"),
        pytest.param('<think>x</think>{"answer": 5}', False, False, -2.0, False, id="bad-format-wrong"),
        # Nothing extractable.
        pytest.param("I am not sure.", False, False, -2.0, False, id="no-answer"),
        pytest.param("", False, False, -2.0, False, id="empty"),
    ],
)
def test_score_semantics(completion, format_ok, correct, reward, strict):
    score = TASK.verify(INT4, completion)
    assert score.format_ok is format_ok
    assert score.correct is correct
    assert score.reward == reward
    assert score.strict_correct is strict
    assert score.reason


def test_none_completion_is_a_format_error():
    # Generation backends can return None for an empty sample; that is a bad format, not a crash.
    score = TASK.verify(INT4, None)
    assert (score.format_ok, score.correct, score.reward) == (False, False, -2.0)


UNKNOWN = Example(
    id="u",
    task="medcalc",
    input={"note": "n", "question": "q"},
    target={"output_type": "ratio", "answer": "1:2"},
    metadata={"category": "lab", "calculator_id": 999, "calculator_name": "?"},
)


def test_unknown_output_type_is_unscorable_not_zero():
    # An unscorable gold must be counted apart: correct None and reward None, never a silent 0.
    score = TASK.verify(UNKNOWN, contract(4))
    assert score.format_ok is True
    assert score.correct is None
    assert score.reward is None
    assert score.strict_correct is None
    assert "cannot be scored" in score.reason
    assert score.to_dict()["reward"] is None


def test_unknown_output_type_with_bad_format_still_gets_format_penalty():
    # The format reward does not depend on the gold, so it still applies.
    score = TASK.verify(UNKNOWN, '{"answer": 4}')
    assert (score.format_ok, score.correct, score.reward) == (False, None, -2.0)


def test_unknown_output_type_without_any_answer_is_still_unscorable():
    # Score's contract: correct is None when the gold cannot be scored. With no extractable answer
    # verify() returns correct=False before asking judge(), so metrics count the row as wrong.
    assert TASK.verify(UNKNOWN, "no answer at all").correct is None


# ---------------------------------------------------------------- prefill and direct mode


def test_prefill_render_ends_inside_think():
    messages = PREFILL_TASK.render(INT4)
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[-1]["content"].endswith("<think>")
    assert TASK.render(INT4)[-1]["role"] == "user"  # no prefill without the option


CONTINUATION = 'reasoning</think>\n<answer>{"answer": 4}</answer>'


def test_prefill_completion_starts_inside_think():
    # Generation continues after "<think>": the completion has only the closing tag.
    score = PREFILL_TASK.verify(INT4, CONTINUATION)
    assert (score.format_ok, score.correct, score.reward) == (True, True, 1.1)


def test_prefill_continuation_is_bad_format_without_prefill():
    score = TASK.verify(INT4, CONTINUATION)
    assert score.format_ok is False
    assert score.correct is True
    assert score.reward == -2.0


def test_prefill_repeating_think_open_is_bad_format():
    # A model that re-opens <think> after the prefill has two think blocks.
    score = PREFILL_TASK.verify(INT4, contract(4))
    assert score.format_ok is False
    assert score.reward == -2.0


@pytest.mark.parametrize(
    ("completion", "format_ok"),
    [
        # The direct contract: an answer block only.
        pytest.param('<answer>{"answer": 4}</answer>', True, id="answer-only"),
        # A think block is a violation in direct mode.
        pytest.param(contract(4), False, id="with-think"),
    ],
)
def test_direct_mode(completion, format_ok):
    score = DIRECT_TASK.verify(INT4, completion)
    assert score.format_ok is format_ok
    assert score.correct is True
    assert score.reward == (1.1 if format_ok else -2.0)


# ---------------------------------------------------------------- gold completions

GOLD_EXAMPLES = [
    pytest.param(make_example("decimal", *CREATININE), id="decimal"),
    pytest.param(make_example("decimal", *NEGATIVE_SWAPPED), id="decimal-negative"),
    pytest.param(make_example("integer", "4"), id="integer"),
    pytest.param(make_example("date", "09/23/2014", calculator_id=13), id="date"),
    pytest.param(
        make_example("gestational_age", "('0 weeks', '6 days')", calculator_id=69), id="gestational"
    ),
]


@pytest.mark.parametrize("task", [TASK, PREFILL_TASK, DIRECT_TASK], ids=["plain", "prefill", "direct"])
@pytest.mark.parametrize("example", GOLD_EXAMPLES)
def test_gold_completion_scores_correct(task, example):
    completion = gold_completion(task, example, reasoning="because")
    score = task.verify(example, completion)
    assert (score.format_ok, score.correct, score.reward) == (True, True, 1.1), score.reason
    assert completion.startswith("<think>") is (task is TASK)


# ---------------------------------------------------------------- reward weights


@pytest.mark.parametrize(
    "weights",
    [
        pytest.param({"correct": 1.0, "wrong": 0.0, "bad_format": -1.0}, id="unit"),
        # Distinct values so that each verdict is told apart.
        pytest.param({"correct": 2.0, "wrong": -0.5, "bad_format": -3.0}, id="distinct"),
    ],
)
def test_custom_reward_weights(weights):
    task = get_task("medcalc", reward_weights=weights | STRICT)
    assert task.verify(INT4, contract(4)).reward == weights["correct"]
    assert task.verify(INT4, contract(5)).reward == weights["wrong"]
    assert task.verify(INT4, '{"answer": 4}').reward == weights["bad_format"]
    assert task.verify(UNKNOWN, contract(4)).reward is None


# ---------------------------------------------------------------- real data

needs_data = pytest.mark.skipif(
    not TEST_CSV.exists(),
    reason=f"MedCalc-Bench v1.0 test file not found at {TEST_CSV}; real-data tests skipped",
)


@pytest.fixture(scope="module")
def test_examples():
    if not TEST_CSV.exists():
        pytest.skip(f"MedCalc-Bench v1.0 test file not found at {TEST_CSV}")
    return TASK.load(TEST_CSV)


@needs_data
def test_real_test_set_size_and_categories(test_examples):
    assert len(test_examples) == 1047
    assert len({e.id for e in test_examples}) == 1047
    assert {e.metadata["category"] for e in test_examples} == set(CATEGORIES)
    assert len(CATEGORIES) == 7


@needs_data
@pytest.mark.parametrize("task", [TASK, PREFILL_TASK, DIRECT_TASK], ids=["plain", "prefill", "direct"])
def test_real_gold_completions_all_correct(test_examples, task):
    failures = []
    for ex in test_examples:
        score = task.verify(ex, gold_completion(task, ex))
        if not (score.format_ok and score.correct is True and score.reward == 1.1):
            failures.append((ex.id, score.reason))
    assert failures == []


@needs_data
def test_real_output_types_by_calculator(test_examples):
    by_calc: dict[int, set[str]] = {}
    for ex in test_examples:
        by_calc.setdefault(ex.metadata["calculator_id"], set()).add(ex.target["output_type"])
    # v1.0 labels calculator 69 "integer"; the official evaluator treats it as weeks+days.
    assert by_calc[69] == {"gestational_age"}
    assert by_calc[13] == by_calc[68] == {"date"}
    assert by_calc[8] == {"decimal"}
    counts = Counter(ex.metadata["calculator_id"] for ex in test_examples)
    assert counts[69] > 0


def _raw_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.skipif(not TRAIN_CSV.exists(), reason=f"train sample not found at {TRAIN_CSV}")
def test_real_train_sample_categories_normalised():
    raw = Counter(r["Category"].strip().lower() for r in _raw_rows(TRAIN_CSV))
    assert raw["lab test"] > 0 and raw["dosage conversion"] > 0  # the long names are really there
    examples = TASK.load(TRAIN_CSV)
    got = Counter(e.metadata["category"] for e in examples)
    assert set(got) <= set(CATEGORIES)
    assert got["lab"] == raw["lab test"] + raw["lab"]
    assert got["dosage"] == raw["dosage conversion"] + raw["dosage"]


@pytest.mark.skipif(not VERIFIED_CSV.exists(), reason=f"Verified one-shot file not found at {VERIFIED_CSV}")
def test_real_verified_one_shot_output_types():
    raw = {int(r["Calculator ID"]): r["Output Type"].strip().lower() for r in _raw_rows(VERIFIED_CSV)}
    # The file's own Output Type column disagrees with the official evaluator for these two calculators.
    assert raw[8] != "decimal" and raw[69] != "gestational_age"
    examples = TASK.load(VERIFIED_CSV)
    assert len(examples) == 55
    types = {e.metadata["calculator_id"]: e.target["output_type"] for e in examples}
    assert types[8] == "decimal"
    assert types[69] == "gestational_age"
    for ex in examples:
        assert TASK.verify(ex, gold_completion(TASK, ex)).correct is True, ex.id
