"""Synthetic MedCalc notes: varied patient notes whose gold answer the calculator knowledge base computes.

`make_examples(calculator_ids, n, seed)` writes `n` notes per calculator. Each note mentions every input the
calculator needs in text a model can read ("Blood pressure 132/84 mmHg", "history of hypertension and type 2
diabetes", "creatinine 124 µmol/L"), mixes unit systems (kg/lb, cm/in/m, mg/dL/µmol/L or mmol/L, °C/°F, g/dL/
g/L), and adds distractors (other vitals, labs and history irrelevant to the calculator, in normal ranges so
they never contradict the stated inputs). The same inputs are stored in `metadata["relevant_entities"]` in
MedCalc-Bench's entity format (`[value, 'unit']`, booleans, category strings), so the gold answer is
`get_calculator(id).compute(**calc.from_entities(entities))` and `ehrmind audit` can recompute synthetic rows
exactly as it recomputes the benchmark's.

Input sampling is declared per calculator in `SPECS` (plausible clinical ranges, booleans with realistic
prevalence); `spec_ids()` lists the calculators that have one. Each calculator's spec sits in the module of
this package named like its calculator's module (`notes.lab_renal` for `calculators.lab_renal`, …); the
shared machinery is in `quantities` (units, quantities, distractors), `draft` (`Draft`, `Flag`, the `SPECS`
registry), `render` (note text), `examples` (`make_examples`, `reread`, `withhold_points`) and `benchmark`
(MedCalc-Bench's names and questions). Importing this package imports every spec module, so `SPECS` is full
whichever name is imported first.
"""

from __future__ import annotations

# Imported for their side effect: each registers its specs in SPECS.
from ehrmind.tasks.medcalc.notes import (  # noqa: F401
    dates,
    dosage,
    lab_electrolytes,
    lab_other,
    lab_renal,
    physical,
    scores_risk,
    scores_severity,
)
from ehrmind.tasks.medcalc.notes.benchmark import BENCHMARK
from ehrmind.tasks.medcalc.notes.draft import COMPLAINTS, SPECS, Draft, Flag, NoteSpec, spec_ids
from ehrmind.tasks.medcalc.notes.examples import (
    REASONING_STYLES,
    log,
    make_example,
    make_examples,
    reread,
    withhold_points,
)
from ehrmind.tasks.medcalc.notes.quantities import (
    ALBUMIN,
    ALT,
    AST,
    BICARB,
    BILIRUBIN,
    BMI,
    BUN,
    CALCIUM,
    CHLORIDE,
    CREATININE,
    CRP,
    DISTRACTORS,
    FIO2,
    GCS_TOTAL,
    GLUCOSE,
    HBA1C,
    HDL,
    HEIGHT,
    HEMATOCRIT,
    HEMOGLOBIN,
    HR,
    INR,
    INSULIN,
    LACTATE,
    LIPASE,
    MAGNESIUM,
    PACO2,
    PAO2,
    PH,
    PHOSPHATE,
    PLATELETS,
    POTASSIUM,
    QT,
    RR,
    SODIUM,
    SPO2,
    TEMP,
    TOTAL_CHOLESTEROL,
    TRIGLYCERIDES,
    TSH,
    URINE_CREATININE,
    URINE_OUTPUT,
    URINE_SODIUM,
    WBC,
    WEIGHT,
    Quantity,
    Unit,
)
from ehrmind.tasks.medcalc.notes.render import (
    CLOSINGS,
    DISTRACTOR_HISTORY,
    SETTINGS,
    VISIT_SETTINGS,
    render_note,
)

__all__ = [
    "ALBUMIN", "ALT", "AST", "BENCHMARK", "BICARB", "BILIRUBIN", "BMI", "BUN", "CALCIUM", "CHLORIDE",
    "CLOSINGS", "COMPLAINTS", "CREATININE", "CRP", "DISTRACTORS", "DISTRACTOR_HISTORY", "Draft", "FIO2",
    "Flag", "GCS_TOTAL", "GLUCOSE", "HBA1C", "HDL", "HEIGHT", "HEMATOCRIT", "HEMOGLOBIN", "HR", "INR",
    "INSULIN", "LACTATE", "LIPASE", "MAGNESIUM", "NoteSpec", "PACO2", "PAO2", "PH", "PHOSPHATE", "PLATELETS",
    "POTASSIUM", "QT", "Quantity", "REASONING_STYLES", "RR", "SETTINGS", "SODIUM", "SPECS", "SPO2", "TEMP",
    "TOTAL_CHOLESTEROL", "TRIGLYCERIDES", "TSH", "URINE_CREATININE", "URINE_OUTPUT", "URINE_SODIUM", "Unit",
    "VISIT_SETTINGS", "WBC", "WEIGHT", "log", "make_example", "make_examples", "render_note", "reread",
    "spec_ids", "withhold_points",
]  # fmt: skip
