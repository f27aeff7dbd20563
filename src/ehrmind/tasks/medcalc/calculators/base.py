"""Calculator contract: typed inputs in canonical units → a value and a plain-text, step-by-step explanation.

A calculator is a plain function decorated with `@calculator(...)`, which records its MedCalc-Bench id,
name, category, output type, reference, formula (for knowledge cards) and its inputs. A second function,
`from_entities`, maps a MedCalc-Bench row's `Relevant Entities` (already parsed with ast.literal_eval) to
those inputs, converting units.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

OutputValue = float | int | str | tuple[int, int]


@dataclass(frozen=True)
class CalcResult:
    value: OutputValue
    """A number; a date as MM/DD/YYYY; a gestational age as (weeks, days)."""
    explanation: str
    """Step by step, in plain text, with the numbers used — usable as SFT reasoning."""


@dataclass(frozen=True)
class Calculator:
    id: int
    name: str
    """MedCalc-Bench's Calculator Name."""
    category: str
    """lab, physical, risk, severity, diagnosis, date or dosage."""
    output_type: str
    """decimal, integer, date or gestational_age (as the verifier uses them)."""
    compute: Callable[..., CalcResult]
    """compute(**inputs) -> CalcResult; inputs in the canonical units listed in `inputs`."""
    from_entities: Callable[[dict[str, Any]], dict[str, Any]]
    """Relevant Entities (parsed) -> keyword inputs for `compute`; raises MissingInput if a required one is absent."""
    reference: str
    """The published clinical definition (authors, journal, year; or the guideline)."""
    formula: str
    """The formula or point table in plain text, for knowledge cards."""
    inputs: dict[str, str] = field(default_factory=dict)
    """Input name -> description with its canonical unit, e.g. {"weight": "body weight, kg"}."""

    def from_row_entities(self, entities: dict[str, Any], **options: Any) -> CalcResult:
        """Compute from a row's entities; `options` are further inputs (e.g. a date calculator's `convention`)."""
        return self.compute(**self.from_entities(entities), **options)


class MissingInput(KeyError):
    """A required entity is absent from a row's Relevant Entities."""


CALCULATORS: dict[int, Calculator] = {}


def calculator(
    *,
    id: int,
    name: str,
    category: str,
    output_type: str,
    reference: str,
    formula: str,
    inputs: dict[str, str],
    from_entities: Callable[[dict[str, Any]], dict[str, Any]],
) -> Callable[[Callable[..., CalcResult]], Callable[..., CalcResult]]:
    """Register a compute function as MedCalc-Bench calculator `id`; a duplicate id raises."""

    def deco(fn: Callable[..., CalcResult]) -> Callable[..., CalcResult]:
        if id in CALCULATORS:
            raise ValueError(f"calculator {id} is already registered ({CALCULATORS[id].name})")
        CALCULATORS[id] = Calculator(
            id=id,
            name=name,
            category=category,
            output_type=output_type,
            compute=fn,
            from_entities=from_entities,
            reference=reference,
            formula=formula,
            inputs=inputs,
        )
        return fn

    return deco


def get_calculator(calculator_id: int) -> Calculator:
    from ehrmind.tasks.medcalc.calculators import load_all

    calcs = load_all()
    if calculator_id not in calcs:
        raise KeyError(f"no calculator {calculator_id}; known: {sorted(calcs)}")
    return calcs[calculator_id]
