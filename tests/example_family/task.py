"""`toy_bmi`: read weight and height from a note, answer the BMI. Declares what a task family owns — its
data mapping, prompt, correctness rule, plan fields, rationale evidence, reasoning checks, split field."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ehrmind import register_task
from ehrmind.errors import DataError
from ehrmind.parsing import parse_number
from ehrmind.tasks.base import Task
from ehrmind.types import Example, Extraction

_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@register_task("toy_bmi")
class BmiTask(Task):
    """BMI = weight (kg) / height (m)²; correct within 5%."""

    group_fields = ("category", "sex")
    plan_fields = ("category", "sex")
    split_fields = ("patient",)
    rationale_evidence = "the weight and height in the note, and the formula"

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

    def instructions(self) -> str:
        return (
            "Compute the body-mass index. Think inside <think> </think>, then answer inside <answer> </answer> "
            'as JSON: {"answer": number}.'
        )

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

    def check_reasoning(self, example: Example, extraction: Extraction) -> dict[str, Any]:
        think = extraction.think or ""
        read = {float(x) for x in _NUMBER.findall(think.rpartition("=")[0] or think)} - {
            2.0
        }  # not the square
        in_note = {float(x) for x in _NUMBER.findall(example.input["note"])}
        return {
            "has_reasoning": extraction.think is not None,
            "n_values": len(read),
            "n_in_note": len(read & in_note),
            "numbers_in_note_rate": len(read & in_note) / len(read) if read else None,
            "final_value_matches_answer": None,
        }
