"""Note specs for the calculators in `calculators/lab_other.py` (LDL, HOMA-IR, FIB-4, MELD Na, Framingham)."""

from __future__ import annotations

from typing import Any

from ehrmind.tasks.medcalc.notes.draft import Draft, Flag, _spec
from ehrmind.tasks.medcalc.notes.quantities import (
    _LIVER_LABS,
    ALT,
    AST,
    BILIRUBIN,
    CREATININE,
    GLUCOSE,
    HDL,
    INR,
    INSULIN,
    PLATELETS,
    SODIUM,
    TOTAL_CHOLESTEROL,
    TRIGLYCERIDES,
)


@_spec(44, valid=lambda e: _ldl_ok(e))
def _ldl(d: Draft) -> None:
    d.patient(age_entity=False, sex_entity=False)
    d.complaints = ("a routine lipid check", "a cardiovascular risk assessment", "a follow-up visit")
    d.q(TOTAL_CHOLESTEROL, 140, 320)
    d.q(HDL, 25, 95)
    d.q(TRIGLYCERIDES, 45, 380)


def _mgdl(e: dict[str, Any], name: str, per_mmol: float) -> float:
    v = e[name]
    return float(v[0]) * (per_mmol if v[1] == "mmol/L" else 1.0)


def _ldl_ok(e: dict[str, Any]) -> bool:
    ldl = (
        _mgdl(e, "Total cholesterol", 38.67)
        - _mgdl(e, "high-density lipoprotein cholesterol", 38.67)
        - _mgdl(e, "Triglycerides", 88.57) / 5
    )
    return 40 <= ldl <= 240


@_spec(31)
def _homa(d: Draft) -> None:
    d.patient(age_entity=False, sex_entity=False)
    d.complaints = ("an evaluation of insulin resistance", "weight gain", "a metabolic work-up")
    d.q(GLUCOSE, 70, 260, name="fasting glucose")
    d.q(INSULIN, 2, 45)


@_spec(19)
def _fib4(d: Draft) -> None:
    d.patient((25, 85), sex_entity=False)
    d.complaints = ("abnormal liver tests", "fatigue", "a hepatology referral")
    d.q(AST, 15, 350)
    d.q(ALT, 10, 350)
    d.q(PLATELETS, 60000, 400000)


@_spec(23)
def _meld_na(d: Draft) -> None:
    d.patient((25, 80), age_entity=False, sex_entity=False)
    d.complaints = ("increasing abdominal girth", "jaundice", "confusion")
    d.no_distractors |= _LIVER_LABS
    d.say("history", "{He} has known cirrhosis.")
    d.q(CREATININE, 0.6, 4.0, units=[0])
    d.q(BILIRUBIN, 0.5, 18)
    d.q(INR, 0.9, 3.5)
    d.q(SODIUM, 120, 145)
    dialysis = Flag(
        "Dialysis at least twice in the past week",
        0.1,
        ("{He} underwent hemodialysis three times in the past week.",),
        ("{He} has not required dialysis.",),
        "other",
    )
    v = d.flag(dialysis)
    cvvhd = "Continuous veno-venous hemodialysis for ≥24 hours in the past week"
    d.entities[cvvhd] = False
    if v:  # CVVHD adds nothing once dialysis is counted
        d.mentions[cvvhd] = d.mentions[dialysis.entity]
    else:
        d.flag(
            Flag(
                "Continuous veno-venous hemodialysis for ≥24 hours in the past week",
                0.05,
                ("{He} was on continuous veno-venous hemodialysis for more than 24 hours this week.",),
                ("No continuous renal replacement therapy was given.",),
                "other",
            )
        )


@_spec(46)
def _framingham(d: Draft) -> None:
    d.patient((30, 79))
    d.complaints = ("a cardiovascular risk assessment", "a routine physical examination")
    d.bp((105, 180), (60, 100), sbp_entity=True, dbp_entity=False)
    d.q(TOTAL_CHOLESTEROL, 140, 300, units=[0])
    d.q(HDL, 25, 90, units=[0])
    d.flag(
        Flag(
            "Smoker",
            0.25,
            ("{He} smokes a pack of cigarettes a day.",),
            ("{He} has never smoked.",),
            "social",
        )
    )
    d.flag(
        Flag(
            "Blood pressure being treated with medicines",
            0.4,
            ("{He} takes amlodipine for blood pressure.", "{His} hypertension is treated with lisinopril."),
            ("{He} takes no antihypertensive medication.",),
            "meds",
        )
    )
