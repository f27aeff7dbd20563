"""Table-driven and property tests for the safe extractors in `ehrmind.parsing`.

Every extractor reads untrusted model text, so besides the accepted/rejected tables there are
Hypothesis properties (never raise, well-typed results) and a proof that no model text is executed.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import io
import json
import math
import os
import subprocess
import time
import tokenize
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ehrmind
import ehrmind.parsing
import ehrmind.tasks.medcalc.task as medcalc_task
from ehrmind import Example, get_task
from ehrmind.parsing import (
    ContractParts,
    check_contract,
    find_json_with_key,
    parse_date,
    parse_number,
    parse_weeks_days,
)
from ehrmind.tasks.medcalc.task import parse_gold

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None)
SRC_ROOT = Path(ehrmind.__file__).resolve().parent


# ---------------------------------------------------------------- parse_number: accepted


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # JSON numbers come through json.loads as int/float and must pass unchanged.
        pytest.param(4, 4.0, id="json-int"),
        pytest.param(8.1, 8.1, id="json-float"),
        pytest.param(-3, -3.0, id="json-negative-int"),
        pytest.param(0, 0.0, id="json-zero"),
        # A one-element list is unwrapped (models sometimes answer [4]).
        pytest.param([4], 4.0, id="one-element-list"),
        # Units after the number are the commonest model style; the unit's own digits (1.73, m²) must not win.
        pytest.param("8.1 mL/min/1.73 m²", 8.1, id="units-egfr"),
        pytest.param("12.5 mg/dL", 12.5, id="units-mg-dl"),
        pytest.param(" 7 ", 7.0, id="surrounding-whitespace"),
        # Thousands separators are a single number, not a list of two.
        pytest.param("1,200", 1200.0, id="thousands-sep"),
        pytest.param("12,345.6", 12345.6, id="thousands-sep-with-decimals"),
        pytest.param("1,200,000", 1200000.0, id="thousands-sep-two-groups"),
        # Percent is the label's own unit: 53.1% means 53.1, never 0.531.
        pytest.param("53.1%", 53.1, id="percent-not-divided"),
        # Scientific notation in its several spellings.
        pytest.param("1.2e3", 1200.0, id="sci-e"),
        pytest.param("1.2E3", 1200.0, id="sci-capital-E"),
        pytest.param("2.5e-3", 0.0025, id="sci-e-negative-exp"),
        pytest.param("1.2 × 10³", 1200.0, id="sci-times-superscript"),
        pytest.param("1.2x10^-3", 0.0012, id="sci-x-caret-negative"),
        pytest.param("1.2 x 10⁻³", 0.0012, id="sci-superscript-minus"),
        pytest.param("3 * 10**2", 300.0, id="sci-python-power"),
        pytest.param("1.2 \\times 10^{3}", 1200.0, id="sci-latex"),
        # Unicode minus (U+2212) and en dash (U+2013) are what many tokenizers emit for a minus sign.
        pytest.param("\u22125.2", -5.2, id="unicode-minus"),
        pytest.param("\u20135.2", -5.2, id="en-dash-minus"),
        pytest.param("-5", -5.0, id="ascii-minus"),
        pytest.param("+4", 4.0, id="explicit-plus"),
        pytest.param(".5", 0.5, id="leading-dot"),
        # Full-width digits (CJK input methods) fold to ASCII via NFKC.
        pytest.param("１２３", 123.0, id="full-width-int"),
        pytest.param("１２.５", 12.5, id="full-width-decimal"),
        # "4 out of 9": the score, not the maximum.
        pytest.param("4 out of 9", 4.0, id="out-of"),
        # Digits glued to letters (CHA2DS2) are part of a name, not the answer.
        pytest.param("CHA2DS2-VASc score: 4", 4.0, id="digits-in-name-ignored"),
        # The first standalone number is the answer, later ones are commentary.
        pytest.param("8.1 then 3.2", 8.1, id="first-number-wins"),
        pytest.param("6.1 ± 0.2", 6.1, id="plus-minus-commentary"),
        # A range inside parentheses after the value is commentary, not the answer being a range.
        pytest.param("4 (3-5)", 4.0, id="value-then-parenthesised-range"),
        # Not expressions: a label before the value, a unit with a slash, a parenthesised value.
        pytest.param("score = 4", 4.0, id="label-equals-value"),
        pytest.param("4 = low risk", 4.0, id="value-equals-words"),
        pytest.param("140 mg/dL", 140.0, id="unit-with-slash"),
        pytest.param("(4)", 4.0, id="parenthesised-value"),
        pytest.param("4 (low risk)", 4.0, id="value-then-words-in-parentheses"),
    ],
)
def test_parse_number_accepts(value, expected):
    got, problem = parse_number(value)
    assert got == pytest.approx(expected, rel=1e-12, abs=0.0)
    assert problem == ""


# ---------------------------------------------------------------- parse_number: rejected


@pytest.mark.parametrize(
    ("value", "reason_part"),
    [
        # bool is an int subclass: True must not read as 1.
        pytest.param(True, "not a number", id="bool-true"),
        pytest.param(False, "not a number", id="bool-false"),
        pytest.param(None, "not a number", id="none"),
        pytest.param({"value": 4}, "not a number", id="dict"),
        pytest.param([4, 5], "not a number", id="two-element-list"),
        pytest.param("", "no number", id="empty-string"),
        pytest.param("abc", "no number", id="no-digits"),
        # Non-finite values would make every comparison meaningless.
        pytest.param(float("nan"), "not finite", id="nan-float"),
        pytest.param(float("inf"), "not finite", id="inf-float"),
        pytest.param(float("-inf"), "not finite", id="minus-inf-float"),
        pytest.param("1e999", "not finite", id="overflowing-e-notation"),
        pytest.param("9 x 10^308", "not finite", id="overflowing-times-notation"),
        # Ranges hedge between values: never accept them as the lower end.
        pytest.param("10-12", "range", id="range-hyphen"),
        pytest.param("10 to 12", "range", id="range-to"),
        pytest.param("10 \u2013 12", "range", id="range-en-dash"),
        pytest.param("10 \u2014 12", "range", id="range-em-dash"),
        pytest.param("1,000-2,000", "range", id="range-with-thousands"),
        # A comma that is not a thousands separator: decimal comma or a list; refuse to guess.
        pytest.param("1,20", "ambiguous comma", id="decimal-comma"),
        pytest.param("3,4,5", "ambiguous comma", id="comma-list"),
        pytest.param("1,2345", "ambiguous comma", id="bad-group-size"),
        # An enormous exponent must be refused without computing 10**99999999.
        pytest.param("1 x 10^99999999", "out of range", id="huge-exponent"),
        # Issue #16, cause 4: an expression was read as its first number, so for gold 4 "4*10" scored 1.1.
        pytest.param("4*10", "arithmetic expression", id="expr-times"),
        pytest.param("4**3", "arithmetic expression", id="expr-power"),
        pytest.param("4/2", "arithmetic expression", id="expr-divide"),
        pytest.param("4 + 0", "arithmetic expression", id="expr-plus"),
        pytest.param("2 + 1 + 1 = 4", "arithmetic expression", id="expr-equation"),
        pytest.param("4 × 3", "arithmetic expression", id="expr-unicode-times"),
        pytest.param("round(4.4*100)", "arithmetic expression", id="expr-call"),
        pytest.param("round(4.4)", "arithmetic expression", id="expr-call-one-argument"),
        pytest.param("str(4)", "arithmetic expression", id="expr-str-call"),
        pytest.param("(3+1)", "arithmetic expression", id="expr-parenthesised"),
    ],
)
def test_parse_number_rejects(value, reason_part):
    got, problem = parse_number(value)
    assert got is None
    assert reason_part in problem


def test_parse_number_huge_exponent_is_fast():
    # 10.0**99999999 would overflow, and int 10**99999999 would take minutes: it must be cut off early.
    start = time.perf_counter()
    for s in ("1 x 10^99999999", "1 × 10^-99999999", "2*10**" + "9" * 50):
        assert parse_number(s)[0] is None
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # A later "× 10^n" expression overrides the first standalone number.
        pytest.param("8.1 then 3 x 10^2", 8.1, id="first-number-before-later-sci"),
        pytest.param("score 4; WBC 5 x 10^9/L", 4.0, id="score-then-lab-sci"),
    ],
)
def test_parse_number_first_number_wins_over_later_scientific(value, expected):
    assert parse_number(value)[0] == expected


def test_parse_number_rejects_range_in_scientific_notation():
    # "10-12 x 10^3" is a range; it currently reads as 12000 (the upper end, times 10^3).
    assert parse_number("10-12 x 10^3")[0] is None


def test_parse_number_huge_json_int_does_not_raise():
    # json.loads gives an exact int for a 401-digit literal; float() of it raises OverflowError.
    assert parse_number(10**400) == (None, "answer is not finite")


# ---------------------------------------------------------------- parse_date


@pytest.mark.parametrize(
    "value",
    [
        # MM/DD/YYYY is the benchmark's own convention.
        pytest.param("09/23/2014", id="mm-dd-yyyy"),
        # ISO is unambiguous.
        pytest.param("2014-09-23", id="iso"),
        # Spelled-out months, with abbreviations, ordinals and "of".
        pytest.param("September 23, 2014", id="month-day-year"),
        pytest.param("Sept. 23rd 2014", id="abbrev-ordinal"),
        pytest.param("Sep 23 2014", id="abbrev-no-comma"),
        pytest.param("23 September 2014", id="day-month-year"),
        pytest.param("23rd of Sep, 2014", id="day-of-month"),
        pytest.param("23 Sept. 2014", id="day-abbrev-dot"),
        # Hyphens instead of slashes, still month first.
        pytest.param("09-23-2014", id="mm-dd-yyyy-hyphen"),
        # Surrounding prose: the date is found inside it.
        pytest.param("The estimated due date is 09/23/2014.", id="in-sentence"),
    ],
)
def test_parse_date_accepts_sept_23(value):
    assert parse_date(value) == (date(2014, 9, 23), "")


def test_parse_date_single_digit_month_and_day():
    # M/D/YYYY with a single-digit day must be 3 September, not 9 March.
    assert parse_date("9/3/2014") == (date(2014, 9, 3), "")


@pytest.mark.parametrize(
    ("value", "reason_part"),
    [
        # Impossible as MM/DD: rejected, never re-read as DD/MM.
        pytest.param("13/45/2020", "not a valid date", id="invalid-month-and-day"),
        pytest.param("23/09/2014", "not a valid date", id="dd-mm-not-guessed"),
        pytest.param("Sep 31, 2014", "not a valid date", id="day-31-in-september"),
        # A year alone is not a date.
        pytest.param("2014", "no date", id="year-only"),
        # Two-digit years are ambiguous across centuries.
        pytest.param("9/23/14", "no date", id="two-digit-year"),
        # JSON numbers are not dates even if the digits spell one.
        pytest.param(20140923, "not a string", id="int"),
        pytest.param(None, "not a string", id="none"),
        pytest.param("", "no date", id="empty"),
    ],
)
def test_parse_date_rejects(value, reason_part):
    got, problem = parse_date(value)
    assert got is None
    assert reason_part in problem


# ---------------------------------------------------------------- parse_weeks_days


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # The JSON shapes the prompt asks for, and the source file's own tuple of strings.
        pytest.param([4, 3], (4, 3), id="list-ints"),
        pytest.param([4.0, 3.0], (4, 3), id="list-whole-floats"),
        pytest.param(["4 weeks", "3 days"], (4, 3), id="list-strings"),
        pytest.param(("4 weeks", "3 days"), (4, 3), id="tuple-strings"),
        pytest.param({"weeks": 4, "days": 3}, (4, 3), id="dict"),
        pytest.param({"Weeks": "4", "Days": "3 days"}, (4, 3), id="dict-capitalised-string-values"),
        # Free-text spellings models produce.
        pytest.param("(4 weeks, 3 days)", (4, 3), id="parenthesised-labelled"),
        pytest.param("4 weeks and 3 days", (4, 3), id="weeks-and-days"),
        pytest.param("4 wks 3 d", (4, 3), id="abbreviated-spaced"),
        pytest.param("34+3", (34, 3), id="obstetric-plus"),
        pytest.param("(4, 3)", (4, 3), id="pair-string"),
        pytest.param("[4, 3]", (4, 3), id="bracketed-pair-string"),
        # The exact gold format of MedCalc-Bench's calculator 69.
        pytest.param("('0 weeks', '6 days')", (0, 6), id="gold-literal-format"),
        # Weeks only means zero days; days only is split into weeks and days.
        pytest.param("4 weeks", (4, 0), id="weeks-only"),
        pytest.param("31 days", (4, 3), id="days-only-normalised"),
    ],
)
def test_parse_weeks_days_accepts(value, expected):
    assert parse_weeks_days(value) == (expected, "")


def test_parse_weeks_days_compact_form():
    # The docstring promises "4w3d"; the labelled pattern needs a word boundary after "w".
    assert parse_weeks_days("4w3d") == ((4, 3), "")


@pytest.mark.parametrize(
    "value",
    [
        # Number words are not parsed (and must not be mistaken for something else).
        pytest.param("four weeks", id="number-words"),
        # Half a pair is not a gestational age.
        pytest.param([4], id="one-element-list"),
        pytest.param({"weeks": 4}, id="dict-without-days"),
        pytest.param([True, 3], id="bool-in-pair"),
        pytest.param([4.5, 3], id="fractional-weeks"),
        pytest.param("(4, 3, 2)", id="triple"),
        # bool is an int subclass; it must not be read as anything.
        pytest.param(True, id="bool"),
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
    ],
)
def test_parse_weeks_days_rejects(value):
    got, problem = parse_weeks_days(value)
    assert got is None
    assert problem


# ---------------------------------------------------------------- check_contract

GOOD_ANSWER = '<answer>{"answer": 4}</answer>'


@pytest.mark.parametrize(
    ("text", "ok", "problem_part"),
    [
        # The canonical shape.
        pytest.param('<think>reason</think>\n<answer>{"answer": 4}</answer>', True, "", id="well-formed"),
        # Whitespace around and between the blocks is harmless.
        pytest.param(f"  \n<think>r</think>  \n {GOOD_ANSWER}\n\n", True, "", id="whitespace-allowed"),
        # A fenced JSON block inside <answer> is a common model habit and accepted.
        pytest.param(
            '<think>r</think><answer>```json\n{"answer": 4}\n```</answer>', True, "", id="json-fence"
        ),
        # Each rule broken on its own:
        pytest.param(GOOD_ANSWER, False, "think block", id="missing-think"),
        pytest.param(f"<think>a</think><think>b</think>{GOOD_ANSWER}", False, "think block", id="two-think"),
        pytest.param(f"<think>a</think>{GOOD_ANSWER}{GOOD_ANSWER}", False, "answer block", id="two-answer"),
        pytest.param(f"Sure!<think>a</think>{GOOD_ANSWER}", False, "before <think>", id="text-before-think"),
        pytest.param(f"<think>a</think>so:{GOOD_ANSWER}", False, "between", id="text-between"),
        pytest.param(f"<think>a</think>{GOOD_ANSWER} done", False, "after </answer>", id="text-after-answer"),
        pytest.param(f"{GOOD_ANSWER}\n<think>a</think>", False, "", id="answer-before-think"),
        pytest.param(
            '<think>a</think></answer>{"answer": 4}<answer>', False, "before <answer>", id="tags-reversed"
        ),
        pytest.param(
            "<think>a</think><answer>the answer is 4</answer>", False, "not valid JSON", id="not-json"
        ),
        pytest.param("<think>a</think><answer>[4]</answer>", False, "not an object", id="json-list"),
        pytest.param(
            '<think>a</think><answer>{"result": 4}</answer>', False, "no 'answer' key", id="missing-key"
        ),
        pytest.param("", False, "answer block", id="empty"),
        # An unterminated think block is not a think block.
        pytest.param(f"<think>a{GOOD_ANSWER}", False, "think block", id="unclosed-think"),
    ],
)
def test_check_contract_reasoning(text, ok, problem_part):
    parts = check_contract(text, "answer")
    assert isinstance(parts, ContractParts)
    assert parts.format_ok is ok
    if ok:
        assert parts.problem == ""
        assert parts.answer_obj == {"answer": 4}
        assert parts.think is not None
    else:
        assert parts.problem
        assert problem_part in parts.problem


def test_check_contract_extracts_think_text():
    parts = check_contract('<think>step 1\nstep 2</think><answer>{"answer": "x"}</answer>', "answer")
    assert parts.think == "step 1\nstep 2"
    assert parts.answer_obj == {"answer": "x"}


@pytest.mark.parametrize(
    ("text", "ok", "problem_part"),
    [
        # Direct mode: the answer block alone is the whole contract.
        pytest.param(GOOD_ANSWER, True, "", id="bare-answer"),
        pytest.param(f"\n {GOOD_ANSWER} \n", True, "", id="bare-answer-whitespace"),
        # A think block is a contract violation in direct mode.
        pytest.param(
            f"<think>a</think>{GOOD_ANSWER}", False, "not expected in direct mode", id="think-present"
        ),
        pytest.param(f"{GOOD_ANSWER}</think>", False, "", id="stray-think-close"),
        pytest.param(f"The answer: {GOOD_ANSWER}", False, "before <answer>", id="text-before-answer"),
        pytest.param('<answer>{"x": 4}</answer>', False, "no 'answer' key", id="missing-key"),
    ],
)
def test_check_contract_direct(text, ok, problem_part):
    parts = check_contract(text, "answer", require_think=False)
    assert parts.format_ok is ok
    assert problem_part in parts.problem
    if ok:
        assert parts.think is None
        assert parts.answer_obj == {"answer": 4}
    else:
        assert parts.problem


# ---------------------------------------------------------------- find_json_with_key


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # MedCalc-Bench's own output style, embedded in prose, with braces inside the reasoning string.
        pytest.param(
            'Here is my answer: {"step_by_step_thinking": "Sum {a} and {b}: 5+7.", "answer": "12"} Thanks.',
            {"step_by_step_thinking": "Sum {a} and {b}: 5+7.", "answer": "12"},
            id="medcalc-bench-style",
        ),
        # The last object with the key wins (a model that revises its answer).
        pytest.param(
            '{"answer": "1"} no wait {"answer": "2"} and {"other": 3}', {"answer": "2"}, id="last-wins"
        ),
        # Nested objects: the outer object has the key.
        pytest.param(
            'x {"answer": {"weeks": 4, "days": 3}} y', {"answer": {"weeks": 4, "days": 3}}, id="nested"
        ),
        # Inside broken tags it is still found (the fallback for accuracy under bad format).
        pytest.param('<answer>{"answer": 4}</answer> trailing', {"answer": 4}, id="inside-tags"),
        # Nothing usable: None, not an exception.
        pytest.param("no json here", None, id="no-json"),
        pytest.param('{"result": 4} {"x": {"y": 1}}', None, id="no-object-with-key"),
        pytest.param('{"answer": 4', None, id="truncated"),
        pytest.param('["answer", 4]', None, id="list-not-object"),
        pytest.param("", None, id="empty"),
    ],
)
def test_find_json_with_key(text, expected):
    assert find_json_with_key(text, "answer") == expected


def test_find_json_with_key_many_braces_is_fast():
    # A pathological completion must not make extraction quadratic.
    text = "{" * 200_000 + '{"answer": 1}'
    start = time.perf_counter()
    assert find_json_with_key(text, "answer") == {"answer": 1}
    assert find_json_with_key("{" * 200_000, "answer") is None
    assert time.perf_counter() - start < 2.0


def test_json_with_over_4300_digit_int_does_not_raise():
    # json.loads raises plain ValueError (not JSONDecodeError) past Python's 4300-digit int limit.
    text = '<think>x</think><answer>{"answer": ' + "9" * 5000 + "}</answer>"
    assert check_contract(text, "answer").format_ok is False
    assert find_json_with_key(text, "answer") is None


# ---------------------------------------------------------------- property tests

_FRAGMENTS = [
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "{",
    "}",
    '{"answer": ',
    '"answer"',
    '"',
    ":",
    ",",
    "[",
    "]",
    "(",
    ")",
    "0",
    "1",
    "4",
    "9",
    "12",
    "1,200",
    ".",
    "-",
    "+",
    "e",
    "E",
    "e999",
    "×10^",
    "x10^",
    "*10**",
    "^",
    "⁻³",
    "³",
    "\u2212",
    "\u2013",
    "%",
    " ",
    "\n",
    "```json",
    "```",
    "weeks",
    "days",
    "w",
    "d",
    "/",
    "2014",
    "09/23/",
    "Sept.",
    "of",
    "to",
    "１",
    "\x00",
    "NaN",
    "Infinity",
    "true",
    "null",
]
stress_text = st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=3)), max_size=40).map("".join)
any_text = st.one_of(st.text(), stress_text)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers(-(10**12), 10**12) | any_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["weeks", "days"]), children)
    ),
    max_leaves=6,
)


@PROPERTY_SETTINGS
@given(value=st.one_of(any_text, json_values))
def test_parse_number_never_raises(value):
    got, problem = parse_number(value)
    assert got is None or (isinstance(got, float) and math.isfinite(got))
    assert isinstance(problem, str)
    assert (got is None) == bool(problem)


@PROPERTY_SETTINGS
@given(value=st.one_of(any_text, json_values))
def test_parse_date_never_raises(value):
    got, problem = parse_date(value)
    assert got is None or isinstance(got, date)
    assert (got is None) == bool(problem)


@PROPERTY_SETTINGS
@given(value=st.one_of(any_text, json_values))
def test_parse_weeks_days_never_raises(value):
    got, problem = parse_weeks_days(value)
    if got is None:
        assert problem
    else:
        w, d = got
        assert type(w) is int and type(d) is int  # never bool, never float


@PROPERTY_SETTINGS
@given(text=any_text, direct=st.booleans())
def test_check_contract_never_raises(text, direct):
    parts = check_contract(text, "answer", require_think=not direct)
    assert isinstance(parts, ContractParts)
    if parts.format_ok:
        assert parts.problem == ""
        assert isinstance(parts.answer_obj, dict) and "answer" in parts.answer_obj
        assert (parts.think is None) == direct
    else:
        assert parts.problem


@PROPERTY_SETTINGS
@given(text=any_text)
def test_find_json_with_key_never_raises(text):
    got = find_json_with_key(text, "answer")
    assert got is None or (isinstance(got, dict) and "answer" in got)


@PROPERTY_SETTINGS
@given(x=st.floats(allow_nan=False, allow_infinity=False))
def test_parse_number_round_trips_float_repr(x):
    # Whatever Python prints for a finite float (incl. 1e-05, 1.7976931348623157e+308) reads back exactly.
    assert parse_number(repr(x)) == (x, "")
    assert parse_number(x) == (x, "")


@PROPERTY_SETTINGS
@given(n=st.integers(-(10**15), 10**15))
def test_parse_number_round_trips_thousands_separators(n):
    assert parse_number(f"{n:,}") == (float(n), "")


@PROPERTY_SETTINGS
@given(d=st.dates(min_value=date(1000, 1, 1)))
def test_parse_date_round_trips(d):
    for s in (
        d.strftime("%m/%d/%Y"),
        d.isoformat(),
        d.strftime("%B %d, %Y"),
        f"{d.month}/{d.day}/{d.year:04d}",
    ):
        assert parse_date(s) == (d, ""), s


@PROPERTY_SETTINGS
@given(w=st.integers(0, 60), d=st.integers(0, 6))
def test_parse_weeks_days_round_trips(w, d):
    for value in ([w, d], [f"{w} weeks", f"{d} days"], f"({w} weeks, {d} days)", f"{w}+{d}", str((w, d))):
        assert parse_weeks_days(value) == ((w, d), ""), value


# ---------------------------------------------------------------- the medcalc verifier never raises


def _example(output_type: str, answer: str, lower: str = "", upper: str = "") -> Example:
    return Example(
        id="p",
        task="medcalc",
        input={"note": "n", "question": "q"},
        target=parse_gold(output_type, answer, lower, upper),
        metadata={"category": "lab", "calculator_id": 0, "calculator_name": "c"},
    )


VERIFY_EXAMPLES = [
    _example("decimal", "67.00495", "63.6547", "70.3552"),
    _example("integer", "4"),
    _example("date", "09/23/2014"),
    _example("gestational_age", "('4 weeks', '3 days')"),
]
TASKS = [get_task("medcalc"), get_task("medcalc", prefill=True), get_task("medcalc", mode="direct")]


@PROPERTY_SETTINGS
@given(
    text=any_text,
    example=st.sampled_from(VERIFY_EXAMPLES),
    task=st.sampled_from(TASKS),
)
def test_verify_never_raises(text, example, task):
    score = task.verify(example, text)
    assert score.reward in {1.1, 0.0, -2.0}
    assert score.correct in (True, False)
    assert isinstance(score.format_ok, bool)
    assert score.reward == (-2.0 if not score.format_ok else 1.1 if score.correct else 0.0)


@PROPERTY_SETTINGS
@given(
    think=st.text().filter(lambda s: "<" not in s and ">" not in s),
    value=st.one_of(json_values, any_text),
    example=st.sampled_from(VERIFY_EXAMPLES),
)
def test_verify_well_formed_answer_is_never_a_format_error(think, value, example):
    # Any JSON value inside a clean contract is a format success; only correctness may vary.
    payload = json.dumps({"answer": value}).replace("<", "\\u003c")  # tags inside a JSON string stay text
    completion = f"<think>{think}</think>\n<answer>{payload}</answer>"
    score = TASKS[0].verify(example, completion)
    assert score.format_ok is True
    assert score.reward in {1.1, 0.0}


@pytest.mark.parametrize(
    "digits",
    [
        # 401 digits: json.loads gives an int that float() cannot hold (OverflowError in parse_number).
        pytest.param(401, id="float-overflow"),
        # 5000 digits: json.loads itself raises ValueError past Python's int-string limit.
        pytest.param(5000, id="int-digit-limit"),
    ],
)
def test_verify_huge_json_int_does_not_raise(digits):
    completion = '<think>x</think><answer>{"answer": 1' + "0" * (digits - 1) + "}</answer>"
    score = TASKS[0].verify(VERIFY_EXAMPLES[1], completion)
    assert score.correct is False


# ---------------------------------------------------------------- model text is never executed


class _Executed(AssertionError):
    pass


@pytest.mark.parametrize(
    ("completion", "gold"),
    [
        # Code that would run a shell command if anything eval'd the answer.
        pytest.param(
            """<think>x</think><answer>{"answer": "__import__('os').system('echo pwned')"}</answer>""",
            "0",
            id="os-system-in-contract",
        ),
        # An expression that would equal the gold (280) if evaluated; parsing must read 140, not 280.
        pytest.param('{"answer": "str(round(140*2))"}', "280", id="expression-equals-gold-bad-format"),
        pytest.param(
            '<think>x</think><answer>{"answer": "str(round(140*2))"}</answer>', "280", id="expression-ok"
        ),
        pytest.param('<think>x</think><answer>{"answer": "140*2"}</answer>', "280", id="bare-product"),
    ],
)
def test_model_text_is_never_executed(monkeypatch, capfd, completion, gold):
    def refuse(*args, **kwargs):
        raise _Executed(f"model text was executed: {args!r}")

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    monkeypatch.setattr(os, "system", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    example = _example("integer", gold)
    for task in TASKS[:2]:
        score = task.verify(example, completion)
        assert score.correct is False
        assert score.strict_correct is False
    assert "pwned" not in capfd.readouterr().out


def _grep_eval_exec(source: str) -> list[str]:
    """Token-level grep: a NAME `eval`/`exec` followed by `(` and not preceded by `.` (method calls such
    as `model.eval()` are fine) or `def`. Comments and strings are separate tokens, so they never match."""
    toks = [
        t
        for t in tokenize.generate_tokens(io.StringIO(source).readline)
        if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT)
    ]
    found = []
    for i, t in enumerate(toks):
        if t.type == tokenize.NAME and t.string in ("eval", "exec"):
            after = toks[i + 1].string if i + 1 < len(toks) else ""
            before = toks[i - 1].string if i else ""
            if after == "(" and before not in (".", "def"):
                found.append(f"{t.string}( at line {t.start[0]}")
    return found


def _eval_exec_calls(source: str) -> list[str]:
    """Names of builtin eval/exec calls in `source`, found two ways (AST and token grep)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in ("eval", "exec"):
                found.append(f.id)
            elif isinstance(f, ast.Attribute) and f.attr in ("eval", "exec"):
                if isinstance(f.value, ast.Name) and f.value.id in ("builtins", "__builtins__"):
                    found.append(f"{f.value.id}.{f.attr}")
    return found + _grep_eval_exec(source)


def test_eval_detector_detects():
    # Guard the guard: the detector must flag real calls and ignore literal_eval, comments and strings.
    assert _eval_exec_calls("x = eval('1')\n")
    assert _eval_exec_calls("import builtins\nbuiltins.exec('x=1')\n")
    assert _eval_exec_calls("y = exec ('x=1')\n")
    assert _grep_eval_exec("def f(x):\n    return eval(x)\n")
    assert not _eval_exec_calls("model.eval()\ndef eval(self):\n    pass\n")
    assert not _eval_exec_calls("import ast\nx = ast.literal_eval('1')  # never eval()\ns = 'eval(1)'\n")


def test_no_eval_or_exec_anywhere_in_src():
    files = sorted(SRC_ROOT.rglob("*.py"))
    assert len(files) > 5 and any(p.name == "parsing.py" for p in files)
    offenders = {
        str(p.relative_to(SRC_ROOT)): calls for p in files if (calls := _eval_exec_calls(p.read_text()))
    }
    assert offenders == {}
    # The two modules that read model text, as loaded (not just as found on disk).
    for module in (ehrmind.parsing, medcalc_task):
        assert _eval_exec_calls(inspect.getsource(module)) == [], module.__name__


@pytest.mark.parametrize("text", ["1" * 100_000, "4 weeks " * 20_000, "(" + "9" * 5000 + ", 3)"])
def test_parse_weeks_days_bounds_its_work_on_long_text(text):
    """Issue #16, cause 1: the weeks/days patterns were quadratic (a 100,000-digit answer did not finish
    in 120 s) and a 5,000-digit number overflowed int(); a long answer is simply not a gestational age."""
    import time

    started = time.perf_counter()
    got, problem = parse_weeks_days(text)
    assert (got, problem) == (None, "answer too long for a gestational age")
    assert time.perf_counter() - started < 1.0  # generous: it returns before parsing
