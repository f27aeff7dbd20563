"""What only MedCalc computes: MedCalc-Bench's own verdict, the reasoning checks, numeric errors by output
type, the label audit, and the EHRMind paper's MedCalc rules (attached as `MedCalcTask.analyses`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehrmind.metrics import WRONG_VALUE, error_summary, failure_reason
from ehrmind.tasks.analysis import Analysis, Headline, LabelAudit, PaperRules, paper_answer_json
from ehrmind.tasks.base import scorable
from ehrmind.tasks.medcalc.official import check_answer, official_verdict
from ehrmind.tasks.medcalc.sft_mix import paper_sft_counts
from ehrmind.types import Example

if TYPE_CHECKING:
    from ehrmind.tasks.base import Task

OFFICIAL_PARSED_CHARS = 100
"""`official_parsed` in a prediction row is cut to this length (a hostile answer can be megabytes)."""


OFFICIAL_ACCURACY = Headline(
    "MedCalc-Bench official accuracy", "official_accuracy", "official_accuracy_ci95", percent=True
)
"""MedCalc-Bench's own number: what to set beside a published MedCalc-Bench accuracy."""
EHRMIND_ACCURACY = Headline(
    "ehrmind-extraction accuracy",
    "accuracy",
    "ci95",
    percent=True,
    count="n_official_disagree",
    count_text="rows where the two verdicts differ",
)
"""`accuracy` in metrics.json: ehrmind's own extraction (`MedCalcTask.verify`; `strict_accuracy` and the
`strict` reward use it) with the benchmark's tolerance rules; not comparable with published numbers (docs/verifier.md lists each departure)."""


class OfficialVerdict(Analysis):
    """`official_correct`: the verdict of MedCalc-Bench's own `extract_answer` + `check_correctness`
    (re-implemented without eval, `official.py`) beside `correct`; `official_accuracy` in the metrics.

    It leads (`Analysis.leads`) and is the main metric: the CLI prints the official accuracy first and ehrmind's
    extraction (`accuracy` in metrics.json) second, under its own name; `ehrmind matrix` compares models on it."""

    name = "official"
    verdict = True
    leads = True
    headline = (OFFICIAL_ACCURACY, EHRMIND_ACCURACY)
    main = OFFICIAL_ACCURACY

    def row(self, task: Task, example: Example, completion: str) -> dict[str, Any]:
        """`official_parsed` is what that extraction read (at most `OFFICIAL_PARSED_CHARS` characters); both
        None when the gold cannot be scored."""
        if not scorable(task, example):
            return {"official_correct": None, "official_parsed": None}
        v = official_verdict(completion or "", example.target, example.metadata.get("calculator_id"))
        parsed = v.answer if v.answer is None else v.answer[:OFFICIAL_PARSED_CHARS]
        return {"official_correct": v.correct, "official_parsed": parsed}

    def report(self, metrics: Mapping[str, Any]) -> list[str]:
        official, ehrmind = OFFICIAL_ACCURACY.read(metrics)[0], EHRMIND_ACCURACY.read(metrics)[0]
        return [
            f"**Official accuracy (MedCalc-Bench rules): {OFFICIAL_ACCURACY.show(official)}** — the number to "
            "set beside published MedCalc-Bench results: MedCalc-Bench's own answer extraction and check "
            "(`evaluation/run.py` `extract_answer`, `evaluation/evaluate.py` `check_correctness`), "
            "re-implemented without executing text (column *official accuracy*). "
            f"*accuracy* in this report ({EHRMIND_ACCURACY.show(ehrmind)}) is **ehrmind's extraction**, with "
            "the benchmark's tolerance rules but its own reading of the answer (JSON, units, thousands "
            "separators, ISO dates, pretty-printed JSON; every departure in docs/verifier.md): what "
            "`strict accuracy` and the `strict` reward use, not comparable with published numbers."
        ]


class ReasoningChecks(Analysis):
    """Is the reasoning grounded in the note, and does it end at the answer (`reasoning.py`): rates over an
    evaluation, overall and by category, beside the same checks on the benchmark's own explanations of the
    evaluated items (the ceiling to compare with)."""

    name = "reasoning_checks"
    headline = (
        Headline("values in note", "reasoning_checks.numbers_in_note_rate", percent=True),
        Headline("final value = answer", "reasoning_checks.final_value_matches_answer_rate", percent=True),
    )

    def summarize(
        self, task: Task, examples: Mapping[str, Example], rows: Sequence[dict[str, Any]]
    ) -> dict[str, Any] | None:
        from ehrmind.tasks.medcalc.reasoning import check_medcalc_reasoning

        if not examples:
            return None
        field = task.groups.by[0]
        checks, groups = [], defaultdict(list)
        for r in rows:
            ex = examples.get(str(r.get("id")))
            if ex is None:
                continue
            got = task.contract.read(str(r.get("completion") or "")).strict
            c = check_medcalc_reasoning(ex, got.think, got.answer)
            checks.append(c)
            groups[str(r.get(field, ex.metadata.get(field, "")))].append(c)
        out = _rates(checks)
        refs = []
        for ex_id in dict.fromkeys(str(r.get("id")) for r in rows):
            ex = examples.get(ex_id)
            explanation = str(ex.metadata.get("explanation") or "").strip() if ex is not None else ""
            if ex is None or not explanation or not scorable(task, ex):
                continue
            whole = task.contract.whole(task.gold_value(ex), explanation)  # the benchmark's own explanation
            got = task.contract.read(whole, prefixed=True).strict
            refs.append(check_medcalc_reasoning(ex, got.think, got.answer))
        ref = _rates(refs)
        out["reference_n_items"] = ref["n_completions"]
        out["reference_numbers_in_note_rate"] = ref["numbers_in_note_rate"]
        out["reference_final_value_matches_answer_rate"] = ref["final_value_matches_answer_rate"]
        out[f"by_{field}"] = {g: _rates(cs) for g, cs in sorted(groups.items())}
        return out

    def report(self, metrics: Mapping[str, Any]) -> list[str]:
        block = metrics.get(self.name)
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
            "*Used values*: numbers and dates the reasoning reads rather than computes (not after '=', not the "
            "final value); formula constants count as not found, so compare with the explanations' rate. See "
            "docs/diagnosis.md.",
        ]


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


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


class OutputTypes(Analysis):
    """Accuracy by output type, and how far wrong answers that were read are: relative error for decimals,
    off by for integers (after the official rounding), days off for dates and gestational ages."""

    name = "output_types"

    def summarize(
        self, task: Task, examples: Mapping[str, Example], rows: Sequence[dict[str, Any]]
    ) -> dict[str, Any] | None:
        if not examples or not rows:
            return None
        by_type: dict[str, dict[str, Any]] = {}
        errors: dict[str, list[float]] = {}
        for r in rows:
            ex = examples.get(str(r.get("id")))
            if ex is None or r.get("correct") is None:
                continue
            kind = str(ex.target.get("output_type"))
            b = by_type.setdefault(kind, {"n": 0, "correct": 0, "wrong_value": 0, "unread": 0})
            b["n"] += 1
            why = failure_reason(r)
            if why is None:
                b["correct"] += 1
            elif why != WRONG_VALUE:
                b["unread"] += 1
            else:
                b["wrong_value"] += 1
                got = _numeric_error(kind, r.get("parsed"), ex.target)
                if got is not None:
                    errors.setdefault(got[0], []).append(got[1])
        for b in by_type.values():
            b["accuracy"] = b.pop("correct") / b["n"]
        return {
            "by_output_type": dict(sorted(by_type.items())),
            "numeric_error": {k: error_summary(k, v) for k, v in sorted(errors.items())},
        }

    def report(self, metrics: Mapping[str, Any]) -> list[str]:
        block = metrics.get(self.name) or {}
        lines: list[str] = []
        for kind, b in (block.get("numeric_error") or {}).items():
            lines += [*([""] if lines else []), *_numeric_lines(kind, b)]
        by_type = block.get("by_output_type")
        if by_type:
            lines += [
                *([""] if lines else []),
                "| output type | n | accuracy | wrong value | no answer read |",
                "|---|---:|---:|---:|---:|",
            ]
            for t, b in by_type.items():
                lines.append(
                    f"| {t} | {b['n']} | {100 * b['accuracy']:.1f}% | {b['wrong_value']} | {b['unread']} |"
                )
        return ["## Errors by output type", "", *lines] if lines else []


def _numeric_error(kind: str, got: Any, t: dict[str, Any]) -> tuple[str, float] | None:
    """(kind of error, signed error) of a wrong answer that was read; None when it cannot be computed."""
    try:
        if kind == "decimal":
            gold = float(t["value"])
            return (
                ("relative error", (float(got) - gold) / abs(gold))
                if gold
                else ("absolute error", float(got))
            )
        if kind == "integer":
            return "off by", float(round(float(got)) - int(t["value"]))
        if kind == "date":
            d = datetime.strptime(str(got), "%m/%d/%Y") - datetime.strptime(t["answer"], "%m/%d/%Y")
            return "days off (date)", float(d.days)
        w, dd = got
        gw, gd = t["value"]
        return "days off (gestational age)", float((7 * w + dd) - (7 * gw + gd))
    except (TypeError, ValueError, KeyError, OverflowError):
        return None


def _numeric_lines(kind: str, block: dict[str, Any]) -> list[str]:
    lines = [
        f"**{kind}** over {block['n']} wrong answers that were read: median |error| {block['median_abs']:g}, "
        f"90th percentile {block['p90_abs']:g}."
    ]
    common = block.get("most_common")
    if common:
        lines.append("Most common: " + ", ".join(f"{v:+g} ({k}×)" for v, k in common) + ".")
    return lines


class Audit(LabelAudit):
    """MedCalc-Bench's labels recomputed by the calculator knowledge base (`audit.py`)."""

    name = "label_audit"

    def audit(self, data: str | Path, out_dir: str | Path, corrected: str | Path | None = None) -> list[Path]:
        from ehrmind.tasks.medcalc.audit import run_audit

        run_audit(data, out_dir, corrected=corrected)
        return [Path(out_dir) / "audit.csv", Path(out_dir) / "summary.md"]


class Paper(PaperRules):
    """The EHRMind paper's MedCalc rules."""

    name = "paper_rules"

    def reliable_m(self, example: Example) -> int | None:
        """`src/eval/medcalc/analysis/cal_analysis.py:62, 95-98` (linjc16/EHRMind@3bdde9f): diagnosis and
        severity m = 7, risk m = 21."""
        return {"diagnosis": 7, "severity": 7, "risk": 21}.get(str(example.metadata.get("category")))

    def sft_counts(self, category_sizes: dict[str, int], fraction: float) -> dict[str, int] | None:
        return paper_sft_counts(category_sizes, fraction)

    def reading(self, task: Task, example: Example, completion: str) -> tuple[str | None, bool] | None:
        """`cal_analysis.py:62-98` (linjc16/EHRMind@3bdde9f), answer by `extract_answer_json` (12-27): on the
        diagnosis, severity and risk items `str(answer.get("answer", None))` counted in the entropy ("None"
        included) and correct when equal to the label as written (`answer == item['target']`, line 88); on the
        others `check_correctness(str(answer.get("answer", "")))` (62-78), no entropy. Where its `try` catches
        an exception (`int("4.5")` in the fallback), the sample is skipped: not counted, not correct."""
        try:
            found = paper_answer_json(completion, "answer")
        except ValueError:
            return None, False
        if self.reliable_m(example) is None:
            answer = str(found.get("answer", ""))
            return answer, check_answer(answer, example.target, example.metadata.get("calculator_id"))
        answer = str(found.get("answer", None))
        return answer, answer == str(example.target.get("answer"))
