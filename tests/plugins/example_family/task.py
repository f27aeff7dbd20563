"""`toy_bmi`: read weight and height from a note, answer the BMI. Declares what a task family owns — its
data mapping, prompt, output contract, correctness rule, groups (plan and split fields) and an analysis of
its own (is the reasoning grounded in the note), with its own block in metrics.json, its own report section
and its own headline."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ehrmind import register_task
from ehrmind.contract import Contract, Wording
from ehrmind.errors import DataError
from ehrmind.parsing import parse_number
from ehrmind.tasks.analysis import Analysis, Groups, Headline
from ehrmind.tasks.base import Task
from ehrmind.types import Example

_NUMBER = re.compile(r"\d+(?:\.\d+)?")


class Grounding(Analysis):
    """Share of the values a reasoning reads that appear in the note (keys no other family has)."""

    name = "grounding"
    headline = (Headline("grounded reasoning", "grounding.grounded_rate", percent=True),)

    def row(self, task: Task, example: Example, completion: str) -> dict[str, Any]:
        think = task.contract.read(completion).strict.think or ""
        read = {float(x) for x in _NUMBER.findall(think.rpartition("=")[0] or think)} - {
            2.0
        }  # not the square
        in_note = {float(x) for x in _NUMBER.findall(example.input["note"])}
        return {"bmi_values_read": len(read), "bmi_values_in_note": len(read & in_note)}

    def summarize(
        self, task: Task, examples: Mapping[str, Example], rows: Sequence[dict[str, Any]]
    ) -> dict[str, Any] | None:
        read = sum(int(r.get("bmi_values_read") or 0) for r in rows)
        found = sum(int(r.get("bmi_values_in_note") or 0) for r in rows)
        return {"values_read": read, "grounded_rate": found / read if read else None}

    def report(self, metrics: Mapping[str, Any]) -> list[str]:
        block = metrics.get(self.name) or {}
        rate = block.get("grounded_rate")
        shown = "—" if rate is None else f"{100 * rate:.1f}%"
        return ["## Grounding", "", f"Values read by the reasoning found in the note: **{shown}**."]


@register_task("toy_bmi")
class BmiTask(Task):
    """BMI = weight (kg) / height (m)²; correct within 5%."""

    contract = Contract(
        answer_key="answer",
        wording=Wording(
            steps="read the weight and the height, then divide the weight by the squared height.",
            what="result",
            shape='{"answer": number}',
            evidence="the weight and height in the note, and the formula",
        ),
    )
    groups = Groups(by=("category", "sex"), plan=("category", "sex"), split=("patient",))
    analyses = (Grounding(),)

    def records_to_examples(
        self, rows: Iterable[tuple[int, dict[str, Any]]], source: str | Path
    ) -> Iterator[Example]:
        for row_no, row in rows:
            try:
                weight, height = float(row["weight_kg"]), float(row["height_m"])
            except (KeyError, TypeError, ValueError) as e:
                raise DataError(
                    f"weight_kg and height_m must be numbers ({e})", file=source, row=row_no
                ) from None
            bmi = round(weight / height**2, 1)
            yield Example(
                id=str(row["id"]),
                task=self.name,
                input={"note": f"Weight {weight:g} kg, height {height:g} m."},
                target={"value": bmi},
                metadata={
                    "category": "adult" if float(row.get("age", 40)) >= 18 else "child",
                    "sex": str(row.get("sex", "F")),
                    "patient": str(row.get("patient", row["id"])),
                    "explanation": f"BMI = {weight:g} / {height:g}^2 = {bmi}",
                },
            )

    def task_text(self) -> str:
        return "Compute the body-mass index. "

    def user_prompt(self, example: Example) -> str:
        return example.input["note"]

    def judge(self, example: Example, value: Any) -> tuple[bool | None, Any, str]:
        number, _ = parse_number(value)
        if number is None:
            return False, None, "answer is not a number"
        gold = example.target["value"]
        ok = abs(number - gold) <= 0.05 * gold
        return ok, number, "within 5%" if ok else f"{number} vs {gold}"

    def gold_value(self, example: Example) -> Any:
        return example.target["value"]
