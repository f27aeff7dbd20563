"""Note specs for the calculators in `calculators/lab_renal.py` (FENa, creatinine clearance, eGFR)."""

from __future__ import annotations

from ehrmind.tasks.medcalc.notes.draft import Draft, _spec
from ehrmind.tasks.medcalc.notes.quantities import (
    CREATININE,
    HEIGHT,
    SODIUM,
    URINE_CREATININE,
    URINE_SODIUM,
    WEIGHT,
)


@_spec(40)
def _fena(d: Draft) -> None:
    d.patient(age_entity=False, sex_entity=False)
    d.complaints = ("decreased urine output", "acute kidney injury", "vomiting and diarrhea")
    d.q(SODIUM, 125, 150)
    d.q(CREATININE, 0.8, 6.0, units=[0])
    d.q(URINE_SODIUM, 5, 120)
    d.q(URINE_CREATININE, 15, 250)


@_spec(2)
def _crcl(d: Draft) -> None:
    d.patient((20, 92))
    d.complaints = ("a medication dose review", "fatigue", "leg swelling")
    lo, hi = (160, 195) if d.sex == "Male" else (150, 182)
    d.q(HEIGHT, lo, hi)
    d.q(WEIGHT, 42, 140)
    d.q(CREATININE, 0.5, 4.5)


@_spec(3)
def _ckd_epi(d: Draft) -> None:
    d.patient((20, 92))
    d.q(CREATININE, 0.5, 5.0)


@_spec(9)
def _mdrd(d: Draft) -> None:
    d.patient((20, 92))
    d.q(CREATININE, 0.6, 5.0)
    race = d.rng.choices(["Black", "White", "Asian"], weights=[0.35, 0.4, 0.25])[0]
    d.entities["Race"] = race
    word = {"Black": "African American", "White": "White", "Asian": "Asian"}[race]
    d.say("presentation", f"{{He}} identifies as {word}.", "Race")
