"""MedCalc's reasoning checks: is the reasoning grounded in the note, and does it end where the answer is?

"Interpretable" is measured, not claimed: two checks per completion (`check_medcalc_reasoning`, reached
through the `ReasoningChecks` analysis), turned into rates in metrics.json (`reasoning_checks`) and a line in
report.md by `ehrmind.eval.reasoning_checks`:

*numbers_in_note_rate* — of the distinct values the reasoning **uses**, the share found in the input (note
and question).
  - Values are numbers and numeric dates in the `<think>` block, read after `parsing.normalize_text`
    (unicode minus, superscripts, full-width digits). A number is "87", "87.0", "1,200", ".5"; one glued to a
    word or following a '.' or '^' is not a value ("CHA2DS2", "m^2", the "9" of "10^9"). Signs are ignored:
    in running text a minus is as often a subtraction as a sign. Dates are MM/DD/YYYY or YYYY-MM-DD.
  - *Used* means read, not computed: a value that ends a computation — right after "=", "≈", "≅" or "→"
    and not followed by an operator (the 87 of "= 87 / 1.75^2" is read, the 28.41 of "= 28.41." computed) —
    is a result anywhere in the reasoning, as are the final value and the answer; enumeration markers at
    the start of a line ("1. ", "2) ") are not values.
  - *Found* means the same value among the input's numbers (87 = 87.0 = 87.00; 1,200 = 1200) or dates.
  - Formula constants (the 140 of Cockcroft–Gault, 60 s per minute) are not in the note and count as not
    found, so 100% is not the target: the same check on the benchmark's own explanations for the same items
    (`reference_numbers_in_note_rate`) is the ceiling to compare with.

*final_value_matches_answer* — the value computed at the end of the reasoning equals the value in the
answer: the last number of the reasoning (last date for date calculators, last "W weeks … D days" for
gestational age) against the parsed answer. Numbers are equal within half a unit in the last decimal place
of the less precise of the two (28.40816 ~ 28.41 ~ 28.408; 28.4 !~ 28.5), signs ignored. A reasoning that
states no value does not match. Not checked (None) without a `<think>` block or without a readable answer.

Nothing here executes model text: regular expressions and `float` only.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from ehrmind.parsing import normalize_text, parse_date, parse_number, parse_weeks_days
from ehrmind.types import Example

_DATE = re.compile(r"(?<!\d)(?:\d{1,2}([/-])\d{1,2}\1\d{4}|\d{4}-\d{1,2}-\d{1,2})(?!\d)")
# "(?<![A-Za-zµ]/)": the 1.73 of "mL/min/1.73 m²" is part of a unit; "60/113" is a division.
_NUMBER = re.compile(r"(?<![\w.^])(?<![A-Za-zµ]/)(\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)")
_ENUMERATION = re.compile(r"^[ \t]*\d{1,2}[.)](?=\s)", re.M)
_RESULT_MARKERS = ("=", "≈", "≅", "→")
# After a value: an optional unit ("kg", "mL/min/", "%") and then an operator: the value is an operand.
_OPERAND_AFTER = re.compile(r"^\s*(?:[A-Za-zµ%/.^²³]++\s*)?[-+*/×÷^]")
_WEEKS_DAYS = re.compile(r"(\d+)\s*(?:weeks?|wks?)\b[^\d]{0,20}?(\d+)\s*days?\b", re.I)
_WEEKS_OR_DAYS = re.compile(r"(\d+)\s*(weeks?|wks?|days?)\b", re.I)


# ---------------------------------------------------------------- tokens


def _decimals(raw: str) -> int:
    return len(raw.split(".", 1)[1]) if "." in raw else 0


def value_tokens(text: str) -> list[dict[str, Any]]:
    """Numbers and dates in `text`, in order: {kind: "number"|"date", value, raw, result}.

    `value` is the absolute float of a number or a `datetime.date`; `result` says the token ends a
    computation: it follows a result marker ("=", "≈", "≅", "→") and no operator follows it (the 87 of
    "= 87 / 1.75^2" is an operand, the 28.41 of "= 28.41 kg/m^2." a result)."""
    s = normalize_text(text)
    tokens: list[tuple[int, dict[str, Any]]] = []
    masked = list(s)
    for m in _DATE.finditer(s):
        d, _ = parse_date(m.group(0))
        if d is not None:
            tokens.append((m.start(), {"kind": "date", "value": d, "raw": m.group(0)}))
        masked[m.start() : m.end()] = " " * (m.end() - m.start())
    for m in _ENUMERATION.finditer(s):
        masked[m.start() : m.end()] = " " * (m.end() - m.start())
    plain = "".join(masked)
    for m in _NUMBER.finditer(plain):
        raw = m.group(1)
        try:
            value = abs(float(raw.replace(",", "")))
        except (ValueError, OverflowError):  # pragma: no cover - the pattern only matches numerals
            continue
        tokens.append((m.start(), {"kind": "number", "value": value, "raw": raw}))
    tokens.sort(key=lambda t: t[0])
    out = []
    for start, tok in tokens:
        before = s[:start].rstrip()
        if before.endswith(("-", "+")):  # a sign: "= -0.241"
            before = before[:-1].rstrip()
        after = s[start + len(tok["raw"]) :]
        tok["result"] = before.endswith(_RESULT_MARKERS) and not _OPERAND_AFTER.match(after)
        out.append(tok)
    return out


def _key(tok: dict[str, Any]) -> tuple[str, Any]:
    return tok["kind"], tok["value"]


# ---------------------------------------------------------------- one completion


def _answer_value(example: Example, obj: dict[str, Any] | None, key: str) -> tuple[str, Any, int] | None:
    """(kind, value, decimals) of the answer, or None when it cannot be read."""
    if obj is None:
        return None
    kind = example.target.get("output_type")
    raw = obj.get(key)
    if kind == "date":
        d, _ = parse_date(raw)
        return None if d is None else ("date", d, 0)
    if kind == "gestational_age":
        wd, _ = parse_weeks_days(raw)
        return None if wd is None else ("weeks_days", tuple(wd), 0)
    number, _ = parse_number(raw)
    if number is None:
        return None
    text = repr(abs(number))
    decimals = 6 if "e" in text else (0 if text.endswith(".0") else _decimals(text))
    return "number", abs(number), decimals


def _final_value(kind: str, think: str, tokens: list[dict[str, Any]]) -> tuple[Any, int, str] | None:
    """(value, decimals, as written) of the last value of the reasoning in the answer's kind."""
    if kind == "weeks_days":  # the last "W weeks … D days", or a last "W weeks" / "D days" on its own
        text = normalize_text(think)
        pairs = [
            (m.start(), m.end(), (int(m.group(1)), int(m.group(2))), m.group(0))
            for m in _WEEKS_DAYS.finditer(text)
        ]
        singles = [
            (m.start(), m.end(), _one_unit(int(m.group(1)), m.group(2)), m.group(0))
            for m in _WEEKS_OR_DAYS.finditer(text)
            if not any(a <= m.start() < b for a, b, _, _ in pairs)
        ]
        found = max(pairs + singles, key=lambda x: x[0], default=None)
        return None if found is None else (found[2], 0, found[3])
    wanted = "date" if kind == "date" else "number"
    last = next((t for t in reversed(tokens) if t["kind"] == wanted), None)
    if last is None:
        return None
    return last["value"], _decimals(last["raw"]) if wanted == "number" else 0, last["raw"]


def _one_unit(n: int, unit: str) -> tuple[int, int]:
    return (n, 0) if unit.lower().startswith("w") else divmod(n, 7)


def _same(kind: str, a: Any, a_dec: int, b: Any, b_dec: int) -> bool:
    if kind != "number":
        return a == b
    tol = 0.5 * 10.0 ** -min(a_dec, b_dec) + 1e-9 * max(1.0, abs(a))
    return abs(a - b) <= tol


def check_medcalc_reasoning(
    example: Example, think: str | None, answer: dict[str, Any] | None
) -> dict[str, Any]:
    """The two checks on one completion, from what the contract read of it (`task.contract.read`): its `<think>` text and its
    answer object (see the module docstring for the rules).

    Returns has_reasoning, n_values, n_in_note, numbers_in_note_rate (None when the reasoning uses no value),
    final_value (as written), answer_value and final_value_matches_answer (None when not checkable)."""
    out: dict[str, Any] = {
        "has_reasoning": think is not None,
        "n_values": 0,
        "n_in_note": 0,
        "numbers_in_note_rate": None,
        "final_value": None,
        "answer_value": None,
        "final_value_matches_answer": None,
    }
    if think is None:
        return out
    value_of = _answer_value(example, answer, "answer")
    tokens = value_tokens(think)
    final = _final_value(value_of[0], think, tokens) if value_of else None
    # values the reasoning computed: results, the final value and the answer
    computed = {_key(t) for t in tokens if t["result"]}
    if value_of is not None:
        kind, value = value_of[0], value_of[1]
        out["answer_value"] = (
            value.strftime("%m/%d/%Y")
            if isinstance(value, date)
            else list(value)
            if kind == "weeks_days"
            else value
        )
        out["final_value"] = final[2] if final else None
        out["final_value_matches_answer"] = bool(
            final and _same(kind, final[0], final[1], value, value_of[2])
        )
        for v in [value] + ([final[0]] if final else []):
            if kind == "weeks_days":
                computed.update(("number", float(x)) for x in v)
            else:
                computed.add((kind, v))
    used = {_key(t) for t in tokens} - computed
    source = {
        _key(t) for t in value_tokens(f"{example.input.get('note', '')}\n{example.input.get('question', '')}")
    }
    found = used & source
    out["n_values"], out["n_in_note"] = len(used), len(found)
    out["numbers_in_note_rate"] = len(found) / len(used) if used else None
    return out
