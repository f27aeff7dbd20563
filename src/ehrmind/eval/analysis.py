"""Why answers fail: the error analysis in every eval report (`metrics.json` → `errors`, `report.md`).

From the prediction rows alone: each wrong row's failure reason (the verifier's own reason with its values
masked, so "not a valid date: '13/45/2020'" and "… '02/30/2021'" count together; "wrong value" when an
answer was read but is wrong), each format problem, the truncation rate (completions the generator cut at
`max_new_tokens`, from its finish reason) and a few example completions per reason — the completion's end,
where the answer is; never the prompt or the patient note. The task adds what only it can judge
(`Task.error_analysis`: e.g. MedCalc's numeric error by output type).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

WRONG_VALUE = "wrong value"
"""A failure reason: an answer was read, and it is not the gold one."""
EXAMPLES_PER_REASON = 2
EXAMPLE_CHARS = 300
_QUOTED = re.compile(r"'[^']{0,200}'|\"[^\"]{0,200}\"")
_NUMBER = re.compile(r"-?\d\d+(?:[.,]\d+)*|-?\d[.,]\d+")


def mask(reason: str) -> str:
    """A reason with its values masked: quoted text → '…', numbers → N except single digits (the tag counts
    of "found 0 <answer> tag(s)" tell a missing block from a repeated one); at most 120 characters."""
    return _NUMBER.sub("N", _QUOTED.sub("'…'", reason))[:120]


def failure_reason(row: dict[str, Any]) -> str | None:
    """Why a row is wrong (None when it is correct): "wrong value", or the masked reason no answer was read."""
    if row.get("correct") is True:
        return None
    if row.get("correct") is None:
        return "gold answer cannot be scored"
    if row.get("parsed") is not None:
        return WRONG_VALUE
    reason = str(row.get("reason") or "no answer found")
    if reason.startswith("format: ") and "; " in reason:  # "format: <problem>; <why the value was unread>"
        reason = reason.split("; ", 1)[1]
    return mask(reason)


def format_problem(row: dict[str, Any]) -> str | None:
    """The masked output-contract problem of a row outside the format (None when in it)."""
    if row.get("format_ok") is not False:
        return None
    reason = str(row.get("reason") or "")
    if reason.startswith("format: "):
        return mask(reason[len("format: ") :].split("; ", 1)[0])
    return mask(reason) if row.get("parsed") is None else "format"


def _shares(counts: Counter[str], n: int) -> list[dict[str, Any]]:
    return [{"reason": r, "n": k, "share": k / n} for r, k in counts.most_common()]


def analyse(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Failure and format-problem counts with shares of all rows, truncation, example completions."""
    n = len(rows)
    if n == 0:
        return {"n": 0}
    failures: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    examples: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        why = failure_reason(r)
        if why is not None:
            failures[why] += 1
            if len(examples[why]) < EXAMPLES_PER_REASON:
                text = str(r.get("completion") or "")
                examples[why].append(
                    {"id": r.get("id"), "sample": r.get("sample"), "completion_end": text[-EXAMPLE_CHARS:]}
                )
        problem = format_problem(r)
        if problem is not None:
            problems[problem] += 1
    known = [r["finish_reason"] for r in rows if isinstance(r.get("finish_reason"), str)]
    return {
        "n": n,
        "n_wrong": sum(failures.values()),
        "failures": _shares(failures, n),
        "format_problems": _shares(problems, n),
        "truncation_rate": (sum(f == "length" for f in known) / len(known)) if known else None,
        "n_with_finish_reason": len(known),
        "examples": {k: examples[k] for k, _ in failures.most_common(5)},
    }


def report_lines(errors: dict[str, Any]) -> list[str]:
    """The "Why answers fail" section of report.md."""
    if not errors or not errors.get("n"):
        return []
    n = errors["n"]
    lines = ["## Why answers fail", ""]
    trunc = errors.get("truncation_rate")
    lines.append(
        f"Truncated (cut at max_new_tokens): **{100 * trunc:.1f}%** of {errors['n_with_finish_reason']} completions."
        if trunc is not None
        else "Truncation: unknown (the generator reported no finish reasons)."
    )
    lines += _reason_table("failure", errors["failures"], n) or _reason_table(
        "failure", [{"reason": "(none: every row correct)", "n": 0, "share": 0.0}], n
    )
    if errors.get("format_problems"):
        lines += _reason_table("format problem", errors["format_problems"], n)
    for kind, block in (errors.get("numeric_error") or {}).items():
        lines += ["", *_numeric_lines(kind, block)]
    by_type = errors.get("by_output_type")
    if by_type:
        lines += [
            "",
            "| output type | n | accuracy | wrong value | no answer read |",
            "|---|---:|---:|---:|---:|",
        ]
        for t, b in by_type.items():
            lines.append(
                f"| {t} | {b['n']} | {100 * b['accuracy']:.1f}% | {b['wrong_value']} | {b['unread']} |"
            )
    shown = errors.get("examples") or {}
    if shown:
        lines += [
            "",
            "Example completions (their last characters; prompts and notes are never copied here):",
            "",
        ]
        for reason, items in shown.items():
            for item in items:
                head = f"- *{reason}* — row `{item['id']}` sample {item['sample']}"
                body = [x for x in item["completion_end"].splitlines() if x.strip()]
                if not body:
                    lines.append(f"{head}: (only whitespace)")
                    continue
                lines += [f"{head}:", "", "  ~~~~text", *[f"  {x}" for x in body], "  ~~~~"]
    return lines


def _reason_table(what: str, items: Sequence[dict[str, Any]], n: int) -> list[str]:
    if not items:
        return []
    head = ["", f"| {what} (of {n} rows) | n | share |", "|---|---:|---:|"]
    return head + [f"| {f['reason']} | {f['n']} | {100 * f['share']:.1f}% |" for f in items]


def _numeric_lines(kind: str, block: dict[str, Any]) -> list[str]:
    lines = [
        f"**{kind}** over {block['n']} wrong answers that were read: median |error| {block['median_abs']:g}, "
        f"90th percentile {block['p90_abs']:g}."
    ]
    common = block.get("most_common")
    if common:
        lines.append("Most common: " + ", ".join(f"{v:+g} ({k}×)" for v, k in common) + ".")
    return lines


def error_summary(kind: str, errors: Sequence[float]) -> dict[str, Any]:
    """Summary of signed errors of one kind (relative error, off by, days off) for `numeric_error`."""
    import statistics

    absolute = sorted(abs(e) for e in errors)
    out: dict[str, Any] = {
        "n": len(errors),
        "median_abs": statistics.median(absolute),
        "p90_abs": absolute[min(len(absolute) - 1, int(0.9 * len(absolute)))],
    }
    if all(float(e).is_integer() for e in errors):
        out["most_common"] = [[e, k] for e, k in Counter(errors).most_common(5)]
    return out
