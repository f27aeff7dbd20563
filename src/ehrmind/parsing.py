"""Safe extractors shared by every task: output-contract tags, answer JSON, numbers, dates, weeks+days.

Nothing here executes text: numbers are read with regular expressions and `float`, JSON with `json`,
dates with `datetime.strptime`. Every function returns None (with a reason where useful) instead of
raising on model text, however malformed.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
MAX_JSON_CHARS = 100_000
"""Longest JSON text read from a completion: an answer block, or a fallback object. A longer one is not parsed
(an answer is a few characters, MedCalc-Bench's own output with its reasoning a few KB), which bounds the work
a hostile completion causes: json reads 1 MB of `[[[[]]]],` in 0.19 s on the project's CPU machine."""
# Don't let a pathological completion make the fallback quadratic: at most this many '{' are tried, each over
# at most MAX_JSON_CHARS, and the tries together read at most _JSON_SCAN_BUDGET characters (64 tries of an
# unclosed 1 MB list each read it to its end: 1.2 s).
_MAX_JSON_STARTS = 64
_JSON_SCAN_BUDGET = 2 * MAX_JSON_CHARS


@dataclass(frozen=True)
class ContractParts:
    """The result of checking the output contract `<think>…</think><answer>{JSON}</answer>`."""

    format_ok: bool
    think: str | None
    answer_text: str | None
    answer_obj: dict[str, Any] | None
    problem: str = ""


def check_contract(
    text: str, key: str, *, require_think: bool = True, rules: Literal["strict", "paper"] = "strict"
) -> ContractParts:
    """Check the output contract.

    `strict` (ehrmind's contract, what strict accuracy counts): only whitespace before `<think>`; exactly
    one think block; only whitespace between `</think>` and `<answer>`; exactly one answer block; only
    whitespace after `</answer>`; the answer block holds one JSON object (optionally in a ```json fence)
    with `key`. With `require_think=False` (the `direct` prompt mode) the think block must be absent and
    the answer block comes first.

    `paper` (the EHRMind paper's format reward, `verl/utils/reward_score/medcalc.py`
    `validate_response_structure` + `check_json_format`): each tag exactly once and in order; any text
    before, between and after the blocks; the stripped answer block is plain JSON (no fence) — an object
    with `key`.
    """
    if rules == "paper":
        return _check_contract_paper(text, key, require_think=require_think)
    counts = {t: text.count(t) for t in (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)}
    answer_text = _last_between(text, ANSWER_OPEN, ANSWER_CLOSE)
    obj, obj_problem = parse_json_object(answer_text, key) if answer_text is not None else (None, "")

    def bad(problem: str) -> ContractParts:
        return ContractParts(False, _last_between(text, THINK_OPEN, THINK_CLOSE), answer_text, obj, problem)

    if counts[ANSWER_OPEN] != 1 or counts[ANSWER_CLOSE] != 1:
        return bad(f"expected exactly one answer block, found {counts[ANSWER_OPEN]} <answer> tag(s)")
    a_open, a_close = text.index(ANSWER_OPEN), text.index(ANSWER_CLOSE)
    if a_close < a_open:
        return bad("</answer> comes before <answer>")
    if text[a_close + len(ANSWER_CLOSE) :].strip():
        return bad("text after </answer>")
    if require_think:
        if counts[THINK_OPEN] != 1 or counts[THINK_CLOSE] != 1:
            return bad(f"expected exactly one think block, found {counts[THINK_OPEN]} <think> tag(s)")
        t_open, t_close = text.index(THINK_OPEN), text.index(THINK_CLOSE)
        if text[:t_open].strip():
            return bad("text before <think>")
        if not t_open < t_close < a_open:
            return bad("blocks out of order: expected <think>…</think> then <answer>…</answer>")
        if text[t_close + len(THINK_CLOSE) : a_open].strip():
            return bad("text between </think> and <answer>")
        think = text[t_open + len(THINK_OPEN) : t_close]
    else:
        if counts[THINK_OPEN] or counts[THINK_CLOSE]:
            return bad("a think block is not expected in direct mode")
        if text[:a_open].strip():
            return bad("text before <answer>")
        think = None
    if obj is None:
        return bad(obj_problem)
    return ContractParts(True, think, answer_text, obj, "")


def _check_contract_paper(text: str, key: str, *, require_think: bool) -> ContractParts:
    tags = (
        (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE) if require_think else (ANSWER_OPEN, ANSWER_CLOSE)
    )
    think = _last_between(text, THINK_OPEN, THINK_CLOSE)
    answer_text = _last_between(text, ANSWER_OPEN, ANSWER_CLOSE)
    for tag in tags:  # medcalc.py:55-76: each tag exactly once
        if text.count(tag) != 1:
            return ContractParts(False, think, answer_text, None, f"{tag} appears {text.count(tag)} times")
    if not require_think and (THINK_OPEN in text or THINK_CLOSE in text):
        return ContractParts(False, think, answer_text, None, "a think block is not expected in direct mode")
    positions = [text.find(t) for t in tags]
    if positions != sorted(positions):  # medcalc.py:78-82: tags in order
        return ContractParts(False, think, answer_text, None, "tags out of order")
    block = (answer_text or "").strip()
    if len(block) > MAX_JSON_CHARS:  # not in the paper's code: bounded work (MAX_JSON_CHARS)
        return ContractParts(False, think, answer_text, None, "answer block too long")
    try:  # medcalc.py:91-117: json.loads of the stripped block, an object with the key
        obj = json.loads(block)
    except (ValueError, RecursionError):
        return ContractParts(False, think, answer_text, None, "answer block is not valid JSON")
    if not isinstance(obj, dict) or key not in obj:
        return ContractParts(False, think, answer_text, None, f"answer JSON is not an object with {key!r}")
    return ContractParts(True, think if require_think else None, answer_text, obj, "")


def _last_between(text: str, open_tag: str, close_tag: str) -> str | None:
    end = text.rfind(close_tag)
    if end < 0:
        return None
    start = text.rfind(open_tag, 0, end)
    if start < 0:
        return None
    return text[start + len(open_tag) : end]


def _unfence(s: str) -> str:
    """The inside of a ```json fence around the whole (stripped) text, else the text. String methods, not a
    regular expression: `^```(?:json)?\\s*(.*?)\\s*```$` backtracks cubically on a fence followed by spaces
    (2 KB took 9 s)."""
    if len(s) < 6 or not (s.startswith("```") and s.endswith("```")):
        return s
    inner = s[3:-3]
    if inner.startswith(("json", "JSON")):
        inner = inner[4:]
    return inner.strip()


def parse_json_object(text: str, key: str) -> tuple[dict[str, Any] | None, str]:
    """Parse `text` as one JSON object holding `key`; returns (object, problem)."""
    s = _unfence(text.strip())
    if len(s) > MAX_JSON_CHARS:
        return None, f"answer block too long (over {MAX_JSON_CHARS:,} characters)"
    try:
        obj = json.loads(s)
    except (ValueError, RecursionError):  # JSONDecodeError, or an integer over the digit limit
        return None, "answer block is not valid JSON"
    if not isinstance(obj, dict):
        return None, "answer JSON is not an object"
    if key not in obj:
        return None, f"answer JSON has no {key!r} key"
    return obj, ""


def find_json_with_key(text: str, key: str) -> dict[str, Any] | None:
    """Lenient fallback: the last JSON object in `text` that has `key` (e.g. MedCalc-Bench's own
    `{"step_by_step_thinking": …, "answer": …}` output). Used for accuracy when the contract is broken.
    Bounded: the last 64 `{` are tried, each over at most `MAX_JSON_CHARS`, within a budget of characters
    read."""
    decoder = json.JSONDecoder()
    budget, pos = _JSON_SCAN_BUDGET, len(text)
    for _ in range(_MAX_JSON_STARTS):
        pos = text.rfind("{", 0, pos)
        if pos < 0 or budget <= 0:  # no more objects; or the earlier starts are not tried
            break
        window = text[pos : pos + MAX_JSON_CHARS]
        try:
            obj, end = decoder.raw_decode(window)
        except json.JSONDecodeError as e:
            budget -= e.pos
            continue
        except (ValueError, RecursionError):  # an integer over the digit limit; nesting too deep
            budget -= len(window)
            continue
        budget -= end
        if isinstance(obj, dict) and key in obj:
            return obj
    return None


# ---------------------------------------------------------------- numbers

_MINUS = {"\u2212": "-", "\u2012": "-", "\u2013": "-", "\ufe63": "-", "\uff0d": "-"}
_SUPERSCRIPT_RUN = re.compile(r"[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+")
_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
# "1.2 × 10^3", "1.2x10³", "1.2 * 10**-3", "10^3". The exponent needs its marker (^, **, superscript):
# "× 109/L" in a pasted note is ambiguous and is not read as 10^9.
_SCI = re.compile(
    r"(?<![\w.^/])(?:([-+]?\d+(?:\.\d+)?)\s*(?:[x×*]|\\times)\s*)?10\s*(?:\^|\*\*)\s*\{?\s*([-+]?\d+)\s*\}?"
)
_NUMBER = re.compile(
    r"(?<![\w.^/])"  # not glued to a word, a decimal point, an exponent caret or a unit slash (CHA2DS2, m^2)
    r"([-+]?(?:\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?)"
)
_RANGE_AFTER = re.compile(r"^\s*(?:-|to|–|—)\s*[-+]?\d")
_LIST_AFTER = re.compile(r"^\s*,\s*[-+]?\d")
# An arithmetic expression is not a value ("4*10", "4/2", "1 + 1 = 2", "round(4.4)"): reading its first
# number would score "4*10" as 4. Never evaluated, so it is wrong (docs/verifier.md).
_OPERATOR_AFTER = re.compile(r"^\s*(?:\*\*|[*/+×÷^=])\s*[-+(]?\s*\.?\d")
_CALL_BEFORE = re.compile(r"(?:[A-Za-z_]\w*\s*|[-+*/=(]\s*)\(\s*[-+]?$")


def normalize_text(s: str) -> str:
    """Unicode minus signs to '-', odd spaces to ' ', superscript exponents to '^n', full-width digits to ASCII."""
    for k, v in _MINUS.items():
        s = s.replace(k, v)
    s = s.replace("\u00a0", " ").replace("\u2009", " ").replace("\u202f", " ")
    # Before NFKC, which would fold "10³" into "103".
    s = _SUPERSCRIPT_RUN.sub(lambda m: "^" + m.group(0).translate(_SUPERSCRIPT), s)
    return unicodedata.normalize("NFKC", s)


MAX_ANSWER_CHARS = 1000
"""An answer value longer than this is wrong ("answer too long"), never parsed: no number or date needs it,
and it bounds the work a hostile completion can cause (a 1 MB completion verifies in well under a second)."""


def _finite(v: float) -> tuple[float | None, str]:
    return (v, "") if math.isfinite(v) else (None, "answer is not finite")


def parse_number(value: Any) -> tuple[float | None, str]:
    """Read one number from a JSON value; returns (number, problem).

    Accepts JSON numbers, and strings with units after the number ("8.1 mL/min/1.73 m²"), thousands
    separators ("1,200"), percent signs ("53.1%" → 53.1: the label's own unit), scientific notation
    ("1.2e3", "1.2 × 10³", "10^3"), unicode minus. The *first* standalone number is the answer. Rejected:
    booleans, NaN/inf, ranges ("10-12", "10 to 12"), lists and ambiguous commas ("3, 4, 5", "1,20"), and
    arithmetic expressions ("4*10", "4/2", "1 + 1 = 2", "round(4.4)"), which are never evaluated.
    """
    if isinstance(value, bool) or value is None:
        return None, "answer is not a number"
    if isinstance(value, (int, float)):
        try:
            return _finite(float(value))
        except OverflowError:
            return None, "answer is not finite"
    if isinstance(value, list) and len(value) == 1:
        return parse_number(value[0])
    if not isinstance(value, str):
        return None, "answer is not a number or a string"
    if len(value) > MAX_ANSWER_CHARS:
        return None, "answer too long for a number"
    s = normalize_text(value)
    num, sci = _NUMBER.search(s), _SCI.search(s)
    if num is None and sci is None:
        return None, "no number in answer"
    if sci is not None and (num is None or sci.start() <= num.start()):
        start, end = sci.span()
        try:
            e = int(sci.group(2))
            if abs(e) > 308:  # beyond float range; also keeps 10**huge from eating memory
                return None, "scientific notation out of range"
            v = float(sci.group(1) or 1.0) * 10.0**e
        except (ValueError, OverflowError):
            return None, "scientific notation out of range"
    else:
        assert num is not None
        start, end = num.span()
        try:
            v = float(num.group(1).replace(",", ""))
        except (ValueError, OverflowError):
            return None, "number out of range"
    rest = s[end:]
    if _OPERATOR_AFTER.match(rest) or _CALL_BEFORE.search(s[max(0, start - 40) : start]):
        return None, "answer is an arithmetic expression, not a value"
    if _LIST_AFTER.match(rest):
        return None, "answer is a list of numbers or has an ambiguous comma ('1,20')"
    if _RANGE_AFTER.match(rest):
        return None, "answer is a range, not a value"
    return _finite(v)


# ---------------------------------------------------------------- dates

_MONTHS = {
    name: i
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE_PATTERNS: list[tuple[re.Pattern[str], tuple[str, str, str]]] = [
    # ISO first: it is unambiguous.
    (re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)"), ("y", "m", "d")),
    # US numeric, the benchmark's own convention: MM/DD/YYYY (also M/D/YYYY and MM-DD-YYYY).
    (re.compile(r"(?<!\d)(\d{1,2})[/-](\d{1,2})[/-](\d{4})(?!\d)"), ("m", "d", "y")),
    # "September 23, 2014", "Sept. 23rd 2014"
    (
        re.compile(rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I),
        ("mon", "d", "y"),
    ),
    # "23 September 2014", "23rd of Sep, 2014"
    (
        re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_RE})\.?,?\s+(\d{{4}})\b", re.I),
        ("d", "mon", "y"),
    ),
]


def parse_date(value: Any) -> tuple[date | None, str]:
    """Read a calendar date: MM/DD/YYYY (the benchmark's convention), ISO YYYY-MM-DD, or a spelled-out
    month. An impossible date (13/45/2020) is rejected, never guessed as DD/MM."""
    if not isinstance(value, str):
        return None, "date answer is not a string"
    if len(value) > MAX_ANSWER_CHARS:
        return None, "answer too long for a date"
    s = normalize_text(value)
    for pattern, order in _DATE_PATTERNS:
        m = pattern.search(s)
        if not m:
            continue
        parts = dict(zip(order, m.groups(), strict=True))
        month = _MONTHS[parts["mon"].lower()] if "mon" in parts else int(parts["m"])
        try:
            return date(int(parts["y"]), month, int(parts["d"])), ""
        except ValueError:
            return None, f"not a valid date: {m.group(0)!r}"
    return None, "no date in answer"


def format_mdy(d: date) -> str:
    return d.strftime("%m/%d/%Y")


def strict_mdy(s: str) -> date:
    """Parse a gold MM/DD/YYYY date (raises ValueError)."""
    return datetime.strptime(s.strip(), "%m/%d/%Y").date()


# ---------------------------------------------------------------- weeks + days

_WD_LABELLED = re.compile(
    r"(\d+)\s*(?:weeks?|wks?|w)(?![a-z])[^\d]{0,20}?(\d+)\s*(?:days?|d)(?![a-z])",
    re.I,
)
_WD_PAIR = re.compile(r"^\(?\s*(\d+)\s*[,+]\s*(\d+)\s*\)?$")
_WD_WEEKS_ONLY = re.compile(r"^\(?\s*(\d+)\s*(?:weeks?|wks?|w)\s*\)?$", re.I)
_WD_DAYS_ONLY = re.compile(r"^\(?\s*(\d+)\s*days?\s*\)?$", re.I)
# One field of a pair ("4 weeks", "3"). Possessive quantifiers: with plain ones, "1" + 20,000 spaces + "x"
# took 1.3 s (the spaces split between the two `\s*` in every way; 1 MB would take hours).
_WD_FIELD = re.compile(r"\s*+(\d++)\s*+(?:weeks?|wks?|w|days?|d)?+\s*+$", re.I)


def _int_field(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and len(v) <= _MAX_WEEKS_DAYS_CHARS:  # bounded, and the pattern cannot backtrack
        m = _WD_FIELD.match(normalize_text(v))
        return int(m.group(1)) if m else None
    return None


_MAX_WEEKS_DAYS_CHARS = 200
"""Longer than any written gestational age ("(40 weeks, 6 days)" is 18 characters): not parsed."""


def parse_weeks_days(value: Any) -> tuple[tuple[int, int] | None, str]:
    """Read a gestational age as (weeks, days).

    Accepts [4, 3], ["4 weeks", "3 days"], {"weeks": 4, "days": 3}, "(4 weeks, 3 days)",
    "4 weeks and 3 days", "4w3d", "34+3", "(4, 3)", "4 weeks" (→ 4, 0) and "31 days" (→ 4, 3).
    """
    if isinstance(value, dict):
        lowered = {str(k).lower(): v for k, v in value.items()}
        w, d = _int_field(lowered.get("weeks")), _int_field(lowered.get("days"))
        return ((w, d), "") if w is not None and d is not None else (None, "expected weeks and days")
    if isinstance(value, (list, tuple)):
        if len(value) == 2:
            w, d = _int_field(value[0]), _int_field(value[1])
            if w is not None and d is not None:
                return (w, d), ""
        return None, "expected [weeks, days]"
    if not isinstance(value, str):
        return None, "gestational age is not text or a pair"
    if len(value) > _MAX_WEEKS_DAYS_CHARS:  # the patterns below search every start: bound the work
        return None, "answer too long for a gestational age"
    s = normalize_text(value).strip().replace("'", "").replace('"', "").replace("[", "(").replace("]", ")")
    for pattern in (_WD_LABELLED, _WD_PAIR):
        m = pattern.search(s)
        if m:
            return (int(m.group(1)), int(m.group(2))), ""
    m = _WD_WEEKS_ONLY.match(s)
    if m:
        return (int(m.group(1)), 0), ""
    m = _WD_DAYS_ONLY.match(s)
    if m:
        total = int(m.group(1))
        return (total // 7, total % 7), ""
    return None, "no weeks/days in answer"


# ---------------------------------------------------------------- Python literals in data files

MAX_LITERAL_CHARS = 1_000_000
"""Longest text `python_literal` parses (MedCalc-Bench's largest `Relevant Entities` is a few KB)."""


def python_literal(text: str, max_chars: int = MAX_LITERAL_CHARS) -> Any:
    """A Python literal written in a data file ("('4 weeks', '3 days')", "{'age': [60, 'years']}"): parsed
    with `ast.literal_eval` (nothing is executed) only when at most `max_chars` long; any failure, including
    memory and recursion exhaustion on hostile text, is a ValueError."""
    import ast

    if len(text) > max_chars:
        raise ValueError(f"longer than {max_chars:,} characters")
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        raise ValueError(f"not a Python literal ({type(e).__name__})") from None
