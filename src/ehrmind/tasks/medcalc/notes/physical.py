"""Note specs for the calculators in `calculators/physical.py` (blood pressure, body size, fluids, QTc)."""

from __future__ import annotations

from ehrmind.tasks.medcalc.notes.draft import Draft, _spec
from ehrmind.tasks.medcalc.notes.quantities import HEIGHT, HR, QT, WEIGHT, _num


@_spec(5)
def _map(d: Draft) -> None:
    d.patient(age_entity=False, sex_entity=False)
    d.bp((85, 190), (45, 115))


@_spec(6, 60)
def _bmi_bsa(d: Draft) -> None:
    d.patient(age_entity=False, sex_entity=False)
    d.q(WEIGHT, 42, 150)
    d.q(HEIGHT, 148, 198)


@_spec(10)
def _ibw(d: Draft) -> None:
    d.patient(age_entity=False)
    lo, hi = (160, 198) if d.sex == "Male" else (153, 185)
    d.q(HEIGHT, lo, hi)


@_spec(62)
def _abw(d: Draft) -> None:
    d.patient(age_entity=False)
    lo, hi = (160, 198) if d.sex == "Male" else (153, 185)
    d.q(HEIGHT, lo, hi)
    d.q(WEIGHT, 50, 160)


@_spec(61)
def _target_weight(d: Draft) -> None:
    d.patient(age_entity=False, sex_entity=False)
    d.complaints = ("a weight management consultation", "a nutrition follow-up visit")
    d.q(HEIGHT, 150, 198)
    target = round(d.rng.uniform(19.0, 27.0), 1)
    d.entities["Body Mass Index (BMI)"] = [target, "kg/m^2"]
    s = d.rng.choice(
        [
            f"The agreed target BMI is {_num(target)} kg/m².",
            f"{{His}} dietitian set a target body mass index of {_num(target)} kg/m².",
        ]
    )
    d.say("other", s, "Body Mass Index (BMI)")
    d.keys.add("bmi")


@_spec(22)
def _maintenance_fluids(d: Draft) -> None:
    if d.rng.random() < 0.35:  # a child
        w = d.rng.uniform(9, 38)
        age = min(12, max(1, round((w - 8) / 2.3)))  # roughly the weight-for-age of a child
        d.patient((age, age), age_entity=False, sex_entity=False)
        d.no_distractors |= {"height", "bp", "hr", "rr"}
    else:
        w = d.rng.uniform(45, 120)
        d.patient(age_entity=False, sex_entity=False)
    d.complaints = ("poor oral intake", "vomiting and dehydration", "a planned surgical admission")
    d.q(WEIGHT, value=w)


@_spec(11, 56, 57, 58, 59)
def _qtc(d: Draft) -> None:
    d.patient(age_entity=False, sex_entity=False)
    d.complaints = ("palpitations", "a syncopal episode", "a preoperative evaluation", "dizziness")
    hr = d.q(HR, 45, 140)
    # a plausible QT for the rate: QTc 370-500 ms scaled back by sqrt(RR)
    d.q(QT, value=d.rng.uniform(370, 500) * (60 / float(hr)) ** 0.5)
