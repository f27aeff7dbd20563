"""MedCalc prompts. The answer rules are stated in the prompt so a model can meet the verifier."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ehrmind.contract import Contract, Wording
from ehrmind.errors import DataError

TASK_TEXT = "You are a careful clinical assistant who computes medical scores and values from patient notes. "
CONTRACT = Contract(
    answer_key="answer",
    wording=Wording(
        steps="find the relevant values in the note, convert units where needed, apply the calculator's "
        "formula or point table, and check the arithmetic.",
        what="result",
        shape='{"answer": VALUE}',
        notes="VALUE is a number in the unit the question asks for; for a date, a string MM/DD/YYYY; for a "
        'gestational age, ["W weeks", "D days"].',
        evidence="the values in the patient note and the calculator's rule, step by step, with the arithmetic",
    ),
    modes=("reasoning", "direct", "one-shot"),
)
"""MedCalc's output contract: `{"answer": VALUE}` (the contract writes the instruction sentence)."""
REASONING_SYSTEM = TASK_TEXT + CONTRACT.sentence()
DIRECT_SYSTEM = TASK_TEXT + CONTRACT.configured("direct").sentence()

USER_TEMPLATE = "Here is the patient note:\n{note}\n\nHere is the task:\n{question}"


# ---------------------------------------------------------------- one-shot baseline

ONE_SHOT_KEYS = ("Patient Note", "Response")
"""MedCalc-Bench's `one_shot_finalized_explanation.json`: {calculator id: {"Patient Note": …, "Response":
{"step_by_step_thinking": …, "answer": …}}} — the exemplars the official `run.py` shows in one-shot mode."""


@dataclass(frozen=True)
class OneShotExemplar:
    """One worked example for a calculator, shown as a previous user/assistant turn."""

    calculator_id: int
    note: str
    thinking: str
    answer: Any
    question: str | None = None
    """The exemplar's own question; None: the current row's question is used, as MedCalc-Bench's
    `evaluation/run.py:202-205` does for every calculator but 24 (whose rows ask 15 different questions)."""


OFFICIAL_ONE_SHOT_QUESTIONS = {
    24: "Based on the patient's dose of Hydrocortisone IV, what is the equivalent dosage in mg of Dexamethasone PO?"
}
"""The exemplar questions the official `run.py:202-203` fixes (MedCalc-Bench@20b10f9); the official JSON has no
question field, so every other exemplar is shown with the current row's question (run.py:204-205)."""


def load_official_one_shot(path: str | Path) -> dict[int, OneShotExemplar]:
    """Read MedCalc-Bench's official one-shot exemplar JSON; DataError naming the file, key and field."""
    path = Path(path)
    if not path.is_file():
        raise DataError("one-shot exemplar file not found", file=path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"not valid JSON ({e})", file=path) from None
    if not isinstance(raw, dict) or not raw:
        raise DataError("expected an object {calculator id: {Patient Note, Response}}", file=path)
    out: dict[int, OneShotExemplar] = {}
    for key, item in raw.items():
        try:
            calc_id = int(str(key).strip())
        except ValueError:
            raise DataError(f"key {key!r} is not a calculator id", file=path) from None
        if not isinstance(item, dict) or any(k not in item for k in ONE_SHOT_KEYS):
            raise DataError(f"expected keys {', '.join(ONE_SHOT_KEYS)}", file=path, row=key)
        response = item["Response"]
        if not isinstance(response, dict) or "answer" not in response:
            raise DataError("expected {step_by_step_thinking, answer}", file=path, row=key, field="Response")
        thinking = response.get("step_by_step_thinking")
        if not isinstance(thinking, str) or not thinking.strip():
            raise DataError("empty", file=path, row=key, field="Response.step_by_step_thinking")
        note = item["Patient Note"]
        if not isinstance(note, str) or not note.strip():
            raise DataError("empty", file=path, row=key, field="Patient Note")
        out[calc_id] = OneShotExemplar(
            calc_id,
            note.strip(),
            thinking.strip(),
            response["answer"],
            OFFICIAL_ONE_SHOT_QUESTIONS.get(calc_id),
        )
    return out
