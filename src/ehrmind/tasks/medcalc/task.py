"""The `medcalc` task: MedCalc-Bench rows → Examples, prompts, and the official correctness rules."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from ehrmind.errors import ConfigError, DataError, excerpt
from ehrmind.parsing import format_mdy, parse_date, parse_number, parse_weeks_days, python_literal, strict_mdy
from ehrmind.registry import register_task
from ehrmind.tasks.base import PromptMode, Task, TaskOptions
from ehrmind.tasks.medcalc.official import check_answer, official_verdict
from ehrmind.tasks.medcalc.prompts import (
    DIRECT_SYSTEM,
    REASONING_SYSTEM,
    USER_TEMPLATE,
    OneShotExemplar,
    load_official_one_shot,
)
from ehrmind.tasks.medcalc.schema import CATEGORY_ALIASES, OUTPUT_TYPES, REQUIRED_COLUMNS, output_type_for
from ehrmind.tasks.medcalc.sft_mix import paper_sft_counts
from ehrmind.types import Example, Extraction, RewardWeights

OFFICIAL_PARSED_CHARS = 100
"""`official_parsed` in a prediction row is cut to this length (a hostile answer can be megabytes)."""
HUB_DATASETS = ("ncbi/MedCalc-Bench-v1.0", "ncbi/MedCalc-Bench-v1.2", "nsk7153/MedCalc-Bench-Verified")


def _text(row: dict[str, Any], col: str) -> str:
    v = row.get(col)
    return "" if v is None else str(v).strip()


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _float(s: str) -> float:
    v = float(s)
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError("not finite")
    return v


def parse_gold(output_type: str, answer: str, lower: str, upper: str) -> dict[str, Any]:
    """The typed gold target of one row; raises ValueError (with the field name) if it cannot be read."""
    if output_type == "date":
        try:
            return {"output_type": "date", "answer": format_mdy(strict_mdy(answer))}
        except ValueError:
            raise ValueError("Ground Truth Answer: expected a date MM/DD/YYYY") from None
    if output_type == "gestational_age":
        try:
            literal = python_literal(answer, 200)  # "('0 weeks', '6 days')": a Python literal only
        except ValueError:
            literal = answer
        wd, _ = parse_weeks_days(literal)
        if wd is None:
            raise ValueError("Ground Truth Answer: expected ('W weeks', 'D days')")
        return {"output_type": "gestational_age", "answer": answer, "value": list(wd)}
    try:
        value = _float(answer)
    except ValueError:
        raise ValueError(f"Ground Truth Answer: expected a number for output type {output_type}") from None
    if output_type == "integer":
        if not value.is_integer():
            raise ValueError("Ground Truth Answer: expected a whole number for an integer calculator")
        return {"output_type": "integer", "answer": answer, "value": int(value)}
    try:
        lo, hi = _float(lower), _float(upper)
    except ValueError:
        raise ValueError("Lower Limit/Upper Limit: expected numbers for a decimal calculator") from None
    lo, hi = min(lo, hi), max(lo, hi)  # a negative label comes with its limits swapped in some releases
    return {"output_type": "decimal", "answer": answer, "value": value, "lower": lo, "upper": hi}


class MedCalcOptions(TaskOptions):
    one_shot_file: str | Path | None = Field(
        None,
        description="Mode one-shot only: MedCalc-Bench's one_shot_finalized_explanation.json, or a table of one "
        "row per calculator in the dataset's columns (e.g. MedCalc-Bench-Verified's one_shot_data.csv).",
    )


@register_task("medcalc")
class MedCalcTask(Task):
    """MedCalc-Bench (Khandekar et al., NeurIPS 2024 Datasets & Benchmarks): compute a value from a note."""

    version = "1"
    answer_key = "answer"
    group_fields = ("category", "calculator_name")
    plan_fields = ("category", "calculator_name")
    split_fields = ("note_id",)
    rationale_evidence = (
        "the values in the patient note and the calculator's rule, step by step, with the arithmetic"
    )
    modes = ("reasoning", "direct", "one-shot")
    Options = MedCalcOptions
    extra_verdicts = ("official",)
    """`official_correct`: MedCalc-Bench's own extraction and check (`official.py`), beside `correct`."""

    def __init__(
        self,
        mode: PromptMode = "reasoning",
        prefill: bool | str = False,
        system_prompt: str | None = None,
        reward_weights: RewardWeights | dict[str, float] | None = None,
        one_shot_file: str | Path | None = None,
    ):
        """`one_shot_file` (mode `one-shot` only): MedCalc-Bench's official exemplar JSON
        (`one_shot_finalized_explanation.json`), or a table of one row per calculator in the dataset's columns
        (e.g. MedCalc-Bench-Verified's `one_shot_data.csv`; its Ground Truth Explanation is the reasoning)."""
        super().__init__(
            mode=mode, prefill=prefill, system_prompt=system_prompt, reward_weights=reward_weights
        )
        if mode == "one-shot" and not one_shot_file:
            raise ConfigError(
                "prompt mode 'one-shot' needs exemplars: give --one-shot-file PATH (or --task-option "
                "one_shot_file=PATH), e.g. MedCalc-Bench's one_shot_finalized_explanation.json"
            )
        if one_shot_file and mode != "one-shot":
            raise ConfigError(f"one_shot_file only applies to mode 'one-shot', not {mode!r}")
        self.one_shot_file = str(one_shot_file) if one_shot_file else None
        self.exemplars: dict[int, OneShotExemplar] = (
            self._load_exemplars(Path(one_shot_file)) if one_shot_file else {}
        )

    def _load_exemplars(self, path: Path) -> dict[int, OneShotExemplar]:
        if path.suffix.lower() == ".json":
            return load_official_one_shot(path)
        if not path.is_file():
            raise DataError("one-shot exemplar file not found", file=path)
        out: dict[int, OneShotExemplar] = {}
        for ex in MedCalcTask().load(path):  # dataset-row form: one row per calculator
            calc_id = int(ex.metadata["calculator_id"])
            reasoning = str(ex.metadata.get("explanation") or "").strip()
            if not reasoning:
                raise DataError("empty", file=path, row=ex.id, field="Ground Truth Explanation")
            out[calc_id] = OneShotExemplar(
                calc_id, ex.input["note"], reasoning, self.gold_value(ex), ex.input["question"]
            )
        return out

    def records_to_examples(
        self, rows: Iterable[tuple[int, dict[str, Any]]], source: str | Path
    ) -> Iterator[Example]:
        seen: set[str] = set()
        for row_no, row in rows:
            missing = [c for c in REQUIRED_COLUMNS if c not in row]
            if missing:
                raise DataError(
                    f"missing column(s): {', '.join(missing)}", file=source, row=row_no, field=missing[0]
                )
            ex = self._row_to_example(row, row_no, source)
            if ex.id in seen:
                raise DataError(f"duplicate Row Number {ex.id}", file=source, row=row_no, field="Row Number")
            seen.add(ex.id)
            yield ex

    def _row_to_example(self, row: dict[str, Any], row_no: int, source: str | Path) -> Example:
        def fail(field: str, msg: str) -> DataError:
            return DataError(msg, file=source, row=row_no, field=field)

        for col, value in row.items():  # JSONL/Parquet can hold lists where text belongs: never str() them
            if isinstance(value, (list, dict, tuple)):
                raise fail(str(col), f"expected text or a number, got a {type(value).__name__}")
        row_id = _text(row, "Row Number")
        if not row_id:
            raise fail("Row Number", "empty")
        row_id = row_id[:-2] if row_id.endswith(".0") else row_id  # Parquet/Hub may store it as float
        try:
            calc_id = int(float(_text(row, "Calculator ID")))
        except ValueError:
            raise fail(
                "Calculator ID", f"expected an integer, got {excerpt(_text(row, 'Calculator ID'))}"
            ) from None
        raw_category = _text(row, "Category").lower()
        if raw_category not in CATEGORY_ALIASES:
            raise fail(
                "Category",
                f"unknown category {excerpt(raw_category)}; known: {', '.join(sorted(CATEGORY_ALIASES))}",
            )
        output_type = output_type_for(calc_id, _text(row, "Output Type"))
        if output_type is None:
            raise fail("Output Type", f"unknown output type {excerpt(_text(row, 'Output Type'))}")
        note, question = _text(row, "Patient Note"), _text(row, "Question")
        if not note:
            raise fail("Patient Note", "empty")
        if not question:
            raise fail("Question", "empty")
        try:
            target = parse_gold(
                output_type,
                _text(row, "Ground Truth Answer"),
                _text(row, "Lower Limit"),
                _text(row, "Upper Limit"),
            )
        except ValueError as e:
            field, _, msg = str(e).partition(": ")
            raise fail(field, f"{msg} (got {excerpt(_text(row, 'Ground Truth Answer'))})") from None
        entities_text = _text(row, "Relevant Entities")
        entities: Any = {}
        if entities_text:
            try:
                entities = python_literal(entities_text)  # a Python literal (single quotes, True/False)
            except ValueError as e:
                raise fail("Relevant Entities", str(e)) from None
        return Example(
            id=row_id,
            task=self.name,
            input={"note": note, "question": question},
            target=target,
            metadata={
                "category": CATEGORY_ALIASES[raw_category],
                "calculator_id": calc_id,
                "calculator_name": _text(row, "Calculator Name"),
                "note_id": _text(row, "Note ID"),
                "note_type": _text(row, "Note Type"),
                "relevant_entities": entities,
                "explanation": _text(row, "Ground Truth Explanation"),
            },
        )

    # ------------------------------------------------------------------ prompting
    def instructions(self) -> str:
        return DIRECT_SYSTEM if self.mode == "direct" else REASONING_SYSTEM

    def user_prompt(self, example: Example) -> str:
        return USER_TEMPLATE.format(note=example.input["note"], question=example.input["question"])

    def render(self, example: Example) -> list[dict[str, str]]:
        """One-shot mode: the calculator's exemplar as a previous user/assistant turn (its answer in our output
        contract), then the row; verified as in reasoning mode."""
        messages = super().render(example)
        if self.mode != "one-shot":
            return messages
        calc_id = example.metadata.get("calculator_id")
        shot = self.exemplars.get(calc_id) if isinstance(calc_id, int) else None
        if shot is None:
            raise ConfigError(
                f"no one-shot exemplar for calculator id {calc_id} (row {example.id}) in {self.one_shot_file}; "
                f"it has ids {', '.join(str(i) for i in sorted(self.exemplars))}"
            )
        question = shot.question or example.input["question"]
        turn = [
            {"role": "user", "content": USER_TEMPLATE.format(note=shot.note, question=question)},
            {"role": "assistant", "content": shot.assistant_turn(self.answer_key)},
        ]
        return [messages[0], *turn, *messages[1:]]

    # ------------------------------------------------------------------ scoring
    def gold_value(self, example: Example) -> Any:
        t = example.target
        if t["output_type"] == "date":
            return t["answer"]
        if t["output_type"] == "gestational_age":
            w, d = t["value"]
            return [f"{w} weeks", f"{d} days"]
        return t["value"]

    def audit(self, data: str | Path, out_dir: str | Path, corrected: str | Path | None = None) -> list[Path]:
        """MedCalc-Bench's labels recomputed by the calculator knowledge base (`audit.py`)."""
        from ehrmind.tasks.medcalc.audit import run_audit

        run_audit(data, out_dir, corrected=corrected)
        return [Path(out_dir) / "audit.csv", Path(out_dir) / "summary.md"]

    def subgroup_names(self, example: Example) -> set[str]:
        """A calculator answers to its name and its MedCalc-Bench id."""
        m = example.metadata
        return {str(m[k]) for k in ("calculator_name", "calculator_id") if m.get(k) not in (None, "")}

    def check_reasoning(self, example: Example, extraction: Extraction) -> dict[str, Any]:
        """Is the reasoning grounded in the note, and does it end at the answer (`medcalc/reasoning.py`)."""
        from ehrmind.tasks.medcalc.reasoning import check_medcalc_reasoning

        return check_medcalc_reasoning(example, extraction.think, extraction.answer)

    def can_score(self, example: Example) -> bool:
        t = example.target
        needed = {
            "date": ("answer",),
            "gestational_age": ("value",),
            "integer": ("value",),
            "decimal": ("lower", "upper"),
        }.get(t.get("output_type"))
        return needed is not None and all(t.get(k) is not None for k in needed)

    def judge(self, example: Example, value: Any) -> tuple[bool | None, Any, str]:
        """MedCalc-Bench's official rules: dates equal as MM/DD/YYYY, gestational age equal as
        (weeks, days), integers `round(answer) == label`, decimals inside [Lower, Upper] inclusive."""
        t = example.target
        kind = t.get("output_type")
        if kind == "date":
            got, problem = parse_date(value)
            if got is None:
                return False, None, problem
            ok = format_mdy(got) == t["answer"]
            return ok, format_mdy(got), "correct" if ok else f"expected {t['answer']}"
        if kind == "gestational_age":
            wd, problem = parse_weeks_days(value)
            if wd is None:
                return False, None, problem
            ok = list(wd) == list(t["value"])
            return ok, list(wd), "correct" if ok else f"expected {tuple(t['value'])}"
        if not self.can_score(example):
            return None, None, f"gold answer cannot be scored (output type {kind!r})"
        number, problem = parse_number(value)
        if number is None:
            return False, None, problem
        if kind == "integer":
            ok = round(number) == t["value"]  # Python's round, as the official evaluator
            return ok, number, "correct" if ok else f"expected {t['value']}"
        ok = t["lower"] <= number <= t["upper"]
        return ok, number, "correct" if ok else f"expected {t['lower']:g}..{t['upper']:g}"

    def error_analysis(
        self, examples: Mapping[str, Example], rows: Sequence[dict[str, Any]]
    ) -> dict[str, Any]:
        """Accuracy by output type, and how far wrong answers that were read are: relative error for
        decimals, off by for integers (after the official rounding), days off for dates and gestational ages."""
        from datetime import datetime

        from ehrmind.eval.analysis import WRONG_VALUE, error_summary, failure_reason

        by_type: dict[str, dict[str, Any]] = {}
        errors: dict[str, list[float]] = {}
        for r in rows:
            ex = examples.get(str(r.get("id")))
            if ex is None or r.get("correct") is None:
                continue
            t = ex.target
            kind = str(t.get("output_type"))
            b = by_type.setdefault(kind, {"n": 0, "correct": 0, "wrong_value": 0, "unread": 0})
            b["n"] += 1
            why = failure_reason(r)
            if why is None:
                b["correct"] += 1
                continue
            if why != WRONG_VALUE:
                b["unread"] += 1
                continue
            b["wrong_value"] += 1
            got = r.get("parsed")
            try:
                if kind == "decimal":
                    gold = float(t["value"])
                    name, e = (
                        ("relative error", (float(got) - gold) / abs(gold))
                        if gold
                        else ("absolute error", float(got))
                    )
                elif kind == "integer":
                    name, e = "off by", float(round(float(got)) - int(t["value"]))
                elif kind == "date":
                    d = datetime.strptime(str(got), "%m/%d/%Y") - datetime.strptime(t["answer"], "%m/%d/%Y")
                    name, e = "days off (date)", float(d.days)
                else:
                    w, dd = got
                    gw, gd = t["value"]
                    name, e = "days off (gestational age)", float((7 * w + dd) - (7 * gw + gd))
            except (TypeError, ValueError, KeyError, OverflowError):
                continue
            errors.setdefault(name, []).append(e)
        for b in by_type.values():
            b["accuracy"] = b.pop("correct") / b["n"]
        return {
            "by_output_type": dict(sorted(by_type.items())),
            "numeric_error": {k: error_summary(k, v) for k, v in sorted(errors.items())},
        }

    def snapshot_problem(self, example: Example) -> tuple[str, str] | None:
        for key in ("note", "question"):
            if not isinstance(example.input.get(key), str):
                return f"input.{key}", "expected text"
        t = example.target
        kind = t.get("output_type")
        if kind not in OUTPUT_TYPES:
            return "target.output_type", f"unknown output type {excerpt(kind)}"
        if kind == "date":
            try:
                strict_mdy(str(t.get("answer")))
            except ValueError:
                return "target.answer", "expected a date MM/DD/YYYY"
        elif kind == "gestational_age":
            v = t.get("value")
            if not (isinstance(v, list) and len(v) == 2 and all(_is_int(x) for x in v)):
                return "target.value", "expected [weeks, days]"
        elif kind == "integer":
            if not _is_int(t.get("value")):
                return "target.value", "expected a whole number"
        else:
            for key in ("value", "lower", "upper"):
                if not _is_number(t.get(key)):
                    return f"target.{key}", "expected a finite number"
            if t["lower"] > t["upper"]:
                return "target.lower", "lower limit above the upper limit"
        return None

    def paper_reliable_m(self, example: Example) -> int | None:
        """`src/eval/medcalc/analysis/cal_analysis.py:62, 95-98` (linjc16/EHRMind@3bdde9f): diagnosis and severity m = 7, risk m = 21."""
        return {"diagnosis": 7, "severity": 7, "risk": 21}.get(str(example.metadata.get("category")))

    def paper_sft_counts(self, category_sizes: dict[str, int], fraction: float) -> dict[str, int]:
        return paper_sft_counts(category_sizes, fraction)

    def reward_judge(self, example: Example, value: Any) -> bool:
        """The paper's reward reads `str(answer)` with MedCalc-Bench's `check_correctness` (`eval`, here a safe
        arithmetic reader): a number with a unit, or any text around it, is wrong."""
        return check_answer(str(value), example.target, example.metadata.get("calculator_id"))

    def verify_extra(self, example: Example, completion: str) -> dict[str, Any]:
        """`official_correct`: the verdict of MedCalc-Bench's own `extract_answer` + `check_correctness`
        (re-implemented without eval, `official.py`); `official_parsed`: what that extraction read (at most
        `OFFICIAL_PARSED_CHARS` characters). Both None when the gold cannot be scored."""
        if not self.can_score(example):
            return {"official_correct": None, "official_parsed": None}
        v = official_verdict(completion or "", example.target, example.metadata.get("calculator_id"))
        parsed = v.answer if v.answer is None else v.answer[:OFFICIAL_PARSED_CHARS]
        return {"official_correct": v.correct, "official_parsed": parsed}

    def report_sections(self, metrics: dict[str, Any]) -> list[str]:
        return [
            "*official accuracy*: MedCalc-Bench's own answer extraction and check (`evaluation/run.py` "
            "`extract_answer`, `evaluation/evaluate.py` `check_correctness`), re-implemented without executing "
            "text; *accuracy* is ehrmind's extraction with the same tolerance rules (docs/verifier.md)."
        ]
