"""Drafts as `Example`s: sample a spec until its calculator accepts the inputs, compute the gold answer."""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Iterable
from typing import Any

from ehrmind.errors import ConfigError
from ehrmind.tasks.medcalc.notes.benchmark import BENCHMARK
from ehrmind.tasks.medcalc.notes.draft import SPECS, Draft, spec_ids
from ehrmind.tasks.medcalc.notes.render import _PRONOUNS, render_note
from ehrmind.tasks.medcalc.schema import CATEGORY_ALIASES, output_type_for
from ehrmind.tasks.medcalc.task import parse_gold
from ehrmind.types import Example

log = logging.getLogger(__package__)  # the package's name, as when this was one module


def _gold(output_type: str, value: Any) -> dict[str, Any]:
    """The typed target for a computed value, built with the task's own `parse_gold` (decimals ±5%)."""
    if output_type == "date":
        return parse_gold("date", str(value), "", "")
    if output_type == "gestational_age":
        w, dd = value
        return parse_gold("gestational_age", repr((f"{int(w)} weeks", f"{int(dd)} days")), "", "")
    if output_type == "integer":
        v = int(round(float(value)))
        return parse_gold("integer", str(v), str(v), str(v))
    v = float(value)
    answer = round(v, 3)
    lo, hi = sorted((answer * 0.95, answer * 1.05))
    if not (lo <= v <= hi) and v != answer:  # tiny values: rounding to 3 places would leave the tolerance
        answer = v
        lo, hi = sorted((v * 0.95, v * 1.05))
    return parse_gold("decimal", repr(answer), repr(lo), repr(hi))


REASONING_STYLES = ("full", "compact")


def _reasoning(explanation: str, style: str) -> str:
    from ehrmind.tasks.medcalc.calculators.scores_risk import compact_explanation

    if style not in REASONING_STYLES:
        raise ConfigError(f"reasoning must be one of {', '.join(REASONING_STYLES)}, got {style!r}")
    return compact_explanation(explanation) if style == "compact" else explanation


def _registry() -> dict[int, Any]:
    from ehrmind.tasks.medcalc.calculators import load_all

    return load_all()


def make_example(
    calculator_id: int,
    rng: random.Random,
    example_id: str,
    *,
    max_tries: int = 60,
    max_distractors: int | None = None,
    reasoning: str = "full",
) -> Example:
    """One synthetic note for `calculator_id` (its calculator must be registered)."""
    from ehrmind.tasks.medcalc.calculators.base import MissingInput

    spec = SPECS.get(calculator_id)
    if spec is None:
        raise ConfigError(f"no note spec for calculator {calculator_id}; specs exist for {spec_ids()}")
    calcs = _registry()
    if calculator_id not in calcs:
        raise KeyError(f"calculator {calculator_id} is not registered; registered: {sorted(calcs)}")
    calc = calcs[calculator_id]
    last_error: Exception | None = None
    for _ in range(max_tries):
        d = Draft(rng, calculator_id)
        d.max_distractors = max_distractors
        spec.build(d)
        if spec.valid is not None and not spec.valid(d.entities):
            continue
        try:
            result = calc.compute(**calc.from_entities(d.entities))
        except (ArithmeticError, ValueError, MissingInput) as e:  # an implausible draw: draw again
            last_error = e
            continue
        break
    else:
        raise RuntimeError(
            f"could not sample valid inputs for calculator {calculator_id} in {max_tries} tries "
            f"(last error: {last_error!r})"
        )
    name, category, question = BENCHMARK.get(calculator_id, (calc.name, calc.category, ""))
    category = CATEGORY_ALIASES.get(category, calc.category)
    output_type = output_type_for(calculator_id, calc.output_type) or calc.output_type
    note = render_note(d)
    pronouns = _PRONOUNS[d.sex or "Male"]
    mentions = {k: v.format(**pronouns) for k, v in d.mentions.items()}
    return Example(
        id=example_id,
        task="medcalc",
        input={"note": note, "question": d.question or question},
        target=_gold(output_type, result.value),
        metadata={
            "category": category,
            "calculator_id": calculator_id,
            "calculator_name": name,
            "note_id": "",
            "note_type": "Synthetic",
            "relevant_entities": d.entities,
            "explanation": _reasoning(result.explanation, reasoning),
            "source": "synthetic",
            "mentions": mentions,
            "distractors": d.distractors,
            # the date rule the label follows (the calculators' default), for `ehrmind audit`
            **(
                {"convention": calc.compute.__kwdefaults__["convention"]}
                if "convention" in calc.inputs
                else {}
            ),
        },
    )


def reread(example: Example, entities: dict[str, Any], reasoning: str = "full") -> Example:
    """The same note with the reasoning and answer the knowledge base computes from other `entities` — what
    a reader who took the note's findings to be `entities` would write (e.g. a teacher that misreads one
    finding). The note text is unchanged; `metadata["relevant_entities"]` holds the entities used."""
    calc = _registry()[int(example.metadata["calculator_id"])]
    result = calc.compute(**calc.from_entities(entities))
    output_type = example.target["output_type"]
    return dataclasses.replace(
        example,
        target=_gold(output_type, result.value),
        metadata={
            **example.metadata,
            "relevant_entities": entities,
            "explanation": _reasoning(result.explanation, reasoning),
        },
    )


def withhold_points(example: Example, finding: str, reasoning: str = "full") -> Example:
    """The same note, findings read right, but no points for `finding` (which must be present): what a reader
    who misapplies that criterion's rule writes. Its reasoning says the finding is present and gives it 0;
    the later running totals and the answer follow. For point-sum scores whose reasoning has one
    "criterion: finding → points" line per item (`Tally`)."""
    entities = dict(example.metadata["relevant_entities"])
    if entities.get(finding) is not True:
        raise ValueError(f"{finding!r} is not present in example {example.id}")
    right = reread(example, entities, reasoning).metadata["explanation"].splitlines()
    wrong = reread(example, {**entities, finding: False}, reasoning)
    lines = wrong.metadata["explanation"].splitlines()
    i = next(i for i, (a, b) in enumerate(zip(right, lines, strict=True)) if a != b)  # the criterion's line
    lines[i] = right[i].partition(" → ")[0] + " → " + lines[i].partition(" → ")[2]
    return dataclasses.replace(
        wrong,
        metadata={**wrong.metadata, "relevant_entities": entities, "explanation": "\n".join(lines)},
    )


def make_examples(
    calculator_ids: Iterable[int] | None = None,
    n: int = 10,
    seed: int = 0,
    *,
    max_distractors: int | None = None,
    reasoning: str = "full",
) -> list[Example]:
    """`n` synthetic notes per calculator (all registered calculators with a spec when `calculator_ids` is
    None). Deterministic for a seed; each calculator has its own random stream, so the notes for one id do
    not depend on which other ids are asked for. An id without a spec raises ConfigError; an id whose
    calculator is not registered raises KeyError."""
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n}")
    if calculator_ids is None:
        calcs = _registry()
        ids = [i for i in spec_ids() if i in calcs]
    else:
        ids = [int(i) for i in calculator_ids]
    out: list[Example] = []
    for cid in ids:
        rng = random.Random(f"ehrmind-medcalc-notes:{seed}:{cid}")
        out.extend(
            make_example(
                cid, rng, f"synthetic-{cid}-s{seed}-{i}", max_distractors=max_distractors, reasoning=reasoning
            )
            for i in range(n)
        )
    log.info("generated %d synthetic notes for %d calculator(s)", len(out), len(ids))
    return out
