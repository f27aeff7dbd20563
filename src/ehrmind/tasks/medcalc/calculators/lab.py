"""Shared helpers for the lab calculators (modules `lab_renal`, `lab_electrolytes`, `lab_other`).

This module registers no calculator. It holds what the three lab modules share: a concentration converter
that understands every `amount/volume` unit MedCalc-Bench's entities use (mg/dL, g/L, mmol/L, µmol/L,
mEq/L, mmol/dL, mEq/mL, …) through the analyte's molar mass and valence; platelet-count, insulin, age,
height, weight and sex readers; and number formatting for the explanations.

Every converter returns the converted value *and* a short sentence describing the conversion, so that a
calculator's explanation can show the note's own units. `from_entities` functions pass those sentences to
`compute` through the optional `conversions` input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ehrmind.tasks.medcalc.calculators.base import MissingInput
from ehrmind.tasks.medcalc.calculators.units import (  # noqa: F401 - re-exported for the lab modules
    check_sex,
    collect,
    conversion_lines,
    kg,
    need,
    norm_unit,
    sex_of,
    value_unit,
)

# Analyte -> (molar mass g/mol, valence or None). Molar masses as MedCalc-Bench and most SI tables use them;
# triglycerides use triolein (885.7 g/mol, the usual 88.57 mg/dL per mmol/L factor); BUN is urea nitrogen
# (2 N = 28.02 g/mol, 2.8 mg/dL per mmol/L); albumin 66,500 g/mol (only g <-> g conversions matter).
ANALYTES: dict[str, tuple[float, int | None]] = {
    "sodium": (22.99, 1),
    "potassium": (39.10, 1),
    "chloride": (35.45, 1),
    "bicarbonate": (61.02, 1),
    "calcium": (40.08, 2),
    "creatinine": (113.12, None),
    "glucose": (180.16, None),
    "bun": (28.02, None),
    "cholesterol": (386.65, None),
    "triglycerides": (885.7, None),
    "albumin": (66500.0, None),
    "bilirubin": (584.66, None),
}

_AMOUNT = {
    "kg": ("g", 1e3),
    "g": ("g", 1.0),
    "mg": ("g", 1e-3),
    "ug": ("g", 1e-6),
    "mcg": ("g", 1e-6),
    "ng": ("g", 1e-9),
    "mol": ("mol", 1.0),
    "mmol": ("mol", 1e-3),
    "umol": ("mol", 1e-6),
    "nmol": ("mol", 1e-9),
    "eq": ("eq", 1.0),
    "meq": ("eq", 1e-3),
}
_VOLUME = {"l": 1.0, "dl": 0.1, "ml": 1e-3, "ul": 1e-6}


def fmt(x: float, sig: int = 4) -> str:
    """A number for an explanation: 3 decimals, more for small numbers (at least `sig` significant digits),
    trailing zeros dropped: 25.238, 0.0943, 140."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    decimals = min(8, max(3, sig - 1 - math.floor(math.log10(abs(x)))))
    s = f"{x:.{decimals}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def par(x: float) -> str:
    """`fmt(x)`, in parentheses when negative (for a factor or divisor)."""
    return f"({fmt(x)})" if x < 0 else fmt(x)


def shown(x: float) -> float:
    """`x` rounded as `fmt` displays it, so that converted inputs are the numbers the explanation shows."""
    return float(fmt(x)) if x and math.isfinite(x) else x


def times(factor: float) -> str:
    """'× 4.008' or, for a factor below 1, the divisor form clinicians use: '÷ 88.4'."""
    if factor >= 1:
        return f"× {fmt(factor, 4)}"
    return f"÷ {fmt(1 / factor, 4)}"


def signed_sum(parts: Sequence[str | float]) -> str:
    """'a + b - c' from terms whose text or value may carry a leading minus sign."""
    out = ""
    for i, p in enumerate(parts):
        text = fmt(p) if isinstance(p, (int, float)) else str(p)
        neg = text.startswith("-")
        body = text[1:] if neg else text
        if i == 0:
            out = ("-" if neg else "") + body
        else:
            out += (" - " if neg else " + ") + body
    return out


def rnd(x: float) -> float:
    """The reported value: 3 decimals, or 3 significant digits for small numbers (|x| < 0.1)."""
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, max(3, 2 - math.floor(math.log10(abs(x)))))


def _parse_conc_unit(unit: str) -> tuple[str, float, float]:
    u = norm_unit(unit)
    amount, _, volume = u.partition("/")
    if amount not in _AMOUNT or volume not in _VOLUME:
        raise ValueError(f"unknown concentration unit {unit!r}")
    kind, a = _AMOUNT[amount]
    return kind, a, _VOLUME[volume]


def conc(entity: Any, to: str, analyte: str, label: str | None = None) -> tuple[float, str | None]:
    """A concentration converted to unit `to` (e.g. 'mg/dL', 'mmol/L', 'g/dL') for `analyte`.

    Returns (value, sentence) where sentence describes the conversion, or None when no conversion was
    needed. A bare number (no unit) is taken to be in `to` already. Raises ValueError for a unit it does not
    know or a conversion the analyte cannot make (e.g. mEq of a non-ion).
    """
    value, unit = value_unit(entity)
    if not unit.strip() or norm_unit(unit) == norm_unit(to):
        return value, None
    k_s, a_s, v_s = _parse_conc_unit(unit)
    k_t, a_t, v_t = _parse_conc_unit(to)
    molar_mass, valence = ANALYTES.get(analyte, (None, None))
    base = value * a_s / v_s  # g/L, mol/L or eq/L
    notes = []
    if k_s != k_t:
        if k_s == "g":
            if molar_mass is None:
                raise ValueError(f"no molar mass for {analyte}")
            base, notes = base / molar_mass, [f"molar mass {fmt(molar_mass)} g/mol"]
        elif k_s == "eq":
            if valence is None:
                raise ValueError(f"{analyte} has no valence: cannot convert {unit!r}")
            base, notes = base / valence, [f"valence {valence}"]
        if k_t == "g":
            if molar_mass is None:
                raise ValueError(f"no molar mass for {analyte}")
            base = base * molar_mass
            notes.append(f"molar mass {fmt(molar_mass)} g/mol")
        elif k_t == "eq":
            if valence is None:
                raise ValueError(f"{analyte} has no valence: cannot convert to {to!r}")
            base = base * valence
            notes.append(f"valence {valence}")
    exact = base * v_t / a_t
    if math.isclose(exact, value, rel_tol=1e-12):
        return value, None  # e.g. mEq/L -> mmol/L for a monovalent ion: nothing to explain
    out = shown(exact)
    name = label or analyte
    factor = exact / value if value else a_s / v_s * v_t / a_t
    how = f" ({', '.join(dict.fromkeys(notes))})" if notes else ""
    return out, f"{name}: {fmt(value)} {unit} {times(factor)} = {fmt(out)} {to}{how}."


def platelets_e9_per_l(entity: Any) -> tuple[float, str | None]:
    """A platelet count in 10⁹/L. MedCalc-Bench writes a count per volume: [149000, 'µL'] or [1.5e11, 'L']."""
    value, unit = value_unit(entity)
    u = norm_unit(unit).removeprefix("count/").removeprefix("/")
    per_volume = {"ul": 1e6, "mm^3": 1e6, "mm3": 1e6, "ml": 1e3, "dl": 1e1, "l": 1.0}
    if u in per_volume:
        out = shown(value * per_volume[u] / 1e9)
        return out, f"platelet count: {fmt(value)} per {unit} = {fmt(out)} × 10⁹/L."
    if u in ("10^9/l", "x10^9/l", "×10^9/l", "10^3/ul", "x10^3/ul", "×10^3/ul", "k/ul", "10^3/mm^3"):
        return value, None
    raise ValueError(f"unknown platelet count unit {unit!r}")


def insulin_uiu_ml(entity: Any) -> tuple[float, str | None]:
    """Fasting insulin in µIU/mL (= mIU/L = µU/mL); pmol/L divided by 6 (1 µIU/mL = 6 pmol/L)."""
    value, unit = value_unit(entity)
    u = norm_unit(unit)
    if u in ("", "uiu/ml", "uu/ml", "miu/l", "mu/l"):
        return value, None
    if u == "pmol/l":
        out = shown(value / 6.0)
        return out, f"insulin: {fmt(value)} pmol/L ÷ 6 (pmol/L per µIU/mL) = {fmt(out)} µIU/mL."
    raise ValueError(f"unknown insulin unit {unit!r}")


_AGE_UNITS = {"year": 1.0, "years": 1.0, "yr": 1.0, "yrs": 1.0, "y": 1.0, "month": 1 / 12, "months": 1 / 12}
_AGE_UNITS |= {"week": 7 / 365.25, "weeks": 7 / 365.25, "day": 1 / 365.25, "days": 1 / 365.25}


def age_years(entity: Any) -> tuple[float, str | None]:
    """Age in years from [n, 'years'], [n, 'months'], [n, 'days'] or pairs like [3, 'years', 2, 'months'];
    with a sentence when it had to be converted."""
    if isinstance(entity, (int, float)) and not isinstance(entity, bool):
        return float(entity), None
    if not isinstance(entity, (list, tuple)) or len(entity) < 2 or len(entity) % 2:
        raise ValueError(f"cannot read an age from {entity!r}")
    total, parts = 0.0, []
    for i in range(0, len(entity), 2):
        unit = norm_unit(str(entity[i + 1]))
        if unit not in _AGE_UNITS:
            raise ValueError(f"unknown age unit {entity[i + 1]!r}")
        total += float(entity[i]) * _AGE_UNITS[unit]
        parts.append(f"{fmt(float(entity[i]))} {entity[i + 1]}")
    total = shown(total)
    if len(parts) == 1 and _AGE_UNITS[norm_unit(str(entity[1]))] == 1.0:
        return total, None
    return total, f"age: {' '.join(parts)} = {fmt(total)} years."


def weight_kg(entity: Any) -> tuple[float, str | None]:
    """Body weight in kg (from kg, g, lb/lbs, oz), with a sentence when converted."""
    value, unit = value_unit(entity)
    out = kg(entity)
    if norm_unit(unit) in ("kg", ""):
        return out, None
    out = shown(out)
    return out, f"weight: {fmt(value)} {unit} {times(out / value if value else 1)} = {fmt(out)} kg."


def height_cm(entity: Any) -> tuple[float, str | None]:
    """Height in cm from [170, 'cm'], [1.7, 'm'], [67, 'in'], [5.5, 'ft'] or [5, 'ft', 7, 'in']."""
    if isinstance(entity, (list, tuple)) and len(entity) == 4:
        feet, f_unit, inches, i_unit = (
            float(entity[0]),
            norm_unit(str(entity[1])),
            float(entity[2]),
            norm_unit(str(entity[3])),
        )
        if f_unit == "ft" and i_unit == "in":
            out = shown((feet * 12 + inches) * 2.54)
            return (
                out,
                f"height: {fmt(feet)} ft {fmt(inches)} in = {fmt(feet * 12 + inches)} in × 2.54 = {fmt(out)} cm.",
            )
        raise ValueError(f"cannot read a height from {entity!r}")
    value, unit = value_unit(entity)
    factor = {"cm": 1.0, "m": 100.0, "mm": 0.1, "in": 2.54, "inch": 2.54, "inches": 2.54, "ft": 30.48}
    u = norm_unit(unit)
    if u not in factor:
        raise ValueError(f"unknown height unit {unit!r}")
    if factor[u] == 1.0:
        return value, None
    out = shown(value * factor[u])
    return out, f"height: {fmt(value)} {unit} {times(factor[u])} = {fmt(out)} cm."


def flag(entities: dict[str, Any], *names: str) -> bool:
    """A boolean criterion; absent means not present (MedCalc-Bench's convention)."""
    try:
        v = need(entities, *names)
    except MissingInput:
        return False
    if isinstance(v, bool):
        return v
    raise ValueError(f"{names[0]}: expected True/False, got {v!r}")


CONVERSIONS_INPUT = (
    "optional sentences describing conversions from the note's units (shown in the explanation)"
)
