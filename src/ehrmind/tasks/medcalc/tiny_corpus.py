"""MedCalc's share of the small local model's tokenizer corpus (`ehrmind.train.tiny.CorpusTexts`).

The small random model of `ehrmind demo`, `ehrmind study`, `ehrmind tiny-model` and the tests trains its BPE
tokenizer on a generic clinical corpus plus these texts, so MedCalc's prompts, calculator names and answer
formats are whole tokens. Their exact content and order fix the tokenizer's vocabulary and merges — and so
every number the demo publishes: `tests/test_tiny.py` pins a hash of the corpus they make; a change here is a
new tiny model.
"""

from __future__ import annotations

import json
import random

from ehrmind.contract import PAPER_PREFILL
from ehrmind.tasks.medcalc.prompts import DIRECT_SYSTEM, REASONING_SYSTEM, USER_TEMPLATE
from ehrmind.train.tiny import CorpusTexts, random_date

TOKENIZER_CALCULATOR_NAMES = (
    "Creatinine Clearance (Cockcroft-Gault Equation)",
    "CKD-EPI Equations for Glomerular Filtration Rate",
    "MDRD GFR Equation",
    "CHA2DS2-VASc Score for Atrial Fibrillation Stroke Risk",
    "HAS-BLED Score for Major Bleeding Risk",
    "Wells' Criteria for Pulmonary Embolism",
    "Wells' Criteria for DVT",
    "MELD Na (UNOS/OPTN)",
    "Child-Pugh Score for Cirrhosis Mortality",
    "Mean Arterial Pressure (MAP)",
    "Body Mass Index (BMI)",
    "Body Surface Area Calculator",
    "Anion Gap",
    "Delta Gap",
    "Albumin Corrected Anion Gap",
    "Calcium Correction for Hypoalbuminemia",
    "Sodium Correction for Hyperglycemia",
    "Serum Osmolality",
    "Free Water Deficit",
    "Ideal Body Weight",
    "Adjusted Body Weight",
    "Target weight",
    "Maintenance Fluids Calculations",
    "QTc Bazett Calculator",
    "QTc Fridericia Calculator",
    "LDL Calculated",
    "Glasgow Coma Score (GCS)",
    "APACHE II Score",
    "Centor Score (Modified/McIsaac) for Strep Pharyngitis",
    "CURB-65 Score for Pneumonia Severity",
    "FeverPAIN Score for Strep Pharyngitis",
    "HEART Score for Major Cardiac Events",
    "Caprini Score for Venous Thromboembolism",
    "Revised Cardiac Risk Index for Pre-Operative Risk",
    "Fibrosis-4 (FIB-4) Index for Liver Fibrosis",
    "Glasgow-Blatchford Bleeding Score (GBS)",
    "Sequential Organ Failure Assessment (SOFA) Score",
    "Morphine Milligram Equivalents (MME) Calculator",
    "Steroid Conversion Calculator",
    "Estimated Due Date",
    "Estimated Date of Conception",
    "Estimated Gestational Age",
    "HOMA-IR (Homeostatic Model Assessment for Insulin Resistance)",
    "Framingham Risk Score",
    "PERC Rule for Pulmonary Embolism",
    "Charlson Comorbidity Index (CCI)",
)
"""The calculator names the tokenizer learns, in this order: 46 of the registry's 55 calculators
(`ehrmind.tasks.medcalc.calculators`), three spelled as they were when the tiny model was first published
("Caprini Score for Venous Thromboembolism", "Estimated Date of Conception", "Framingham Risk Score").
Frozen rather than read from the registry, so a calculator added or renamed there leaves the tiny model as
it is."""


def prompt_texts() -> tuple[str, ...]:
    """MedCalc's prompt texts: both system prompts, the user template's headers and the paper's prefill."""
    headers = tuple(line for line in USER_TEMPLATE.split("\n") if line and "{" not in line)
    return (REASONING_SYSTEM, DIRECT_SYSTEM, *headers, PAPER_PREFILL.split("\n")[0])


def question_lines() -> tuple[str, ...]:
    """A task line naming each calculator, as MedCalc's user prompt shows it."""
    return tuple(
        f"Here is the task:\nUsing the {calc}, what is the patient's result?"
        for calc in TOKENIZER_CALCULATOR_NAMES
    )


def worked_answers(rng: random.Random) -> list[str]:
    """One worked answer in MedCalc's output contract, drawn from `rng`: a Cockcroft-Gault clearance, a mean
    arterial pressure, an anion gap, a gestational age or a point sum; with or without its reasoning."""
    kind = rng.randrange(5)
    if kind == 3:
        weeks, days = rng.randint(4, 41), rng.randint(0, 6)
        steps = (
            f"The last menstrual period was {random_date(rng)} and today is {random_date(rng)}, which is "
            f"{weeks * 7 + days} days, i.e. {weeks} weeks and {days} days."
        )
        return [f'<think>{steps}</think>\n<answer>{{"answer": ["{weeks} weeks", "{days} days"]}}</answer>']
    value, steps = _computed(kind, rng)
    answer = json.dumps({"answer": value})
    if rng.random() < 0.3:
        return [f"<answer>{answer}</answer>"]
    return [f"<think>{steps}</think>\n<answer>{answer}</answer>"]


def _computed(kind: int, rng: random.Random) -> tuple[float | int, str]:
    """A numeric answer and its reasoning, for `worked_answers`' kinds 0, 1, 2 and 4."""
    if kind == 0:
        age, weight, cr = rng.randint(20, 90), round(rng.uniform(45, 120), 1), round(rng.uniform(0.6, 4.0), 2)
        value: float | int = round((140 - age) * weight / (72 * cr), 3)
        return value, (
            f"The patient is {age} years old, weighs {weight} kg and has a serum creatinine of {cr} mg/dL. "
            f"CrCl = (140 − {age}) × {weight} / (72 × {cr}) = {value} mL/min."
        )
    if kind == 1:
        sbp, dbp = rng.randint(90, 180), rng.randint(50, 110)
        value = round((sbp + 2 * dbp) / 3, 3)
        return value, f"MAP = (SBP + 2 × DBP) / 3 = ({sbp} + 2 × {dbp}) / 3 = {value} mmHg."
    if kind == 2:
        na, cl, hco3 = rng.randint(128, 148), rng.randint(92, 112), rng.randint(12, 30)
        value = na - (cl + hco3)
        return value, f"Anion gap = Na − (Cl + HCO3) = {na} − ({cl} + {hco3}) = {value} mEq/L."
    points = [rng.randint(0, 2) for _ in range(rng.randint(3, 7))]
    value = sum(points)
    return value, "Score: " + " + ".join(str(p) for p in points) + f" = {value} points."


def tiny_corpus() -> CorpusTexts:
    """MedCalc's texts for `ehrmind.train.tiny.build_tiny_model(..., texts=tiny_corpus())`."""
    return CorpusTexts(prompts=prompt_texts(), lines=question_lines(), generate=worked_answers)
