"""MedCalc-Bench's own answer extraction and correctness check, re-implemented without executing text.

`official_correct(completion, target)` follows ncbi-nlp/MedCalc-Bench step by step: `evaluation/run.py`
`extract_answer` (lines 52-147), then `evaluation/evaluate.py` `check_correctness` (lines 11-53), with any
exception counted as "Incorrect" as `run.py:229-273` does. Line numbers are those of commit
`OFFICIAL_COMMIT`. It is reported beside ehrmind's own verdict (`correct`, from `MedCalcTask.verify`), as
lm-evaluation-harness reports "strict" and "flexible" extraction side by side; it is never a reward.

Where the official code calls `eval()` on a string, `safe_arithmetic` reads it instead: numbers,
`+ - * / // % ** ( )`, unary minus and plus, and `^` as Python's XOR on integers, parsed with `ast` against a
node whitelist, with the limits below (the `str(…)` branch rewrites `^` to `**` first, as run.py:119 does).
Anything else (names, calls such as `round(…)`, attributes, strings, comparisons) is what a failed `eval` is
in the official code: "N/A" inside its `try` (run.py:125-129), an exception → "Incorrect" elsewhere.

Where an official regular expression backtracks quadratically on long model text, an equivalent linear one is
used (same matches, same groups; each says why it is equivalent; `tests/test_medcalc_official.py` checks them
against the verbatim expressions on random strings).

Known departures from the official code (docs/verifier.md, "Official extraction (official_correct)"):
- `eval` of calls and names in the `str(...)` branch (`str(round(140*2))`): refused, so wrong here;
- decimal limits are the target's normalised `[min, max]` (`parse_gold`): for rows whose source limits come
  swapped the official check can never succeed;
- numbers longer than `MAX_EXPRESSION_CHARS` are not read (the official reads up to 4,300 digits);
  no MedCalc-Bench label is that long, so the verdict is the same (wrong).
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

OFFICIAL_REPO = "ncbi-nlp/MedCalc-Bench"
OFFICIAL_COMMIT = "20b10f9d66a8c3b0356ae3138533f5ec91666b6a"

MAX_EXPRESSION_CHARS = 200
"""`safe_arithmetic` reads no longer text (an official answer is a number or a short formula)."""
MAX_EXPONENT = 100
"""Largest |b| in `a ** b`."""
MAX_MAGNITUDE = 1e15
"""Largest |value| of every literal, intermediate result and result (MedCalc labels are far smaller)."""

# Output types by calculator id, copied from run.py:74, 85, 97 and 115 (evaluate.py:15, 22, 37, 44 repeat
# them). 69 is also in the integer list, but the gestational-age branch comes first.
DATE_IDS = frozenset({13, 68})
GESTATIONAL_AGE_IDS = frozenset({69})
INTEGER_IDS = frozenset({4, 15, 16, 17, 18, 20, 21, 25, 27, 28, 29, 32, 33, 36, 43, 45, 48, 51, 69})
DECIMAL_IDS = frozenset(
    {2, 3, 5, 6, 7, 8, 9, 10, 11, 19, 22, 23, 24, 26, 30, 31, 38, 39, 40, 44, 46, 49}
    | {56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67}
)
PLACEHOLDERS = (  # run.py:71: the prompt's own placeholders are "Not Found"
    "str(short_and_direct_answer_of_the_question)",
    "str(value which is the answer to the question)",
    "X.XX",
)


class _Raised(Exception):
    """Where the official code raises; run.py:258-273 records the row as "Incorrect"."""


@dataclass(frozen=True)
class OfficialVerdict:
    correct: bool
    """run.py:237 `status == "Correct"`."""
    answer: str | None
    """What `extract_answer` returned (run.py's "LLM Answer": a number as text, "MM/DD/YYYY", "(w, d)" or
    "N/A"); None when extraction itself raised."""
    reason: str = ""


# ---------------------------------------------------------------------------------------- safe arithmetic

_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,  # by zero: ZeroDivisionError, as for eval
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
    ast.BitXor: lambda a, b: _xor(a, b),
}
_UNARY = {ast.USub: lambda a: -a, ast.UAdd: lambda a: +a}


def _xor(a: int | float, b: int | float) -> int:
    """Python's `a ^ b`: integers only (`2.0 ^ 1` is a TypeError for eval, so refused here)."""
    if not (isinstance(a, int) and isinstance(b, int)):
        raise _Rejected("^ of a non-integer")
    return a ^ b


class _Rejected(Exception):
    pass


def _bounded(v: Any) -> int | float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):  # complex from (-8) ** 0.5, bool
        raise _Rejected("not a real number")
    if isinstance(v, float) and not math.isfinite(v):
        raise _Rejected("not finite")
    if abs(v) > MAX_MAGNITUDE:
        raise _Rejected("too large")
    return v


def _eval_node(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant):
        return _bounded(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _bounded(_UNARY[type(node.op)](_eval_node(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _eval_node(node.left), _eval_node(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise _Rejected("exponent too large")
        return _bounded(_BINOPS[type(node.op)](left, right))
    raise _Rejected(f"{type(node).__name__} is not arithmetic")


def safe_arithmetic(text: str) -> int | float | None:
    """The value of an arithmetic expression, or None where the official `eval()` would be refused here.

    Whitelist: int and float literals (Python's syntax, so `08` is a SyntaxError as it is for `eval`),
    unary minus and plus, `+ - * / // % **`, parentheses, and `^` as `eval` reads it: XOR of two integers
    (`2^3` is 1; of a float it is eval's TypeError, so None). Only run.py:119's `str(…)` branch reads `^` as a
    power, by rewriting it before `eval` (`_str_expression`); evaluate.py's `eval(answer)` and the EHRMind
    paper's reward do not. Bitwise `~ & | << >>` stay refused. Limits: at most `MAX_EXPRESSION_CHARS`
    characters, |exponent| <= `MAX_EXPONENT`, every value within ±`MAX_MAGNITUDE`. Division or modulo by
    zero, overflow and complex results are None. Nothing is executed."""
    if not isinstance(text, str) or len(text) > MAX_EXPRESSION_CHARS:
        return None
    source = text.lstrip(" \t")  # eval() strips leading spaces and tabs; ast does not
    try:
        tree = ast.parse(source, mode="eval")
        return _eval_node(tree.body)
    except (SyntaxError, ValueError, TypeError, _Rejected, ArithmeticError, RecursionError, MemoryError):
        return None


def _eval(text: str) -> int | float:
    """An `eval()` outside a `try` in the official code: failure raises (→ "Incorrect")."""
    v = safe_arithmetic(text)
    if v is None:
        raise _Raised(f"eval({text[:40]!r}) fails")
    return v


# ---------------------------------------------------------------------------------------- extraction

_ANSWER_KEY = re.compile(r'[Aa]nswer":')
_SPACES = re.compile(r"\s*")


def _answer_fields(text: str) -> list[str]:
    """`re.findall(r'[Aa]nswer":\\s*(.*?)\\}', text)` (run.py:55) in linear time.

    The verbatim pattern rescans to the end of the line from every `answer":` that has no `}` after it on
    its line: quadratic on long text. Equivalent: after the key, greedy `\\s*` (which may cross newlines), then
    the group runs to the first `}` unless a newline (which `.` does not match) comes first; giving back
    whitespace cannot help, as `.*?` would then have to cross the same line. A match resumes after its `}`;
    a failure at the next position (the next key)."""
    found: list[str] = []
    n = len(text)
    pos, brace, newline = 0, -1, -1  # next '}' / '\n' at or after the current start (n: none)
    while (m := _ANSWER_KEY.search(text, pos)) is not None:
        start = _SPACES.match(text, m.end()).end()  # type: ignore[union-attr]
        if brace < start:
            brace = text.find("}", start)
            brace = n if brace < 0 else brace
        if newline < start:
            newline = text.find("\n", start)
            newline = n if newline < 0 else newline
        if brace < n and brace < newline:
            found.append(text[start:brace])
            pos = brace + 1
        else:
            pos = m.start() + 1
    return found


_DATE = re.compile(r"^(0?[1-9]|1[0-2])\/(0?[1-9]|[12][0-9]|3[01])\/(\d{4})")  # run.py:76, verbatim
# run.py:87 and 90, evaluate.py:24 and 26, verbatim. Its `\s*…\s*` pair is quadratic in a long whitespace run
# and only `\s` matches whitespace there, so it is searched in text whose whitespace runs are one space
# (`_squeeze`): same matches, same digit groups.
_WEEKS_DAYS = re.compile(r"\(?[\"\']?(\d+)\s*(weeks?)?[\"\']?,?\s*[\"\']?(\d+)\s*(days?)?[\"\']?\s*\)?")
# The number patterns below are run.py's with `(?<!\d)` before the first digit: the verbatim ones retry from
# every digit of a long run (quadratic). A match starting inside a digit run would need the same suffix as a
# match from the run's first digit, which came first, so only first digits can start a match: same matches.
_OUT_OF = re.compile(r"(?<!\d)(\d+) out of")  # run.py:99 r"(\d+) out of"
_COMMA_LIST = re.compile(r"-?(?<!\d)\d+(, ?-?\d+)+")  # run.py:103 r"-?\d+(, ?-?\d+)+"
_NUMBER = re.compile(r"(-?(?<!\d)\d+(\.\d+)?)")  # run.py:108 and 139 r"(-?\d+(\.\d+)?)"
_EGFR = re.compile(r"(-?(?<!\d)\d+(\.\d+)?)\s*mL/min/1.73")  # run.py:131 r"(-?\d+(\.\d+)?)\s*mL/min/1.73"
_PERCENT = re.compile(r"(-?(?<!\d)\d+(\.\d+)?)\%")  # run.py:135 r"(-?\d+(\.\d+)?)\%"


def _squeeze(s: str) -> str:
    return re.sub(r"\s+", " ", s)


def _last(pattern: re.Pattern[str], s: str) -> str | None:
    """`re.findall(pattern, s)[-1][0]` without building the list (a long answer has many numbers)."""
    last = None
    for m in pattern.finditer(s):
        last = m.group(1)
    return last


def _str_call(s: str) -> str | None:
    """`re.search(r"str\\((.*)\\)", s).group(1)` (run.py:117) in linear time: from the first `str(` whose line
    has a `)` after it, to that line's last `)` (greedy `.*`, no newline)."""
    i = s.find("str(")
    while i >= 0:
        line_end = s.find("\n", i)
        line_end = len(s) if line_end < 0 else line_end
        j = s.rfind(")", i + 4, line_end)
        if j >= 0:
            return s[i + 4 : j]
        i = s.find("str(", line_end)
    return None


def _str_expression(inner: str) -> str:
    """run.py:119-124, verbatim: the rewrites before `eval`."""
    expression = (
        inner.replace("^", "**")
        .replace("is odd", "% 2 == 1")
        .replace("is even", "% 2 == 0")
        .replace("sqrt", "math.sqrt")
        .replace(".math", "")
        .replace("weight", "")
        .replace("height", "")
        .replace("mg/dl", "")
        .replace("g/dl", "")
        .replace("mmol/L", "")
        .replace("kg", "")
        .replace("g", "")
        .replace("mEq/L", "")
    )
    expression = expression.split("#")[0]  # run.py:120
    opened, closed = expression.count("("), expression.count(")")
    if opened > closed:  # run.py:121-122
        expression += ")" * (opened - closed)
    elif closed > opened:  # run.py:123-124
        expression = "(" * (closed - opened) + expression
    return expression


def extract_answer(text: str, kind: str) -> str:
    """run.py:52-147 `extract_answer(answer, calid)` (the explanation it also returns is not needed), with
    `kind` the output type the calculator id selects. Raises `_Raised` where the official code raises."""
    fields = _answer_fields(text)  # run.py:55
    if not fields:  # run.py:67-68
        extracted = "Not Found"
    else:
        extracted = fields[-1].strip().strip('"')  # run.py:70
        if extracted in PLACEHOLDERS:  # run.py:71-72
            extracted = "Not Found"

    if kind == "date":  # run.py:74-83
        m = _DATE.search(extracted)
        return f"{int(m.group(1)):02}/{int(m.group(2)):02}/{m.group(3)}" if m else "N/A"

    if kind == "gestational_age":  # run.py:85-96
        if _WEEKS_DAYS.search(_squeeze(extracted)) is None:  # run.py:87-88: match.group on None raises
            raise _Raised("no (weeks, days) in the answer: AttributeError at run.py:88")
        extracted = extracted.replace("[", "(").replace("]", ")").replace("'", "").replace('"', "")  # :89
        m = _WEEKS_DAYS.search(_squeeze(extracted))  # run.py:90
        return f"({m.group(1)}, {m.group(3)})" if m else "N/A"  # run.py:91-96

    if kind == "integer":  # run.py:97-114
        m = _OUT_OF.search(extracted)
        if m:  # run.py:100-101, "3 out of 5"
            return m.group(1)
        m = _COMMA_LIST.search(extracted)
        if m:  # run.py:103-105, "3, 4, 5" → the number of items
            return str(len(m.group(0).split(",")))
        last = _last(_NUMBER, extracted)  # run.py:108-114: the last number
        return last if last is not None else "N/A"

    if kind == "decimal":  # run.py:115-145
        inner = _str_call(extracted)
        value: int | float | str
        if inner is not None:  # run.py:117-129: eval inside try, failure → "N/A"
            v = safe_arithmetic(_str_expression(inner))
            value = "N/A" if v is None else v
        elif m := _EGFR.search(extracted):  # run.py:131-133, "8.1 mL/min/1.73 m²"
            value = _eval(m.group(1))
        elif (pct := _last(_PERCENT, extracted)) is not None:  # run.py:135-137, "53.1%" → 0.531
            value = _eval(pct) / 100
        elif (last := _last(_NUMBER, extracted)) is not None:  # run.py:139-141: the last number
            value = _eval(last)
        else:  # run.py:142-143
            value = "N/A"
        return value if value == "N/A" else str(value)  # run.py:144-145

    # run.py:52-147 has no branch for an unknown id (it returns the text); evaluate.py:51-52 then raises.
    raise _Raised(f"unknown calculator type {kind!r}: ValueError at evaluate.py:52")


# ---------------------------------------------------------------------------------------- correctness


def check_correctness(answer: str, target: dict[str, Any], kind: str) -> bool:
    """evaluate.py:11-53 `check_correctness(answer, ground_truth, calid, upper_limit, lower_limit)`; the gold
    comes from the Example's target (`parse_gold`). Raises `_Raised` where the official code raises."""
    if kind == "date":  # evaluate.py:15-21: equal as dates; strptime raises on "N/A" or 02/30
        try:
            got = datetime.strptime(answer, "%m/%d/%Y").date()
            gold = datetime.strptime(str(target["answer"]), "%m/%d/%Y").date()
        except ValueError as e:
            raise _Raised(f"strptime: {e}") from None
        return got == gold

    if kind == "gestational_age":  # evaluate.py:22-36
        gold_text = target.get("answer")
        if not isinstance(gold_text, str):
            gold_text = str(tuple(target["value"]))
        gm = _WEEKS_DAYS.search(_squeeze(gold_text))  # evaluate.py:24-25
        if gm is None:
            raise _Raised("gold has no (weeks, days): AttributeError at evaluate.py:25")
        m = _WEEKS_DAYS.search(_squeeze(answer))  # evaluate.py:26
        if not m:  # evaluate.py:35-36
            return False
        # evaluate.py:27-31: eval of "(w, d)" on both sides; each integer is read as eval reads it.
        got = (_eval(m.group(1)), _eval(m.group(3)))
        return got == (_eval(gm.group(1)), _eval(gm.group(3)))

    if kind == "integer":  # evaluate.py:37-43: round(eval(answer)) == eval(ground_truth)
        gold = target.get("answer")
        gold_value = _eval(gold) if isinstance(gold, str) else target["value"]
        return round(_eval(answer)) == gold_value

    if kind == "decimal":  # evaluate.py:44-50: eval(lower) <= eval(answer) <= eval(upper)
        value = _eval(answer)
        return target["lower"] <= value <= target["upper"]

    raise _Raised(f"unknown calculator type {kind!r}: ValueError at evaluate.py:52")


def official_kind(target: dict[str, Any], calculator_id: Any = None) -> str | None:
    """The output type the official code selects: by calculator id (run.py:74-115), else the target's."""
    if calculator_id is None:
        return target.get("output_type")
    try:
        calid = int(calculator_id)  # run.py:54, evaluate.py:13
    except (TypeError, ValueError):
        return None
    for kind, ids in (
        ("date", DATE_IDS),
        ("gestational_age", GESTATIONAL_AGE_IDS),
        ("integer", INTEGER_IDS),
        ("decimal", DECIMAL_IDS),
    ):
        if calid in ids:
            return kind
    return None


def official_verdict(completion: str, target: dict[str, Any], calculator_id: Any = None) -> OfficialVerdict:
    """The official verdict on one completion, with what the official extraction read."""
    kind = official_kind(target, calculator_id)
    if kind is None:
        return OfficialVerdict(False, None, "calculator id not in the official lists: evaluate.py:51-52")
    answer = None
    try:  # run.py:229-273: any exception → "Incorrect"
        answer = extract_answer(completion or "", kind)  # run.py:230
        ok = check_correctness(answer, target, kind)  # run.py:235
    except _Raised as e:
        return OfficialVerdict(False, answer, str(e))
    except (KeyError, TypeError):  # an incomplete target: the official check would raise too
        return OfficialVerdict(False, answer, "gold answer cannot be read")
    return OfficialVerdict(bool(ok), answer, "correct" if ok else "wrong")


def official_correct(completion: str, target: dict[str, Any], calculator_id: Any = None) -> bool:
    """MedCalc-Bench's own verdict (run.py `extract_answer` + evaluate.py `check_correctness`) on a completion;
    `calculator_id` selects the output type as the official code does (without it: `target["output_type"]`)."""
    return official_verdict(completion, target, calculator_id).correct


def check_answer(answer: str, target: dict[str, Any], calculator_id: Any = None) -> bool:
    """evaluate.py `check_correctness` alone on an answer string, any exception counted as wrong: the EHRMind
    paper's reward does exactly this with `str(json["answer"])` (its `reward_score/medcalc.py:153-163` and
    `src/eval/utils.py`, a copy of evaluate.py), so "120 mmHg" or "N/A" earns no correctness reward. A
    calculator id outside the official lists (synthetic or new calculators) is checked by the target's output
    type, where the paper's code would raise."""
    kind = official_kind(target, calculator_id) or official_kind(target)
    if kind is None:
        return False
    try:
        return bool(check_correctness(answer, target, kind))
    except (_Raised, KeyError, TypeError):
        return False
