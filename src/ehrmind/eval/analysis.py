"""Why answers fail: the error analysis in every eval report (`metrics.json` → `errors`, `report.md`).

From the prediction rows alone: each wrong row's failure reason (the verifier's own reason with its values
masked, so "not a valid date: '13/45/2020'" and "… '02/30/2021'" count together; "wrong value" when an
answer was read but is wrong), each format problem, the truncation rate (completions the generator cut at
`max_new_tokens`, from its finish reason) and a few example completions per reason — the completion's end,
where the answer is; never the prompt or the patient note. The task adds what only it can judge
(its analyses: e.g. MedCalc's numeric error by output type, `tasks/medcalc/analyses.py`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from ehrmind.metrics import failure_reason as failure_reason
from ehrmind.metrics import mask

EXAMPLES_PER_REASON = 2
EXAMPLE_CHARS = 300


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
