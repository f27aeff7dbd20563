"""Unit conversion for calculator inputs. Entities look like `[value, 'unit']` or plain values.

Every converter names the units it accepts; an unknown unit raises ValueError naming it (never a guess).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ehrmind.tasks.medcalc.calculators.base import MissingInput


def norm_unit(unit: str) -> str:
    """A unit string lower-cased, without spaces, with µ/μ written as u."""
    return unit.strip().lower().replace("µ", "u").replace("μ", "u").replace(" ", "")


def value_unit(entity: Any) -> tuple[float, str]:
    """`[72, 'kg']` → (72.0, 'kg'); a bare number → (number, '')."""
    if isinstance(entity, (list, tuple)) and len(entity) >= 1:
        unit = str(entity[1]) if len(entity) > 1 else ""
        return float(entity[0]), unit
    if isinstance(entity, bool):
        raise ValueError("expected a quantity, got a boolean")
    return float(entity), ""


def need(entities: dict[str, Any], *names: str) -> Any:
    """The first of `names` present in entities (MedCalc-Bench spells some names several ways)."""
    for n in names:
        if n in entities:
            return entities[n]
    raise MissingInput(names[0])


def convert(entity: Any, table: dict[str, float], what: str) -> float:
    """Multiply by the factor for the entity's unit (after normalising spaces, case, µ)."""
    value, unit = value_unit(entity)
    factor = table.get(norm_unit(unit))
    if factor is None:
        raise ValueError(f"unknown unit {unit!r} for {what}; known: {', '.join(sorted(table))}")
    return value * factor


WEIGHT_TO_KG = {"kg": 1.0, "g": 0.001, "lb": 0.45359237, "lbs": 0.45359237, "oz": 0.028349523125}
LENGTH_TO_CM = {"cm": 1.0, "m": 100.0, "mm": 0.1, "in": 2.54, "ft": 30.48}


def kg(entity: Any) -> float:
    return convert(entity, WEIGHT_TO_KG, "weight")


def cm(entity: Any) -> float:
    return convert(entity, LENGTH_TO_CM, "height")


def celsius(entity: Any) -> float:
    value, unit = value_unit(entity)
    u = norm_unit(unit).replace("°", "").replace("degrees", "")
    if u in ("c", "celsius", ""):
        return value
    if u in ("f", "fahrenheit"):
        return (value - 32) * 5 / 9
    raise ValueError(f"unknown temperature unit {unit!r}")


# Molar masses (g/mol) for mg/dL <-> mmol/L (or µmol/L) conversions of common analytes.
MOLAR_MASS = {"creatinine": 113.12, "glucose": 180.16, "bun": 28.02, "calcium": 40.08, "cholesterol": 386.65}


def mg_dl(entity: Any, analyte: str) -> float:
    """A concentration in mg/dL from mg/dL, g/L, mmol/L or µmol/L (molar mass of `analyte`)."""
    value, unit = value_unit(entity)
    u = norm_unit(unit)
    mm = MOLAR_MASS.get(analyte)
    if u in ("mg/dl", ""):
        return value
    if u == "g/l":
        return value * 100
    if u == "mg/l":
        return value / 10
    if u == "g/dl":
        return value * 1000
    if mm is not None and u == "mmol/l":
        return value * mm / 10
    if mm is not None and u == "umol/l":
        return value * mm / 10000
    raise ValueError(f"unknown unit {unit!r} for {analyte}")


# ---------------------------------------------------------------- explanation helpers shared by calculators


def conversion_lines(conversions: Sequence[str] | None) -> list[str]:
    """The 'Unit conversions' block of an explanation (empty when nothing was converted)."""
    lines = [c for c in (conversions or ()) if c]
    return ["Unit conversions:", *(f"- {c}" for c in lines)] if lines else []


def collect(*notes: str | None) -> tuple[str, ...]:
    """The conversion sentences that were actually produced."""
    return tuple(n for n in notes if n)


def check_sex(sex: str) -> str:
    """'male' or 'female' (also accepts m/f, man/woman, any case)."""
    s = sex.strip().lower()
    if s in ("male", "m", "man"):
        return "male"
    if s in ("female", "f", "woman"):
        return "female"
    raise ValueError(f"sex must be 'male' or 'female', got {sex!r}")


def sex_of(entities: dict[str, Any]) -> str:
    """'male' or 'female' from the entity `sex` ('Male'/'Female')."""
    return check_sex(str(need(entities, "sex", "Sex", "gender", "Gender")))
