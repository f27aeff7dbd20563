"""Note specs for the calculators in `calculators/dosage.py` (steroid conversion, MME): template notes."""

from __future__ import annotations

from ehrmind.tasks.medcalc.notes.benchmark import BENCHMARK
from ehrmind.tasks.medcalc.notes.draft import Draft, _join, _spec
from ehrmind.tasks.medcalc.notes.quantities import _num

_STEROIDS = {  # name -> plausible dose range (mg)
    "Betamethasone IV": (0.6, 12),
    "Cortisone PO": (25, 300),
    "Dexamethasone IV": (0.5, 16),
    "Dexamethasone PO": (0.5, 16),
    "Hydrocortisone IV": (20, 300),
    "Hydrocortisone PO": (10, 200),
    "MethylPrednisoLONE IV": (4, 125),
    "MethylPrednisoLONE PO": (4, 64),
    "PrednisoLONE PO": (5, 60),
    "PredniSONE PO": (5, 60),
    "Triamcinolone IV": (4, 60),
}


@_spec(24)
def _steroid(d: Draft) -> None:
    d.patient(age_entity=False, sex_entity=False)
    d.template_only = True
    source, target = d.rng.sample(sorted(_STEROIDS), 2)
    lo, hi = _STEROIDS[source]
    dose = round(d.rng.uniform(lo, hi), d.rng.choice([0, 1, 2]))
    dose = int(dose) if float(dose).is_integer() else dose
    d.entities["input steroid"] = [source, dose, "mg"]
    d.entities["target steroid"] = target
    text = d.rng.choice(
        [
            f"Patient has taken {_num(dose)} mg of {source}.",
            f"The patient is currently receiving {_num(dose)} mg of {source} daily.",
        ]
    )
    d.say("presentation", text, "input steroid")
    d.mentions["target steroid"] = target
    d.question = BENCHMARK[24][2].format(source=source, target=target)


_OPIOIDS = {  # name -> (unit, dose choices)
    "Codeine": ("mg", (15, 30, 60)),
    "FentaNYL buccal": ("µg", (100, 200, 400)),
    "HYDROcodone": ("mg", (5, 7.5, 10)),
    "HYDROmorphone": ("mg", (2, 4, 8)),
    "Methadone": ("mg", (5, 10, 20)),
    "Morphine": ("mg", (15, 30, 60)),
    "OxyCODONE": ("mg", (5, 10, 20)),
    "OxyMORphone": ("mg", (5, 10)),
    "Tapentadol": ("mg", (50, 75, 100)),
    "TraMADol": ("mg", (50, 100)),
}


@_spec(49)
def _mme(d: Draft) -> None:
    d.patient(age_entity=False, sex_entity=False)
    d.template_only = True
    drugs = d.rng.sample(sorted(_OPIOIDS), d.rng.randint(1, 3))
    parts = []
    for drug in drugs:
        unit, doses = _OPIOIDS[drug]
        dose = d.rng.choice(doses)
        per_day = d.rng.randint(1, 4)
        d.entities[f"{drug} Dose"] = [dose, unit]
        d.entities[f"{drug} Dose Per Day"] = [per_day, "per day"]
        times = "time" if per_day == 1 else "times"
        part = f"{_num(dose)} {unit} of {drug} {per_day} {times} a day"
        parts.append(part)
        d.mentions[f"{drug} Dose"] = d.mentions[f"{drug} Dose Per Day"] = part
    d.say("presentation", f"The patient takes {_join(parts)}.")
