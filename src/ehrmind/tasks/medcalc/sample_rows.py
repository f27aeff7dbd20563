"""MedCalc-Bench-format CSV rows (the columns users bring) with note-like text, whose answers this module
computes: small, fast sample data for tests and benchmarks of the loading, rendering, verification and
training path. A few calculators with simple formulas (mean arterial pressure, BMI, anion gap, ideal body
weight) keep the task learnable by a tiny model; `test_synthetic_rows_round_trip_through_audit` checks their
answers against the calculator knowledge base. The demo and the study use `notes.make_examples` instead (every
calculator with a note spec, as Examples).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

Row = dict[str, Any]

_AGES = range(22, 90)
_OPENERS = [
    "A {age}-year-old {sex} presented to the emergency department with {complaint}.",
    "{Sex_title} patient, {age} years old, was seen in clinic for {complaint}.",
    "The patient is a {age}-year-old {sex} admitted for {complaint}.",
]
_COMPLAINTS = [
    "chest pain",
    "shortness of breath",
    "fatigue",
    "abdominal pain",
    "dizziness",
    "fever and cough",
]


def _opener(rng: random.Random) -> str:
    sex = rng.choice(["man", "woman"])
    return rng.choice(_OPENERS).format(
        age=rng.choice(_AGES),
        sex=sex,
        Sex_title="Male" if sex == "man" else "Female",
        complaint=rng.choice(_COMPLAINTS),
    )


def _decimal_row(value: float) -> dict[str, str]:
    value = round(value, 3)
    lo, hi = sorted((round(0.95 * value, 5), round(1.05 * value, 5)))
    return {
        "Ground Truth Answer": f"{value:g}",
        "Lower Limit": f"{lo:g}",
        "Upper Limit": f"{hi:g}",
        "Output Type": "decimal",
    }


def _map(rng: random.Random) -> Row:
    sbp, dbp = rng.randint(95, 185), rng.randint(50, 110)
    hr = rng.randint(55, 120)
    note = (
        f"{_opener(rng)} Vital signs: blood pressure {sbp}/{dbp} mmHg, heart rate {hr} beats per minute, "
        f"temperature {rng.choice([36.6, 37.2, 38.1])} °C."
    )
    value = 2 / 3 * dbp + 1 / 3 * sbp
    explanation = (
        "The mean arterial pressure is MAP = 2/3 × diastolic + 1/3 × systolic. "
        f"The blood pressure is {sbp}/{dbp} mmHg, so MAP = 2/3 × {dbp} + 1/3 × {sbp} = {value:.3f} mmHg."
    )
    return {
        "Calculator ID": "5",
        "Calculator Name": "Mean Arterial Pressure (MAP)",
        "Category": "physical",
        "Question": "What is patient's mean arterial pressure in mm Hg?",
        "Patient Note": note,
        "Relevant Entities": repr(
            {"Systolic Blood Pressure": [sbp, "mm hg"], "Diastolic Blood Pressure": [dbp, "mm hg"]}
        ),
        "Ground Truth Explanation": explanation,
        **_decimal_row(value),
    }


def _bmi(rng: random.Random) -> Row:
    height_cm, weight_kg = rng.randint(150, 195), round(rng.uniform(45, 130), 1)
    if rng.random() < 0.5:
        h_text, w_text = f"height {height_cm} cm", f"weight {weight_kg} kg"
        conv = ""
    else:
        inches, pounds = round(height_cm / 2.54, 1), round(weight_kg * 2.20462, 1)
        height_cm, weight_kg = inches * 2.54, pounds / 2.20462
        h_text, w_text = f"height {inches} in", f"weight {pounds} lb"
        conv = f"Converting units: {inches} in × 2.54 = {height_cm:.2f} cm and {pounds} lb ÷ 2.20462 = {weight_kg:.2f} kg. "
    value = weight_kg / (height_cm / 100) ** 2
    note = f"{_opener(rng)} On examination, {h_text}, {w_text}, pulse {rng.randint(55, 110)}/min."
    explanation = (
        f"BMI = weight (kg) / height (m)². {conv}"
        f"BMI = {weight_kg:.2f} / ({height_cm / 100:.3f})² = {value:.3f} kg/m²."
    )
    return {
        "Calculator ID": "6",
        "Calculator Name": "Body Mass Index (BMI)",
        "Category": "physical",
        "Question": "What is the patient's body mass index (BMI)? Your answer should be in terms of kg/m².",
        "Patient Note": note,
        "Relevant Entities": repr(
            {"height": [round(height_cm, 2), "cm"], "weight": [round(weight_kg, 2), "kg"]}
        ),
        "Ground Truth Explanation": explanation,
        **_decimal_row(value),
    }


def _anion_gap(rng: random.Random) -> Row:
    na, cl, hco3 = rng.randint(128, 150), rng.randint(90, 115), rng.randint(12, 30)
    glucose = rng.randint(70, 250)
    value = na - (cl + hco3)
    note = (
        f"{_opener(rng)} Laboratory studies showed sodium {na} mEq/L, potassium {rng.choice([3.6, 4.1, 4.8])} mEq/L, "
        f"chloride {cl} mEq/L, bicarbonate {hco3} mEq/L and glucose {glucose} mg/dL."
    )
    explanation = (
        f"Anion gap = sodium − (chloride + bicarbonate). Anion gap = {na} − ({cl} + {hco3}) = {value} mEq/L."
    )
    return {
        "Calculator ID": "39",
        "Calculator Name": "Anion Gap",
        "Category": "lab",
        "Question": "What is the patient's anion gap in terms of mEq/L?",
        "Patient Note": note,
        "Relevant Entities": repr(
            {"Sodium": [na, "mEq/L"], "Chloride": [cl, "mEq/L"], "Bicarbonate": [hco3, "mEq/L"]}
        ),
        "Ground Truth Explanation": explanation,
        **_decimal_row(float(value)),
    }


def _ibw(rng: random.Random) -> Row:
    male = rng.random() < 0.5
    inches = round(rng.uniform(60, 76), 1)
    base = 50.0 if male else 45.5
    value = base + 2.3 * (inches - 60)
    sex = "man" if male else "woman"
    note = (
        f"A {rng.choice(_AGES)}-year-old {sex} was seen before surgery. Height {inches} in, weight "
        f"{round(rng.uniform(50, 120), 1)} kg, blood pressure {rng.randint(100, 160)}/{rng.randint(60, 95)} mmHg."
    )
    explanation = (
        f"Ideal body weight (Devine) = {base} kg + 2.3 kg × (height in inches − 60) for a "
        f"{'man' if male else 'woman'}. IBW = {base} + 2.3 × ({inches} − 60) = {value:.3f} kg."
    )
    return {
        "Calculator ID": "10",
        "Calculator Name": "Ideal Body Weight",
        "Category": "physical",
        "Question": "What is the patient's ideal body weight in terms of kg?",
        "Patient Note": note,
        "Relevant Entities": repr({"sex": "Male" if male else "Female", "height": [inches, "in"]}),
        "Ground Truth Explanation": explanation,
        **_decimal_row(value),
    }


CALCULATORS: dict[str, Callable[[random.Random], Row]] = {
    "map": _map,
    "bmi": _bmi,
    "anion_gap": _anion_gap,
    "ibw": _ibw,
}
DEMO_CALCULATORS = ("map", "bmi", "anion_gap")


def make_rows(n: int, seed: int = 0, calculators: tuple[str, ...] = DEMO_CALCULATORS) -> list[Row]:
    """`n` rows cycling through `calculators`, deterministic for a seed."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        row = CALCULATORS[calculators[i % len(calculators)]](rng)
        rows.append(
            {
                "Row Number": str(i + 1),
                "Note ID": f"synthetic-{seed}-{i + 1}",
                "Note Type": "Synthetic",
                **row,
            }
        )
    return rows
