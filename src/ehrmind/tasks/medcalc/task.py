"""The `medcalc` task: MedCalc-Bench rows → Examples, prompts, and the official correctness rules."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from ehrmind.errors import ConfigError, DataError, excerpt
from ehrmind.parsing import format_mdy, parse_date, parse_number, parse_weeks_days, python_literal, strict_mdy
from ehrmind.registry import register_task
from ehrmind.tasks.analysis import Groups
from ehrmind.tasks.base import Task, TaskOptions
from ehrmind.tasks.medcalc.analyses import Audit, OfficialVerdict, OutputTypes, Paper, ReasoningChecks
from ehrmind.tasks.medcalc.official import check_answer
from ehrmind.tasks.medcalc.prompts import (
    CONTRACT,
    TASK_TEXT,
    USER_TEMPLATE,
    OneShotExemplar,
    load_official_one_shot,
)
from ehrmind.tasks.medcalc.schema import CATEGORY_ALIASES, OUTPUT_TYPES, REQUIRED_COLUMNS, output_type_for
from ehrmind.types import Example

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
    renamed: ClassVar[dict[str, str]] = {
        "one_shot_file": "use exemplars (every family's option for mode one-shot; --one-shot-file sets it)"
    }


@register_task("medcalc")
class MedCalcTask(Task):
    """MedCalc-Bench (Khandekar et al., NeurIPS 2024 Datasets & Benchmarks): compute a value from a note."""

    version = "1"
    contract = CONTRACT
    groups = Groups(
        by=("category", "calculator_name"),
        plan=("category", "calculator_name"),
        split=("note_id",),
        aliases=("calculator_id",),
    )
    analyses = (OfficialVerdict(), ReasoningChecks(), OutputTypes(), Audit(), Paper())
    Options = MedCalcOptions

    def __init__(self, **options: Any):
        """`exemplars` (mode `one-shot` only): MedCalc-Bench's official exemplar JSON
        (`one_shot_finalized_explanation.json`), or a table of one row per calculator in the dataset's columns
        (e.g. MedCalc-Bench-Verified's `one_shot_data.csv`; its Ground Truth Explanation is the reasoning)."""
        super().__init__(**options)
        path = self.options.exemplars
        self._shots: dict[int, OneShotExemplar] = self._load_exemplars(Path(path)) if path else {}

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
    def task_text(self) -> str:
        return TASK_TEXT

    def user_prompt(self, example: Example) -> str:
        return USER_TEMPLATE.format(note=example.input["note"], question=example.input["question"])

    def _turns_before(self, example: Example) -> list[dict[str, str]]:
        """One-shot mode: the calculator's exemplar as a previous user/assistant turn (its answer in our output
        contract), then the row; verified as in reasoning mode."""
        if self.contract.mode != "one-shot":
            return []
        calc_id = example.metadata.get("calculator_id")
        shot = self._shots.get(calc_id) if isinstance(calc_id, int) else None
        if shot is None:
            raise ConfigError(
                f"no one-shot exemplar for calculator id {calc_id} (row {example.id}) in {self.options.exemplars}; "
                f"it has ids {', '.join(str(i) for i in sorted(self._shots))}"
            )
        question = shot.question or example.input["question"]
        return [
            {"role": "user", "content": USER_TEMPLATE.format(note=shot.note, question=question)},
            {"role": "assistant", "content": self.contract.whole(shot.answer, shot.thinking)},
        ]

    # ------------------------------------------------------------------ scoring
    def gold_value(self, example: Example) -> Any:
        t = example.target
        if t["output_type"] == "date":
            return t["answer"]
        if t["output_type"] == "gestational_age":
            w, d = t["value"]
            return [f"{w} weeks", f"{d} days"]
        return t["value"]

    def _can_score(self, example: Example) -> bool:
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
        if not self._can_score(example):
            return None, None, f"gold answer cannot be scored (output type {kind!r})"
        number, problem = parse_number(value)
        if number is None:
            return False, None, problem
        if kind == "integer":
            ok = round(number) == t["value"]  # Python's round, as the official evaluator
            return ok, number, "correct" if ok else f"expected {t['value']}"
        ok = t["lower"] <= number <= t["upper"]
        return ok, number, "correct" if ok else f"expected {t['lower']:g}..{t['upper']:g}"

    def _snapshot_problem(self, example: Example) -> tuple[str, str] | None:
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

    def _reward_judge(self, example: Example, value: Any) -> bool:
        """The paper's reward reads `str(answer)` with MedCalc-Bench's `check_correctness` (`eval`, here a safe
        arithmetic reader): a number with a unit, or any text around it, is wrong."""
        return check_answer(str(value), example.target, example.metadata.get("calculator_id"))
