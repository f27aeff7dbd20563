"""Reasoning checks over an evaluation: a task's per-completion checks (`Task.check_reasoning`, e.g.
MedCalc's grounding and final-value checks in `tasks/medcalc/reasoning.py`) turned into rates in metrics.json
(`reasoning_checks`) and a section of report.md, beside the same checks on the benchmark's own explanations
of the evaluated items (the ceiling to compare with)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ehrmind.tasks.base import Task
from ehrmind.types import Example


def reference_completion(task: Task, example: Example) -> str | None:
    """The benchmark's own explanation in the output contract (None without an explanation)."""
    explanation = str(example.metadata.get("explanation") or "").strip()
    if not explanation or not task.can_score(example):
        return None
    answer = json.dumps({task.answer_key: task.gold_value(example)}, ensure_ascii=False)
    return f"<think>{explanation}</think>\n<answer>{answer}</answer>"


# ---------------------------------------------------------------- rates over an evaluation


def has_reasoning_checks(task: Task) -> bool:
    """Whether the task (or a task it extends) defines `check_reasoning`."""
    return type(task).check_reasoning is not Task.check_reasoning


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _rates(checks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    grounded = [c["numbers_in_note_rate"] for c in checks if c["numbers_in_note_rate"] is not None]
    finals = [c["final_value_matches_answer"] for c in checks if c["final_value_matches_answer"] is not None]
    n_values = sum(c["n_values"] for c in checks)
    return {
        "n_completions": len(checks),
        "n_with_reasoning": sum(bool(c["has_reasoning"]) for c in checks),
        "n_with_values": len(grounded),
        "numbers_in_note_rate": _mean(grounded),
        "numbers_in_note_pooled": (sum(c["n_in_note"] for c in checks) / n_values) if n_values else None,
        "n_final_checked": len(finals),
        "final_value_matches_answer_rate": _mean([float(f) for f in finals]),
    }


def summarize_reasoning_checks(
    task: Task, examples: Sequence[Example], rows: Sequence[dict[str, Any]]
) -> dict[str, Any] | None:
    """Rates over prediction rows, overall and by the task's first group field, plus the same checks on the
    benchmark's explanations of the evaluated items (`reference_*`); None for a task without checks."""
    if not has_reasoning_checks(task):
        return None
    by_id = {ex.id: ex for ex in examples}
    field = task.group_fields[0] if task.group_fields else "category"
    checks, groups = [], defaultdict(list)
    for r in rows:
        ex = by_id.get(str(r.get("id")))
        if ex is None:
            continue
        got = task.extract(str(r.get("completion") or ""))
        c = task.check_reasoning(ex, got)
        if c is None:
            continue
        checks.append(c)
        groups[str(r.get(field, ex.metadata.get(field, "")))].append(c)
    out = _rates(checks)
    refs = []
    for ex_id in dict.fromkeys(str(r.get("id")) for r in rows):
        ex = by_id.get(ex_id)
        completion = reference_completion(task, ex) if ex is not None else None
        c = task.check_reasoning(ex, task.extract(completion, prefixed=True)) if completion else None
        if c is not None:
            refs.append(c)
    ref = _rates(refs)
    out["reference_n_items"] = ref["n_completions"]
    out["reference_numbers_in_note_rate"] = ref["numbers_in_note_rate"]
    out["reference_final_value_matches_answer_rate"] = ref["final_value_matches_answer_rate"]
    out[f"by_{field}"] = {g: _rates(cs) for g, cs in sorted(groups.items())}
    return out


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def report_lines(block: dict[str, Any] | None) -> list[str]:
    """The report.md section for a `reasoning_checks` block."""
    if not block:
        return []
    return [
        "## Reasoning checks",
        "",
        f"Over {block['n_with_reasoning']} of {block['n_completions']} completions with a reasoning block: "
        f"values used by the reasoning found in the note **{_pct(block['numbers_in_note_rate'])}** "
        f"(benchmark explanations of the same items: {_pct(block['reference_numbers_in_note_rate'])}); "
        f"final value of the reasoning equals the answer **{_pct(block['final_value_matches_answer_rate'])}** "
        f"(n={block['n_final_checked']}; explanations: "
        f"{_pct(block['reference_final_value_matches_answer_rate'])}).",
        "",
        "*Used values*: numbers and dates the reasoning reads rather than computes (not after '=', not the final "
        "value); formula constants count as not found, so compare with the explanations' rate. See "
        "docs/diagnosis.md.",
    ]
