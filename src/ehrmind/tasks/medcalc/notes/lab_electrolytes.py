"""Note specs for the calculators in `calculators/lab_electrolytes.py` (gaps, osmolality, sodium, calcium)."""

from __future__ import annotations

from typing import Any

from ehrmind.tasks.medcalc.notes.draft import Draft, _spec
from ehrmind.tasks.medcalc.notes.quantities import (
    ALBUMIN,
    BICARB,
    BUN,
    CALCIUM,
    CHLORIDE,
    GLUCOSE,
    SODIUM,
    WEIGHT,
)


def _ev(entities: dict[str, Any], name: str) -> float:
    v = entities[name]
    return float(v[0] if isinstance(v, list) else v)


def _ag(e: dict[str, Any]) -> float:
    return _ev(e, "Sodium") - _ev(e, "Chloride") - _ev(e, "Bicarbonate")


@_spec(39, 63, 65, 66, valid=lambda e: 4 <= _ag(e) <= 38)
def _anion_gap(d: Draft) -> None:
    d.patient(age_entity=False, sex_entity=False)
    d.complaints = ("nausea and vomiting", "confusion", "abdominal pain", "generalized weakness")
    d.q(SODIUM, 126, 152)
    d.q(CHLORIDE, 88, 116)
    d.q(BICARB, 6, 30)
    if d.calculator_id in (65, 66):
        d.q(ALBUMIN, 1.6, 4.8)


@_spec(64, 67, valid=lambda e: 4 <= _ag(e) <= 38 and _ev(e, "Bicarbonate") != 24)
def _delta_ratio(d: Draft) -> None:
    d.patient(age_entity=False, sex_entity=False)
    d.complaints = ("nausea and vomiting", "confusion", "abdominal pain", "rapid breathing")
    d.q(SODIUM, 126, 152)
    d.q(CHLORIDE, 88, 116)
    d.q(BICARB, 5, 21)
    if d.calculator_id == 67:
        d.q(ALBUMIN, 1.6, 4.8)


@_spec(30)
def _osmolality(d: Draft) -> None:
    d.patient(age_entity=False, sex_entity=False)
    d.complaints = ("confusion", "polyuria and polydipsia", "lethargy")
    d.q(SODIUM, 122, 160)
    d.q(BUN, 6, 90)
    d.q(GLUCOSE, 60, 900)


@_spec(26)
def _sodium_correction(d: Draft) -> None:
    d.patient(age_entity=False, sex_entity=False)
    d.complaints = ("polyuria and polydipsia", "confusion", "vomiting")
    d.q(SODIUM, 120, 150)
    d.q(GLUCOSE, 100, 1000)


@_spec(7)
def _calcium(d: Draft) -> None:
    d.patient(age_entity=False, sex_entity=False)
    d.complaints = ("muscle cramps", "perioral numbness", "fatigue", "poor appetite")
    d.q(CALCIUM, 6.5, 11.5)
    d.q(ALBUMIN, 1.5, 4.6)


@_spec(38)
def _free_water(d: Draft) -> None:
    d.patient((18, 92))
    d.complaints = ("confusion and poor oral intake", "lethargy", "dehydration")
    d.q(WEIGHT, 40, 120)
    d.q(SODIUM, 146, 172)
