"""Knowledge cards: what each calculator computes, its inputs with units, its formula or point table and its
source, as SFT-ready items.

- `formula_card(calc)` — the card text.
- `card_item(calc)` — a conversational prompt/completion pair: the user asks "What is <calculator> and how is
  it computed?", the assistant answers with the card.
- `worked_examples(calculator_ids, n_examples_per_calc, seed)` — synthetic notes (`notes.make_examples`) as
  `Example`s of task "medcalc" whose metadata carries the calculator's step-by-step `explanation`, so the
  normal SFT data builder (`ehrmind.train.data.sft_rows`) puts it in <think> and the gold value in
  <answer>{"answer": …}</answer>.
- `card_rows(task, calculators, n_examples_per_calc, seed)` — both kinds as prompt/completion dicts (chat
  messages), restricted to a list of calculator ids when given (e.g. only the calculators a diagnosis found
  missing).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from ehrmind.tasks.base import gold_completion
from ehrmind.tasks.medcalc.notes import BENCHMARK, SPECS, make_examples
from ehrmind.types import Example

log = logging.getLogger(__name__)

CARD_QUESTION = "What is {name} and how is it computed?"
_INTERNAL_INPUTS = {"conversions"}  # explanation plumbing, not a clinical input
_OUTPUT_TEXT = {
    "decimal": "a number{unit} (graded within ±5% of the reference value)",
    "integer": "a whole-number score{unit}",
    "date": "a calendar date, written MM/DD/YYYY",
    "gestational_age": "a gestational age as (weeks, days)",
}


def _calculators(calculators: Iterable[Any] | None) -> list[Any]:
    from ehrmind.tasks.medcalc.calculators import load_all

    registry = load_all()
    if calculators is None:
        return [registry[i] for i in sorted(registry)]
    out = []
    for c in calculators:
        if hasattr(c, "formula") and hasattr(c, "id"):
            out.append(c)
            continue
        cid = int(c)
        if cid not in registry:
            raise KeyError(f"no calculator {cid}; registered: {sorted(registry)}")
        out.append(registry[cid])
    return out


def _unit_from_question(question: str) -> str:
    m = re.search(r"\bin (?:terms of )?(m[Ll]/min/1\.73 m²|[A-Za-zµ²³/%0-9. ]+?)[?.]", question)
    if not m:
        return ""
    unit = m.group(1).strip()
    return "" if unit.lower().startswith(("the ", "your ")) else unit


def _summary(calc: Any) -> str:
    doc = (getattr(calc.compute, "__doc__", None) or "").strip()
    first = doc.split("\n\n", 1)[0]
    return " ".join(first.split())


def formula_card(calc: Any) -> str:
    """A plain-text card: what the calculator computes, its inputs with units, the formula or point table,
    and the published source."""
    name, _category, question = BENCHMARK.get(calc.id, (calc.name, calc.category, ""))
    unit = _unit_from_question(question) if calc.output_type == "decimal" else ""
    output = _OUTPUT_TEXT.get(calc.output_type, "a value").format(unit=f" in {unit}" if unit else "")
    lines = [f"{calc.name} (MedCalc-Bench calculator {calc.id}; category: {calc.category})", ""]
    summary = _summary(calc)
    what = f"What it computes: {summary}" if summary else f"What it computes: the {calc.name}."
    lines += [what, f"Result: {output}.", ""]
    inputs = [(k, v) for k, v in calc.inputs.items() if k not in _INTERNAL_INPUTS]
    if inputs:
        lines.append("Inputs (canonical units):")
        lines += [f"- {k}: {v}" for k, v in inputs]
        lines.append("")
    lines += ["Formula / point table:", calc.formula.strip(), "", f"Source: {calc.reference.strip()}"]
    return "\n".join(lines)


def card_prompt(calc: Any) -> str:
    return CARD_QUESTION.format(name=calc.name)


def card_item(calc: Any) -> dict[str, Any]:
    """One conversational prompt/completion item teaching the card."""
    name, category, _ = BENCHMARK.get(calc.id, (calc.name, calc.category, ""))
    return {
        "id": f"card-{calc.id}",
        "kind": "card",
        "calculator_id": calc.id,
        "calculator_name": name,
        "category": category,
        "prompt": [{"role": "user", "content": card_prompt(calc)}],
        "completion": [{"role": "assistant", "content": formula_card(calc)}],
    }


def worked_examples(
    calculator_ids: Iterable[int] | None = None, n_examples_per_calc: int = 2, seed: int = 0
) -> list[Example]:
    """Synthetic worked examples (Examples of task "medcalc") for the given calculators — all registered
    calculators that have a note spec when None; ids without a spec are skipped with a warning."""
    if calculator_ids is None:
        ids = [c.id for c in _calculators(None) if c.id in SPECS]
    else:
        ids = []
        for cid in (int(i) for i in calculator_ids):
            if cid in SPECS:
                ids.append(cid)
            else:
                log.warning("calculator %d has no note spec: its card has no worked examples", cid)
    return make_examples(ids, n_examples_per_calc, seed) if ids and n_examples_per_calc > 0 else []


def card_rows(
    task: Any, calculators: Iterable[Any] | None = None, n_examples_per_calc: int = 2, seed: int = 0
) -> list[dict[str, Any]]:
    """SFT-ready prompt/completion items: one card item per calculator, then `n_examples_per_calc` worked
    examples each (rendered with `task`, the reasoning in <think>, the gold value in the answer JSON).

    `calculators`: ids or Calculator objects (None: every registered calculator). Each worked-example row
    also carries its `example` (Example.to_dict()) so it can go through the normal SFT builder instead."""
    calcs = _calculators(calculators)
    rows = [card_item(c) for c in calcs]
    for ex in worked_examples([c.id for c in calcs], n_examples_per_calc, seed):
        completion = gold_completion(task, ex, ex.metadata["explanation"])
        rows.append(
            {
                "id": ex.id,
                "kind": "worked_example",
                "calculator_id": ex.metadata["calculator_id"],
                "calculator_name": ex.metadata["calculator_name"],
                "category": ex.metadata["category"],
                "prompt": task.render(ex),
                "completion": [{"role": "assistant", "content": completion}],
                "example": ex.to_dict(),
            }
        )
    return rows
