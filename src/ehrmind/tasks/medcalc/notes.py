"""Synthetic MedCalc notes: varied patient notes whose gold answer the calculator knowledge base computes.

`make_examples(calculator_ids, n, seed)` writes `n` notes per calculator. Each note mentions every input the
calculator needs in text a model can read ("Blood pressure 132/84 mmHg", "history of hypertension and type 2
diabetes", "creatinine 124 µmol/L"), mixes unit systems (kg/lb, cm/in/m, mg/dL/µmol/L or mmol/L, °C/°F, g/dL/
g/L), and adds distractors (other vitals, labs and history irrelevant to the calculator, in normal ranges so
they never contradict the stated inputs). The same inputs are stored in `metadata["relevant_entities"]` in
MedCalc-Bench's own entity format (`[value, 'unit']`, booleans, category strings), so the gold answer is
`get_calculator(id).compute(**calc.from_entities(entities))` and `ehrmind audit` can recompute synthetic rows
exactly as it recomputes the benchmark's.

Input sampling is declared per calculator in `SPECS` (plausible clinical ranges, booleans with realistic
prevalence); `spec_ids()` lists the calculators that have one.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ehrmind.errors import ConfigError
from ehrmind.tasks.medcalc.schema import CATEGORY_ALIASES, output_type_for
from ehrmind.tasks.medcalc.task import parse_gold
from ehrmind.types import Example

log = logging.getLogger(__name__)

# MedCalc-Bench v1.0's calculator names, categories and questions (test set wording), for all 55 ids.
BENCHMARK: dict[int, tuple[str, str, str]] = {
    2: (
        "Creatinine Clearance (Cockcroft-Gault Equation)",
        "lab",
        "What is the patient's Creatinine Clearance using the Cockroft-Gault Equation in terms of mL/min? You "
        "should use the patient's adjusted body weight in kg instead of the patient's actual body weight if the "
        "patient is overweight or obese based on their BMI. If the patient's BMI's normal, set their adjusted "
        "body weight to the minimum of the ideal body and actual weight. If the patient is underweight, please "
        "set their adjusted body weight to their actual body weight.",
    ),
    3: (
        "CKD-EPI Equations for Glomerular Filtration Rate",
        "lab",
        "Using the 2021 CKD-EPI Creatinine equation, what is the patient's Glomerular Filtration Rate (GFR) in "
        "terms of mL/min/1.73 m²?",
    ),
    4: (
        "CHA2DS2-VASc Score for Atrial Fibrillation Stroke Risk",
        "risk",
        "What is the patient's CHA2DS2-VASc Score?",
    ),
    5: ("Mean Arterial Pressure (MAP)", "physical", "What is patient's mean arterial pressure in mm Hg?"),
    6: (
        "Body Mass Index (BMI)",
        "physical",
        "What is the patient's body mass mass index (BMI)? Your answer should be in terms of kg/m².",
    ),
    7: (
        "Calcium Correction for Hypoalbuminemia",
        "lab",
        "Using the Calcium Correction for Hypoalbuminemia formula, what is the patient's corrected calcium in "
        "mg/dL? Your may set your normal albumin concentration to be 4 g/dL.",
    ),
    8: (
        "Wells' Criteria for Pulmonary Embolism",
        "risk",
        "What is the patient’s score of Wells' criteria for Pulmonary Embolism?",
    ),
    9: (
        "MDRD GFR Equation",
        "lab",
        "Using the MDRD GFR equation, what is the patient's Glomerular Filtration Rate (GFR) in terms of "
        "mL/min/1.73 m²?",
    ),
    10: (
        "Ideal Body Weight",
        "physical",
        "Using the Ideal Body Weight Formula, what is the patient's ideal body weight in terms of kg?",
    ),
    11: (
        "QTc Bazett Calculator",
        "physical",
        "Using the Bazett Formula for corrected QT interval, what is the patient's corrected QT interval in msec?",
    ),
    13: (
        "Estimated Due Date",
        "date",
        "Using Naegele's Rule for estimated due date based on the last menstrual period and cycle length, what "
        "is the the patient's estimated due date? Your response should be in the format of M/D/Y (ie "
        "08/31/2023, 07/03/2000) with just the date and not other text.",
    ),
    15: ("Child-Pugh Score for Cirrhosis Mortality", "severity", "What is the patient's Child-Pugh Score?"),
    16: (
        "Wells' Criteria for DVT",
        "risk",
        "What is the patient's Wells' criteria score for Deep Vein Thrombosis?",
    ),
    17: (
        "Revised Cardiac Risk Index for Pre-Operative Risk",
        "risk",
        "What is the patient's Cardiac Risk Index based on the revised Cardiac Risk Index for pre-operative "
        "risk rule?",
    ),
    18: ("HEART Score for Major Cardiac Events", "risk", "What is the patient's HEART score?"),
    19: (
        "Fibrosis-4 (FIB-4) Index for Liver Fibrosis",
        "lab",
        "What is the patient's Fibrosis-4 (FIB-4) index?",
    ),
    20: (
        "Centor Score (Modified/McIsaac) for Strep Pharyngitis",
        "severity",
        "What is the patient's Centor Score?",
    ),
    21: ("Glasgow Coma Score (GCS)", "severity", "What is the patient's Glasgow Coma Score?"),
    22: (
        "Maintenance Fluids Calculations",
        "physical",
        "Based on the patient's weight, what is the patient's maintenance fluid in mL/hr?",
    ),
    23: ("MELD Na (UNOS/OPTN)", "lab", "What is the patient's MELDA Na score?"),
    24: (
        "Steroid Conversion Calculator",
        "dosage",
        "Based on the patient's dose of {source}, what is the equivalent dosage in mg of {target}?",
    ),
    25: ("HAS-BLED Score for Major Bleeding Risk", "risk", "What is the patient's HAS-BLED score?"),
    26: (
        "Sodium Correction for Hyperglycemia",
        "lab",
        "What is the patient's corrected sodium concentration in terms of mEq/L?",
    ),
    27: (
        "Glasgow-Blatchford Bleeding Score (GBS)",
        "risk",
        "What is the patient's Glasgow-Blatchford Bleeding score?",
    ),
    28: ("APACHE II Score", "risk", "What is the patient's APACHE II score?"),
    29: (
        "PSI Score: Pneumonia Severity Index for CAP",
        "severity",
        "What is the patient's Pneumonia Severity Index (PSI)?",
    ),
    30: ("Serum Osmolality", "lab", "What is the patient's serum osmolality in terms of mOsm/kg?"),
    31: (
        "HOMA-IR (Homeostatic Model Assessment for Insulin Resistance)",
        "lab",
        "What is the patient's HOMA-IR score?",
    ),
    32: (
        "Charlson Comorbidity Index (CCI)",
        "risk",
        "What is the patient's Charlson Comorbidity Index (CCI)?",
    ),
    33: ("FeverPAIN Score for Strep Pharyngitis", "diagnosis", "What is the patient's FeverPAIN score?"),
    36: (
        "Caprini Score for Venous Thromboembolism (2005)",
        "risk",
        "What is the patient's Caprini Score for Venous Thromboembolism?",
    ),
    38: (
        "Free Water Deficit",
        "lab",
        "What is the patient's free water deficit in terms of liters? You may take the ideal sodium "
        "concentration to be 140 mEq/L.",
    ),
    39: ("Anion Gap", "lab", "What is the patient's anion gap in terms of mEq/L?"),
    40: (
        "Fractional Excretion of Sodium (FENa)",
        "lab",
        "What is the patient's Fractional Excretion of Sodium (FENa)? Please return your answer as a "
        "percentage value.",
    ),
    43: (
        "Sequential Organ Failure Assessment (SOFA) Score",
        "risk",
        "What is the patient's Sequential Organ Failure Assessment (SOFA) Score?",
    ),
    44: (
        "LDL Calculated",
        "lab",
        "What is the patient's LDL cholestrol concentration? Please outuput your answer in terms of mg/dL.",
    ),
    45: ("CURB-65 Score for Pneumonia Severity", "risk", "What is the patient's CURB-65 score?"),
    46: (
        "Framingham Risk Score for Hard Coronary Heart Disease",
        "lab",
        "What is the patient's Framingham Risk Score?",
    ),
    48: (
        "PERC Rule for Pulmonary Embolism",
        "diagnosis",
        "What are the number of criteria met for the PERC Rule for Pulmonary Embolism (PE)?",
    ),
    49: (
        "Morphine Milligram Equivalents (MME) Calculator",
        "dosage",
        "Based on the number of doses per day and the quantity of different doses, what is the patient's daily "
        "Morphine Miligram Equivalents (MME)?",
    ),
    51: ("SIRS Criteria", "diagnosis", "What is the number of SIRS critiera met by the patient?"),
    56: (
        "QTc Fridericia Calculator",
        "physical",
        "Using the Fridericia Formula for corrected QT interval, what is the patient's corrected QT interval in "
        "terms of msec?",
    ),
    57: (
        "QTc Framingham Calculator",
        "physical",
        "Using the Framingham Formula for corrected QT interval, what is the patient's corrected QT interval in "
        "terms of msec?",
    ),
    58: (
        "QTc Hodges Calculator",
        "physical",
        "Using the Hodges Formula for corrected QT interval, what is the patient's corrected QT interval in "
        "terms of msec?",
    ),
    59: (
        "QTc Rautaharju Calculator",
        "physical",
        "Using the Rautaharju Formula for corrected QT interval, what is the patient's corrected QT interval in "
        "terms of msec?",
    ),
    60: (
        "Body Surface Area Calculator",
        "physical",
        "What is the patient's body surface area? Please output your answer in terms of m².",
    ),
    61: (
        "Target weight",
        "physical",
        "Based on the patient's height and target BMI, what is the patient's target weight in kg?",
    ),
    62: (
        "Adjusted Body Weight",
        "physical",
        "Using the adjusted body weight formula, what is the patient's adjusted body weight in terms of kg?",
    ),
    63: ("Delta Gap", "lab", "What is the patient's delta gap in mEq/L?"),
    64: ("Delta Ratio", "lab", "What is the patient's delta ratio?"),
    65: ("Albumin Corrected Anion Gap", "lab", "What is the patient's albumin corrected anion gap in mEq/L?"),
    66: ("Albumin Corrected Delta Gap", "lab", "What is the patient's albumin corrected delta gap in mEq/L?"),
    67: ("Albumin Corrected Delta Ratio", "lab", "What is the patient's albumin corrected delta ratio?"),
    68: (
        "Estimated of Conception",
        "date",
        "Based on the patient's last menstrual period and cycle length, what is the the patient's estimated date "
        "of conception? Your answer should be in the format of M/D/Y (ie 08/31/2023, 07/03/2000) with just the "
        "date and not other text.",
    ),
    69: (
        "Estimated Gestational Age",
        "date",
        "Based on the patient's last menstrual period, what is the patient's estimated gestational age? Your "
        "answer should be a tuple, specifying the number of weeks and days (i.e. (4 weeks, 3 days), (0 weeks, 5 "
        "days), (1 week, 5 days), (8 weeks, 0 days)).",
    ),
}


# ============================================================================================ quantities
def _num(v: float | int) -> str:
    """A number as a note writes it: no trailing zeros, no exponent."""
    if isinstance(v, int):
        return str(v)
    s = f"{v:.6f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


@dataclass(frozen=True)
class Unit:
    """One way to write a quantity: its unit in Relevant Entities and in the note, and the conversion from
    the quantity's canonical unit (value = canonical × factor + offset, rounded to `places`)."""

    entity: str | None
    """The unit string stored in Relevant Entities (MedCalc-Bench's spelling); None stores a bare number."""
    text: str
    """The unit as the note writes it after the number."""
    factor: float = 1.0
    offset: float = 0.0
    places: int = 0
    show: Callable[[float], str] | None = None
    """Custom rendering of the value with its unit (e.g. a count as '9.4 × 10^3/µL')."""

    def convert(self, canonical: float) -> float | int:
        v = round(canonical * self.factor + self.offset, self.places)
        return int(v) if self.places <= 0 else float(v)

    def render(self, value: float | int) -> str:
        if self.show is not None:
            return self.show(value)
        if not self.text:
            return _num(value)
        sep = "" if self.text.startswith("%") else " "
        return f"{_num(value)}{sep}{self.text}"


@dataclass(frozen=True)
class Quantity:
    key: str
    """What it measures; a calculator's inputs are never repeated as distractors."""
    entity: str
    """MedCalc-Bench's entity name."""
    names: tuple[str, str]
    """Long and short name ("heart rate", "HR")."""
    units: tuple[Unit, ...]
    """units[0] is the canonical unit."""
    normal: tuple[float, float]
    """A normal range in the canonical unit (distractors are drawn from it)."""
    section: str = "labs"
    """vitals, body or labs."""


def _u(entity: str | None, text: str | None = None, factor: float = 1.0, places: int = 0, **kw: Any) -> Unit:
    return Unit(entity, entity if text is None else text, factor=factor, places=places, **kw)


def _count_thousands(v: float) -> str:
    return f"{_num(round(v / 1000, 1))} × 10^3/µL"


def _count_comma(v: float) -> str:
    return f"{int(round(v)):,}/µL"


def _count_si(v: float) -> str:
    return f"{_num(round(v / 1000, 1))} × 10⁹/L"


HR = Quantity(
    "hr",
    "Heart Rate or Pulse",
    ("heart rate", "HR"),
    (_u("beats per minute"), _u("beats per minute", "bpm"), _u("beats per minute", "beats/min")),
    (62, 96),
    "vitals",
)
RR = Quantity(
    "rr",
    "respiratory rate",
    ("respiratory rate", "RR"),
    (_u("breaths per minute"), _u("breaths per minute", "breaths/min")),
    (12, 20),
    "vitals",
)
TEMP = Quantity(
    "temp",
    "Temperature",
    ("temperature", "T"),
    (_u("degrees celsius", "°C", places=1), Unit("degrees fahrenheit", "°F", 1.8, 32.0, 1)),
    (36.4, 37.3),
    "vitals",
)
SPO2 = Quantity(
    "spo2",
    "O₂ saturation percentage",
    ("oxygen saturation", "SpO2"),
    (_u("%", "% on room air"),),
    (95, 99),
    "vitals",
)
WEIGHT = Quantity(
    "weight",
    "weight",
    ("weight", "Wt"),
    (_u("kg", places=1), _u("lbs", "lb", 2.20462, 1)),
    (55, 95),
    "body",
)
HEIGHT = Quantity(
    "height",
    "height",
    ("height", "Ht"),
    (_u("cm"), _u("in", "in", 1 / 2.54), _u("m", "m", 0.01, 2)),
    (155, 188),
    "body",
)
_MEQ = (_u("mEq/L"), _u("mmol/L"))
SODIUM = Quantity("sodium", "Sodium", ("sodium", "Na"), _MEQ, (136, 144))
POTASSIUM = Quantity(
    "potassium", "Potassium", ("potassium", "K"), (_u("mEq/L", places=1), _u("mmol/L", places=1)), (3.6, 4.9)
)
CHLORIDE = Quantity("chloride", "Chloride", ("chloride", "Cl"), _MEQ, (98, 107))
BICARB = Quantity("bicarbonate", "Bicarbonate", ("bicarbonate", "HCO3"), _MEQ, (22, 28))
BUN = Quantity(
    "bun",
    "Blood Urea Nitrogen (BUN)",
    ("blood urea nitrogen", "BUN"),
    (_u("mg/dL"), _u("mmol/L", factor=1 / 2.802, places=1)),
    (8, 20),
)
CREATININE = Quantity(
    "creatinine",
    "creatinine",
    ("creatinine", "Cr"),
    (_u("mg/dL", places=2), _u("µmol/L", factor=88.4)),
    (0.7, 1.1),
)
GLUCOSE = Quantity(
    "glucose",
    "Glucose",
    ("glucose", "Glu"),
    (_u("mg/dL"), _u("mmol/L", factor=1 / 18.016, places=1)),
    (75, 110),
)
CALCIUM = Quantity(
    "calcium",
    "Calcium",
    ("calcium", "Ca"),
    (_u("mg/dL", places=1), _u("mmol/L", factor=1 / 4.008, places=2)),
    (8.7, 10.1),
)
ALBUMIN = Quantity(
    "albumin", "Albumin", ("albumin", "Alb"), (_u("g/dL", places=1), _u("g/L", factor=10)), (3.6, 4.8)
)
_CHOL = (_u("mg/dL"), _u("mmol/L", factor=1 / 38.67, places=2))
TOTAL_CHOLESTEROL = Quantity("tc", "Total cholesterol", ("total cholesterol", "TC"), _CHOL, (150, 199))
HDL = Quantity("hdl", "high-density lipoprotein cholesterol", ("HDL cholesterol", "HDL"), _CHOL, (40, 70))
TRIGLYCERIDES = Quantity(
    "tg",
    "Triglycerides",
    ("triglycerides", "TG"),
    (_u("mg/dL"), _u("mmol/L", factor=1 / 88.57, places=2)),
    (70, 150),
)
HEMOGLOBIN = Quantity("hgb", "Hemoglobin", ("hemoglobin", "Hgb"), (_u("g/dL", places=1),), (12.5, 15.5))
WBC = Quantity(
    "wbc",
    "White blood cell count",
    ("white blood cell count", "WBC"),
    (_u("µL", places=-2, show=_count_comma), _u("µL", places=-2, show=_count_thousands)),
    (5000, 9500),
)
PLATELETS = Quantity(
    "platelets",
    "Platelet count",
    ("platelet count", "Plt"),
    (_u("µL", places=-3, show=_count_comma), _u("µL", places=-3, show=_count_thousands)),
    (160000, 380000),
)
AST = Quantity("ast", "Aspartate aminotransferase", ("AST", "AST"), (_u("U/L"),), (14, 35))
ALT = Quantity("alt", "Alanine aminotransferase", ("ALT", "ALT"), (_u("U/L"),), (10, 38))
BILIRUBIN = Quantity(
    "bilirubin",
    "Bilirubin",
    ("total bilirubin", "T. bili"),
    (_u("mg/dL", places=1), _u("µmol/L", factor=17.1)),
    (0.3, 1.0),
)
INR = Quantity("inr", "international normalized ratio", ("INR", "INR"), (_u(None, "", places=1),), (0.9, 1.1))
HEMATOCRIT = Quantity("hct", "Hematocrit", ("hematocrit", "Hct"), (_u("%"),), (37, 47))
PH = Quantity("ph", "pH", ("arterial pH", "pH"), (_u(None, "", places=2),), (7.36, 7.44))
PAO2 = Quantity(
    "pao2",
    "Partial pressure of oxygen (PaO₂) for Apache II",
    ("PaO2", "PaO2"),
    (_u("mm Hg", "mmHg"),),
    (80, 100),
)
PACO2 = Quantity("paco2", "PaCO₂", ("PaCO2", "PaCO2"), (_u("mm hg", "mmHg"),), (36, 44))
FIO2 = Quantity("fio2", "FiO₂", ("FiO2", "FiO2"), (_u("%"),), (21, 21), "vitals")
INSULIN = Quantity("insulin", "Insulin", ("fasting insulin", "insulin"), (_u("µIU/mL", places=1),), (3, 15))
URINE_SODIUM = Quantity("urine_sodium", "Urine sodium", ("urine sodium", "UNa"), _MEQ, (40, 120))
URINE_CREATININE = Quantity(
    "urine_creatinine", "Urine creatinine", ("urine creatinine", "UCr"), (_u("mg/dL", places=1),), (40, 150)
)
QT = Quantity("qt", "QT interval", ("QT interval", "QT"), (_u("msec"), _u("msec", "ms")), (360, 440), "ecg")
BMI = Quantity(
    "bmi",
    "Body Mass Index (BMI)",
    ("body mass index", "BMI"),
    (_u("kg/m^2", "kg/m²", places=1),),
    (20, 27),
    "body",
)
GCS_TOTAL = Quantity(
    "gcs", "Glasgow Coma Score", ("Glasgow Coma Scale score", "GCS"), (_u(None, ""),), (15, 15), "vitals"
)
URINE_OUTPUT = Quantity("urine_output", "Urine Output", ("urine output", "UOP"), (_u("mL/day"),), (800, 2000))
# Distractor-only quantities (no calculator uses them).
MAGNESIUM = Quantity("mg", "Magnesium", ("magnesium", "Mg"), (_u("mg/dL", places=1),), (1.8, 2.4))
PHOSPHATE = Quantity("phos", "Phosphate", ("phosphate", "Phos"), (_u("mg/dL", places=1),), (2.6, 4.4))
LACTATE = Quantity("lactate", "Lactate", ("lactate", "lactate"), (_u("mmol/L", places=1),), (0.6, 1.8))
TSH = Quantity("tsh", "TSH", ("TSH", "TSH"), (_u("mIU/L", places=2),), (0.5, 3.8))
HBA1C = Quantity("hba1c", "HbA1c", ("hemoglobin A1c", "HbA1c"), (_u("%", places=1),), (4.8, 5.6))
LIPASE = Quantity("lipase", "Lipase", ("lipase", "lipase"), (_u("U/L"),), (15, 55))
CRP = Quantity("crp", "CRP", ("C-reactive protein", "CRP"), (_u("mg/L", places=1),), (0.5, 4.5))

DISTRACTORS: tuple[Quantity, ...] = (
    HR, RR, TEMP, SPO2, WEIGHT, HEIGHT, SODIUM, POTASSIUM, CHLORIDE, BICARB, BUN, CREATININE, GLUCOSE,
    CALCIUM, ALBUMIN, HEMOGLOBIN, WBC, PLATELETS, AST, ALT, BILIRUBIN, MAGNESIUM, PHOSPHATE, LACTATE, TSH,
    HBA1C, LIPASE, CRP,
)  # fmt: skip
# Distractors that could contradict a history item a score counts (a normal creatinine next to "end-stage
# renal disease", a normal HbA1c next to "diabetes", a weight and height that imply another BMI).
_RENAL_LABS = {"creatinine", "bun"}
_LIVER_LABS = {"bilirubin", "ast", "alt", "albumin", "platelets"}
_DIABETES_LABS = {"hba1c", "glucose"}
_BODY = {"weight", "height"}
DISTRACTOR_HISTORY = (
    "hypothyroidism",
    "osteoarthritis of both knees",
    "gout",
    "gastroesophageal reflux disease",
    "seasonal allergic rhinitis",
    "glaucoma",
    "migraine headaches",
    "chronic low back pain",
    "mild hearing loss",
)
COMPLAINTS = (
    "chest pain",
    "shortness of breath",
    "fatigue",
    "abdominal pain",
    "dizziness",
    "fever and cough",
    "generalized weakness",
    "nausea and vomiting",
    "a routine follow-up visit",
)
SETTINGS = (  # for a symptom
    "presented to the emergency department with {c}",
    "was admitted to the medical ward with {c}",
    "came to the hospital because of {c}",
    "was seen in the outpatient clinic for {c}",
)
VISIT_SETTINGS = (  # for a reason to be seen ("a preoperative evaluation")
    "was seen in the outpatient clinic for {c}",
    "was referred by the primary care physician for {c}",
    "came to the clinic for {c}",
)
_VISIT_WORDS = ("visit", "evaluation", "review", "assessment", "referral", "follow-up", "check", "consultation",
                "work-up", "admission", "examination")  # fmt: skip


def _setting(rng: random.Random, complaint: str) -> str:
    visit = any(w in complaint for w in _VISIT_WORDS)
    return rng.choice(VISIT_SETTINGS if visit else SETTINGS).format(c=complaint)


def _article(age: int) -> str:
    return "An" if str(age).startswith("8") or age in (11, 18) else "A"


CLOSINGS = (
    "Further workup and management are ongoing.",
    "The patient was admitted for observation and further management.",
    "A treatment plan was discussed with the patient and family.",
    "Follow-up was arranged with the primary care team.",
    "",
)


# ============================================================================================ drafts
@dataclass(frozen=True)
class Flag:
    """A yes/no entity. For `history` flags, `pos`/`neg` are noun phrases merged into history sentences;
    otherwise they are whole sentences (with {He}/{he}/{his}/{him} pronoun slots) put in `section`."""

    entity: str
    p: float
    pos: tuple[str, ...]
    neg: tuple[str, ...] = ()
    section: str = "history"


def _join(items: Sequence[str], conj: str = "and") -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conj} {items[-1]}"


class Draft:
    """What one note says: entities (for the calculator) and text fragments by section."""

    def __init__(self, rng: random.Random, calculator_id: int):
        self.rng = rng
        self.calculator_id = calculator_id
        self.entities: dict[str, Any] = {}
        self.mentions: dict[str, str] = {}
        self.keys: set[str] = set()
        self.items: dict[str, list[tuple[str, str, str]]] = defaultdict(list)  # vitals/body/labs/ecg
        self.sentences: dict[str, list[str]] = defaultdict(list)  # presentation/exam/ecg/other/meds
        self.history_pos: list[str] = []
        self.history_neg: list[str] = []
        self.age: int | None = None
        self.sex: str | None = None
        self.complaints: Sequence[str] = COMPLAINTS
        self.question: str | None = None
        self.template_only = False
        self.no_distractors: set[str] = set()
        self.distractors: list[dict[str, str]] = []
        self.max_distractors: int | None = None
        """At most this many distractor measurements and history items (None: the usual 3-6 and 0-2)."""

    # ------------------------------------------------------------------ patient
    def patient(
        self,
        age: tuple[int, int] = (25, 88),
        *,
        age_entity: bool = True,
        sex_entity: bool = True,
        sex: str | None = None,
    ) -> None:
        self.age = self.rng.randint(*age)
        self.sex = sex or self.rng.choice(["Male", "Female"])
        if age_entity:
            self.entities["age"] = [self.age, "years"]
            self.mentions["age"] = f"{self.age}-year-old"
            self.keys.add("age")
        if sex_entity:
            self.entities["sex"] = self.sex
            self.mentions["sex"] = self._sex_word()
            self.keys.add("sex")

    def _sex_word(self) -> str:
        return "man" if self.sex == "Male" else "woman"

    # ------------------------------------------------------------------ quantities
    def q(
        self,
        qty: Quantity,
        lo: float | None = None,
        hi: float | None = None,
        *,
        entity: str | None = None,
        units: Sequence[int] | None = None,
        value: float | None = None,
        name: str | None = None,
        section: str | None = None,
    ) -> float | int:
        """Sample `qty` in [lo, hi] (canonical unit), write it in a random unit, store the entity; returns
        the value as written (in the unit chosen)."""
        lo = qty.normal[0] if lo is None else lo
        hi = qty.normal[1] if hi is None else hi
        canonical = self.rng.uniform(lo, hi) if value is None else value
        choices = [qty.units[i] for i in units] if units is not None else list(qty.units)
        unit = self.rng.choice(choices)
        shown = unit.convert(canonical)
        name_entity = entity or qty.entity
        self.entities[name_entity] = shown if unit.entity is None else [shown, unit.entity]
        text = unit.render(shown)
        self.mentions[name_entity] = text
        self.keys.add(qty.key)
        long_name, short_name = qty.names
        if name is not None:
            long_name = short_name = name
        self.items[section or qty.section].append((long_name, short_name, text))
        return shown

    def bp(
        self,
        sbp: tuple[int, int] = (100, 165),
        dbp: tuple[int, int] = (55, 100),
        *,
        unit: str = "mm hg",
        sbp_entity: bool = True,
        dbp_entity: bool = True,
    ) -> tuple[int, int]:
        s = self.rng.randint(*sbp)
        d = self.rng.randint(dbp[0], max(dbp[0], min(dbp[1], s - 20)))
        text = f"{s}/{d} mmHg"
        if sbp_entity:
            self.entities["Systolic Blood Pressure"] = [s, unit]
            self.mentions["Systolic Blood Pressure"] = text
        if dbp_entity:
            self.entities["Diastolic Blood Pressure"] = [d, unit]
            self.mentions["Diastolic Blood Pressure"] = text
        self.keys.add("bp")
        self.items["vitals"].append(("blood pressure", "BP", text))
        return s, d

    # ------------------------------------------------------------------ yes/no and categories
    def flag(self, f: Flag, value: bool | None = None) -> bool:
        v = self.rng.random() < f.p if value is None else value
        self.entities[f.entity] = v
        options = f.pos if v else f.neg
        if f.section == "history":
            if options:
                phrase = self.rng.choice(options)
                (self.history_pos if v else self.history_neg).append(phrase)
                self.mentions[f.entity] = phrase
        elif options:
            sentence = self.rng.choice(options)
            self.sentences[f.section].append(sentence)
            self.mentions[f.entity] = sentence
        return v

    def choice(
        self, entity: str, options: Sequence[tuple[str, float, Sequence[str]]], section: str = "exam"
    ) -> str:
        """Pick a category value (weighted) and one of its sentences."""
        values = [o[0] for o in options]
        value = self.rng.choices(values, weights=[o[1] for o in options])[0]
        sentences = next(o[2] for o in options if o[0] == value)
        self.entities[entity] = value
        if sentences:
            s = self.rng.choice(list(sentences))
            self.sentences[section].append(s)
            self.mentions[entity] = s
        return value

    def say(self, section: str, sentence: str, entity: str | None = None) -> None:
        self.sentences[section].append(sentence)
        if entity is not None:
            self.mentions[entity] = sentence


@dataclass(frozen=True)
class NoteSpec:
    calculator_id: int
    build: Callable[[Draft], None]
    valid: Callable[[dict[str, Any]], bool] | None = None
    """An extra plausibility check on the sampled entities (resampled when False)."""


SPECS: dict[int, NoteSpec] = {}


def _spec(*ids: int, valid: Callable[[dict[str, Any]], bool] | None = None) -> Callable:
    def deco(fn: Callable[[Draft], None]) -> Callable[[Draft], None]:
        for i in ids:
            if i in SPECS:
                raise ValueError(f"note spec {i} defined twice")
            SPECS[i] = NoteSpec(i, fn, valid)
        return fn

    return deco


def spec_ids() -> list[int]:
    """Calculator ids that have a note spec."""
    return sorted(SPECS)


def _ev(entities: dict[str, Any], name: str) -> float:
    v = entities[name]
    return float(v[0] if isinstance(v, list) else v)


# ============================================================================================ the specs
# ---- physical
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


# ---- lab: electrolytes and acid-base
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


@_spec(38)
def _free_water(d: Draft) -> None:
    d.patient((18, 92))
    d.complaints = ("confusion and poor oral intake", "lethargy", "dehydration")
    d.q(WEIGHT, 40, 120)
    d.q(SODIUM, 146, 172)


@_spec(40)
def _fena(d: Draft) -> None:
    d.patient(age_entity=False, sex_entity=False)
    d.complaints = ("decreased urine output", "acute kidney injury", "vomiting and diarrhea")
    d.q(SODIUM, 125, 150)
    d.q(CREATININE, 0.8, 6.0, units=[0])
    d.q(URINE_SODIUM, 5, 120)
    d.q(URINE_CREATININE, 15, 250)


# ---- lab: kidney and liver
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


@_spec(15)
def _child_pugh(d: Draft) -> None:
    d.patient((30, 80), age_entity=False, sex_entity=False)
    d.complaints = ("increasing abdominal girth", "jaundice", "a cirrhosis follow-up")
    d.no_distractors |= _LIVER_LABS
    d.say("history", "{He} has alcohol-related cirrhosis.")
    d.q(BILIRUBIN, 0.5, 6.0)
    d.q(ALBUMIN, 1.8, 4.5)
    d.q(INR, 0.9, 3.0)
    d.choice(
        "Ascites",
        [
            ("absent", 0.4, ["There is no ascites on examination or ultrasound."]),
            ("slight", 0.35, ["Ultrasound shows a small amount of ascites.", "There is mild ascites."]),
            (
                "moderate",
                0.25,
                ["The abdomen is distended with moderate ascites.", "Tense, moderate ascites is present."],
            ),
        ],
    )
    d.choice(
        "Encephalopathy",
        [
            ("No Encephalopathy", 0.45, ["{He} is alert and oriented with no asterixis."]),
            (
                "Grade 1-2",
                0.35,
                ["{He} is mildly confused with asterixis, consistent with grade 2 encephalopathy."],
            ),
            (
                "Grade 3-4",
                0.2,
                ["{He} is somnolent and responds only to pain (grade 3 hepatic encephalopathy)."],
            ),
        ],
    )


# ---- lipids and cardiovascular risk
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


# ---- scores: cardiology
_CHF = Flag(
    "Congestive Heart Faliure",
    0.25,
    ("congestive heart failure", "heart failure with reduced ejection fraction"),
    ("heart failure",),
)
_HTN = Flag("Hypertension history", 0.6, ("hypertension",), ("hypertension",))
_STROKE = Flag("Stroke", 0.15, ("a prior ischemic stroke",), ("stroke",))
_TIA = Flag(
    "Transient Ischemic Attacks History",
    0.1,
    ("a transient ischemic attack",),
    ("transient ischemic attack",),
)
_DM = Flag("Diabetes history", 0.3, ("type 2 diabetes mellitus",), ("diabetes",))


@_spec(4)
def _cha2ds2vasc(d: Draft) -> None:
    d.patient((40, 92))
    d.no_distractors |= _DIABETES_LABS
    d.complaints = ("palpitations", "newly diagnosed atrial fibrillation", "irregular heartbeat")
    for f in (_CHF, _HTN, _STROKE, _TIA, _DM):
        d.flag(f)
    d.flag(
        Flag("Thromboembolism history", 0.08, ("a prior systemic arterial embolism",), ("thromboembolism",))
    )
    d.flag(
        Flag(
            "Vascular disease history",
            0.3,
            ("peripheral arterial disease", "a prior myocardial infarction"),
            ("vascular disease",),
        )
    )
    d.say("ecg", "An ECG showed atrial fibrillation.")


@_spec(18)
def _heart(d: Draft) -> None:
    d.patient((30, 88), sex_entity=False)
    d.no_distractors |= _DIABETES_LABS | _BODY
    d.complaints = ("chest pain",)
    d.choice(
        "Suspicion History",
        [
            (
                "Slightly suspicious",
                0.4,
                [
                    "The chest pain is atypical and positional; the history is only slightly suspicious for ACS."
                ],
            ),
            (
                "Moderately suspicious",
                0.35,
                ["The history is moderately suspicious for acute coronary syndrome."],
            ),
            (
                "Highly suspicious",
                0.25,
                [
                    "{He} describes crushing retrosternal pressure radiating to the left arm, a highly suspicious history."
                ],
            ),
        ],
        "presentation",
    )
    d.choice(
        "Electrocardiogram Test",
        [
            ("Normal", 0.5, ["The ECG is normal."]),
            (
                "Non-specific repolarization disturbance",
                0.3,
                ["The ECG shows non-specific repolarization abnormalities."],
            ),
            (
                "Significant ST deviation",
                0.2,
                ["The ECG shows significant ST-segment depression in the lateral leads."],
            ),
        ],
        "ecg",
    )
    d.choice(
        "Initial troponin",
        [
            ("less than or equal to normal limit", 0.6, ["The initial troponin is within the normal limit."]),
            (
                "between the normal limit or up to three times the normal limit",
                0.25,
                ["The initial troponin is mildly elevated, about twice the upper limit of normal."],
            ),
            (
                "greater than three times normal limit",
                0.15,
                ["The initial troponin is more than three times the upper limit of normal."],
            ),
        ],
        "labs_text",
    )
    d.flag(_HTN)
    d.flag(Flag("hypercholesterolemia", 0.35, ("hypercholesterolemia",), ("hyperlipidemia",)))
    d.flag(
        Flag("Diabetes mellitus criteria for CCI rule", 0.25, ("type 2 diabetes mellitus",), ("diabetes",))
    )
    d.flag(Flag("obesity", 0.25, ("obesity",), ("obesity",)))
    d.flag(Flag("smoking", 0.25, ("{He} is a current smoker.",), ("{He} does not smoke.",), "social"))
    d.flag(
        Flag(
            "parent or sibling with Cardiovascular disease before age 65",
            0.2,
            ("{His} father had a myocardial infarction at age 52.",),
            ("There is no family history of premature coronary disease.",),
            "social",
        )
    )
    d.flag(
        Flag(
            "atherosclerotic disease",
            0.15,
            ("peripheral artery disease with prior stenting",),
            ("known atherosclerotic disease",),
        )
    )
    d.flag(_TIA)


@_spec(17)
def _rcri(d: Draft) -> None:
    d.patient((45, 88), age_entity=False, sex_entity=False)
    d.complaints = ("a preoperative evaluation",)
    d.flag(
        Flag(
            "Elevated-risk surgery",
            0.4,
            (
                "{He} is scheduled for an open abdominal aortic aneurysm repair.",
                "{He} is scheduled for an intraperitoneal colectomy.",
            ),
            (
                "{He} is scheduled for a cataract extraction.",
                "{He} is scheduled for an inguinal hernia repair.",
            ),
            "presentation",
        )
    )
    d.flag(
        Flag(
            "History of ischemic heart disease",
            0.3,
            ("coronary artery disease with a prior myocardial infarction",),
            ("ischemic heart disease",),
        )
    )
    d.flag(
        Flag(
            "Congestive Heart Failure criteria for the Cardiac Risk Index rule",
            0.2,
            ("congestive heart failure",),
            ("heart failure",),
        )
    )
    cvd = d.flag(
        Flag(
            "History of cerebrovascular disease",
            0.15,
            ("a prior stroke",),
            ("stroke or transient ischemic attack",),
        )
    )
    d.entities["Cerebrovascular disease history"] = cvd
    d.mentions["Cerebrovascular disease history"] = d.mentions["History of cerebrovascular disease"]
    d.flag(
        Flag(
            "Pre-operative treatment with insulin",
            0.2,
            ("{He} uses insulin glargine nightly for diabetes.",),
            ("{He} is not on insulin.",),
            "meds",
        )
    )
    d.q(CREATININE, 0.6, 3.5, entity="Pre-operative creatinine", units=[0])


@_spec(8)
def _wells_pe(d: Draft) -> None:
    d.patient((25, 85), age_entity=False, sex_entity=False)
    d.complaints = ("pleuritic chest pain", "sudden shortness of breath")
    d.q(HR, 60, 135)
    flags = [
        Flag(
            "Clinical signs and symptoms of Deep Vein Thrombosis",
            0.2,
            ("The left calf is swollen and tender.",),
            ("There is no leg swelling or calf tenderness.",),
            "exam",
        ),
        Flag(
            "Pulmonary Embolism is #1 diagnosis OR equally likely",
            0.4,
            ("Pulmonary embolism is considered the most likely diagnosis.",),
            ("Pneumonia is considered more likely than pulmonary embolism.",),
            "other",
        ),
        Flag(
            "Immobilization for at least 3 days",
            0.15,
            ("{He} has been bedbound for the past five days.",),
            ("{He} has been fully ambulatory.",),
            "presentation",
        ),
        Flag(
            "Surgery in the previous 4 weeks",
            0.15,
            ("{He} underwent knee surgery two weeks ago.",),
            ("{He} has had no recent surgery.",),
            "presentation",
        ),
        Flag(
            "Previously Documented Pulmonary Embolism",
            0.1,
            ("a prior pulmonary embolism",),
            ("pulmonary embolism",),
        ),
        Flag(
            "Previously documented Deep Vein Thrombosis",
            0.1,
            ("a prior deep vein thrombosis",),
            ("deep vein thrombosis",),
        ),
        Flag(
            "Hemoptysis",
            0.1,
            ("{He} reports coughing up blood.",),
            ("{He} denies hemoptysis.",),
            "presentation",
        ),
        Flag(
            "Malignancy with treatment within 6 months or palliative",
            0.15,
            ("{He} is receiving chemotherapy for colon cancer.",),
            ("{He} has no history of cancer.",),
            "history_text",
        ),
    ]
    for f in flags:
        d.flag(f)


@_spec(16)
def _wells_dvt(d: Draft) -> None:
    d.patient((25, 85), age_entity=False, sex_entity=False)
    d.complaints = ("left leg pain and swelling", "calf pain")
    d.flag(
        Flag(
            "Active cancer",
            0.15,
            ("{He} is undergoing treatment for lung cancer.",),
            ("{He} has no history of cancer.",),
            "history_text",
        )
    )
    bed = d.rng.random() < 0.15
    surg = d.rng.random() < 0.15
    d.entities["Bedridden recently >3 days or major surgery within 12 weeks"] = bed or surg
    d.entities["Major surgery within 12 weeks"] = surg
    d.say(
        "presentation",
        "{He} was bedridden for four days last week." if bed else "{He} has been ambulatory.",
        "Bedridden recently >3 days or major surgery within 12 weeks",
    )
    d.say(
        "presentation",
        "{He} had a hip replacement six weeks ago." if surg else "There has been no recent surgery.",
        "Major surgery within 12 weeks",
    )
    exam = [
        Flag(
            "Calf swelling >3 centimeters compared to the other leg",
            0.35,
            ("The left calf measures 4 cm more than the right.",),
            ("Calf circumferences are equal.",),
            "exam",
        ),
        Flag(
            "Collateral (nonvaricose) superficial veins present",
            0.1,
            ("Collateral superficial veins are visible.",),
            ("No collateral veins are seen.",),
            "exam",
        ),
        Flag(
            "Entire Leg Swollen",
            0.2,
            ("The entire left leg is swollen.",),
            ("The leg is not diffusely swollen.",),
            "exam",
        ),
        Flag(
            "Localized tenderness along the deep venous system",
            0.3,
            ("There is tenderness along the deep venous system.",),
            ("There is no tenderness along the deep veins.",),
            "exam",
        ),
        Flag(
            "Pitting edema, confined to symptomatic leg",
            0.3,
            ("Pitting edema is confined to the symptomatic leg.",),
            ("There is no pitting edema.",),
            "exam",
        ),
        Flag(
            "Paralysis, paresis, or recent plaster immobilization of the lower extremity",
            0.1,
            ("The leg was in a plaster cast until last week.",),
            ("There is no paralysis or recent casting of the leg.",),
            "presentation",
        ),
        Flag(
            "Previously documented Deep Vein Thrombosis",
            0.1,
            ("a prior deep vein thrombosis",),
            ("deep vein thrombosis",),
        ),
        Flag(
            "Alternative diagnosis to Deep Vein Thrombosis as likely or more likely",
            0.4,
            ("A ruptured Baker cyst is considered at least as likely as DVT.",),
            ("No alternative diagnosis is considered as likely as DVT.",),
            "other",
        ),
    ]
    for f in exam:
        d.flag(f)


@_spec(48)
def _perc(d: Draft) -> None:
    d.patient((20, 80), sex_entity=False)
    d.complaints = ("pleuritic chest pain", "shortness of breath")
    d.q(HR, 60, 130)
    d.q(SPO2, 88, 100)
    flags = [
        Flag(
            "Unilateral Leg Swelling",
            0.15,
            ("The right leg is swollen compared with the left.",),
            ("There is no leg swelling.",),
            "exam",
        ),
        Flag(
            "Hormone use",
            0.15,
            (
                "{He} takes an estrogen-containing oral contraceptive.",
                "{He} is on hormone replacement therapy.",
            ),
            ("{He} takes no hormonal therapy.",),
            "meds",
        ),
        Flag(
            "Recent surgery or trauma",
            0.15,
            ("{He} had surgery three weeks ago.",),
            ("There has been no recent surgery or trauma.",),
            "presentation",
        ),
        Flag(
            "Previously Documented Pulmonary Embolism",
            0.1,
            ("a prior pulmonary embolism",),
            ("pulmonary embolism",),
        ),
        Flag(
            "Previously documented Deep Vein Thrombosis",
            0.1,
            ("a prior deep vein thrombosis",),
            ("deep vein thrombosis",),
        ),
        Flag("Hemoptysis", 0.1, ("{He} reports hemoptysis.",), ("{He} denies hemoptysis.",), "presentation"),
    ]
    for f in flags:
        d.flag(f)


@_spec(25)
def _has_bled(d: Draft) -> None:
    d.patient((30, 90), sex_entity=False)
    d.no_distractors |= _RENAL_LABS | _LIVER_LABS
    d.complaints = ("a review of anticoagulation for atrial fibrillation",)
    d.flag(_HTN)
    d.flag(
        Flag(
            "Renal disease criteria for the HAS-BLED rule",
            0.15,
            ("end-stage renal disease on dialysis",),
            ("kidney disease",),
        )
    )
    d.flag(Flag("Liver disease criteria for the HAS-BLED rule", 0.1, ("cirrhosis",), ("liver disease",)))
    d.flag(Flag("Stroke", 0.15, ("a prior ischemic stroke",), ("stroke",)))
    d.flag(
        Flag(
            "Prior major bleeding or predisposition to bleeding",
            0.2,
            ("a major gastrointestinal bleed last year",),
            ("bleeding problems",),
        )
    )
    d.flag(
        Flag(
            "Labile international normalized ratio",
            0.15,
            ("{His} INR values on warfarin have been labile, rarely in range.",),
            ("{His} INR has been stable on warfarin.",),
            "meds",
        )
    )
    d.flag(
        Flag(
            "Medication usage predisposing to bleeding",
            0.25,
            ("{He} also takes aspirin daily.",),
            ("{He} takes no antiplatelet agents or NSAIDs.",),
            "meds",
        )
    )
    drinks = d.rng.choice([0, 0, 0, 1, 2, 3, 4, 6, 8, 10, 14, 20])
    d.entities["Number of Alcoholic Drinks Per Week"] = drinks
    text = (
        "{He} does not drink alcohol."
        if drinks == 0
        else f"{{He}} drinks about {drinks} alcoholic drinks per week."
    )
    d.say("social", text, "Number of Alcoholic Drinks Per Week")


@_spec(27)
def _gbs(d: Draft) -> None:
    d.patient((25, 90), age_entity=False)
    d.complaints = ("coffee-ground emesis", "black stools", "hematemesis")
    d.no_distractors |= _LIVER_LABS
    d.q(BUN, 8, 80)
    d.q(HEMOGLOBIN, 6.0, 16.0)
    d.bp((80, 170), (45, 100), unit="mm Hg", dbp_entity=False)
    d.q(HR, 60, 130)
    d.flag(
        Flag(
            "Melena present",
            0.5,
            ("{He} reports black, tarry stools.",),
            ("{He} denies melena.",),
            "presentation",
        )
    )
    d.flag(
        Flag(
            "Recent syncope",
            0.2,
            ("{He} fainted at home this morning.",),
            ("There was no syncope.",),
            "presentation",
        )
    )
    d.flag(Flag("Hepatic disease history", 0.15, ("cirrhosis",), ("liver disease",)))
    d.flag(Flag("Cardiac failure present", 0.15, ("congestive heart failure",), ("heart failure",)))


# ---- scores: infection, pneumonia, sepsis
@_spec(20)
def _centor(d: Draft) -> None:
    d.patient((3, 75), sex_entity=False)
    d.complaints = ("a sore throat", "sore throat and fever")
    d.q(TEMP, 36.5, 40.0)
    d.flag(
        Flag(
            "Cough Absent",
            0.5,
            ("{He} denies any cough.",),
            ("{He} also reports a dry cough.",),
            "presentation",
        )
    )
    d.flag(
        Flag(
            "Tender/swollen anterior cervical lymph nodes",
            0.45,
            ("Tender, swollen anterior cervical lymph nodes are palpable.",),
            ("There is no cervical lymphadenopathy.",),
            "exam",
        )
    )
    d.flag(
        Flag(
            "Exudate or swelling on tonsils",
            0.4,
            ("The tonsils are swollen with white exudate.",),
            ("The tonsils are not enlarged and there is no exudate.",),
            "exam",
        )
    )


@_spec(33)
def _feverpain(d: Draft) -> None:
    d.patient((5, 70), age_entity=False, sex_entity=False)
    d.complaints = ("a sore throat",)
    flags = [
        Flag(
            "Fever in past 24 hours",
            0.5,
            ("{He} had a fever last night.",),
            ("{He} has had no fever.",),
            "presentation",
        ),
        Flag(
            "Purulent tonsils",
            0.4,
            ("The tonsils are covered with purulent exudate.",),
            ("There is no tonsillar exudate.",),
            "exam",
        ),
        Flag(
            "Symptom onset ≤3 days",
            0.5,
            ("Symptoms started two days ago.",),
            ("Symptoms started a week ago.",),
            "presentation",
        ),
        Flag(
            "Severe tonsil inflammation",
            0.35,
            ("The tonsils are severely inflamed.",),
            ("The tonsils are only mildly erythematous.",),
            "exam",
        ),
        Flag(
            "Absence of cough or coryza",
            0.5,
            ("{He} has no cough or runny nose.",),
            ("{He} has a cough and nasal congestion.",),
            "presentation",
        ),
    ]
    for f in flags:
        d.flag(f)


@_spec(45)
def _curb65(d: Draft) -> None:
    d.patient((40, 95), sex_entity=False)
    d.complaints = ("fever, productive cough and shortness of breath", "community-acquired pneumonia")
    d.flag(
        Flag(
            "Confusion",
            0.25,
            ("{He} is confused and disoriented to time and place.",),
            ("{He} is alert and oriented.",),
            "exam",
        )
    )
    d.q(BUN, 6, 50)
    d.q(RR, 12, 36)
    d.bp((78, 170), (40, 100))


@_spec(51)
def _sirs(d: Draft) -> None:
    d.patient(age_entity=False, sex_entity=False)
    d.complaints = ("fever and chills", "suspected infection", "confusion and fever")
    d.q(TEMP, 35.0, 40.2)
    d.q(HR, 60, 140)
    d.q(RR, 12, 32)
    d.q(WBC, 2000, 24000)
    if d.rng.random() < 0.4:
        d.q(PACO2, 24, 46)


@_spec(29)
def _psi(d: Draft) -> None:
    d.patient((30, 95))
    d.no_distractors |= _RENAL_LABS | _LIVER_LABS
    d.complaints = ("community-acquired pneumonia", "fever and productive cough")
    hist = [
        Flag("Congestive Heart Faliure", 0.15, ("congestive heart failure",), ("heart failure",)),
        Flag("Renal disease", 0.15, ("chronic kidney disease",), ("kidney disease",)),
        Flag("Cerebrovascular disease history", 0.1, ("a prior stroke",), ("stroke",)),
        Flag("Liver disease severity", 0.1, ("chronic hepatitis C with cirrhosis",), ("liver disease",)),
        Flag("Neoplastic disease", 0.1, ("metastatic breast cancer",), ("cancer",)),
    ]
    for f in hist:
        d.flag(f)
    d.flag(
        Flag(
            "Nursing home resident",
            0.15,
            ("{He} lives in a nursing home.",),
            ("{He} lives at home with family.",),
            "social",
        )
    )
    d.flag(
        Flag(
            "Altered mental status", 0.2, ("{He} is disoriented.",), ("{He} is alert and oriented.",), "exam"
        )
    )
    d.flag(
        Flag(
            "Pleural effusion on x-ray",
            0.25,
            ("Chest x-ray shows a right lower lobe infiltrate with a pleural effusion.",),
            ("Chest x-ray shows a right lower lobe infiltrate without effusion.",),
            "other",
        )
    )
    d.q(TEMP, 35.0, 40.5)
    d.q(HR, 60, 140)
    d.q(RR, 12, 36)
    d.bp((80, 170), (45, 100), unit="mm Hg", dbp_entity=False)
    d.q(PH, 7.25, 7.5)
    d.q(BUN, 8, 60, units=[0])
    d.q(SODIUM, 124, 148)
    d.q(GLUCOSE, 70, 320)
    d.q(HEMATOCRIT, 25, 48)
    d.q(PAO2, 50, 100)


@_spec(28)
def _apache(d: Draft) -> None:
    d.patient((20, 90), sex_entity=False)
    d.complaints = ("septic shock", "respiratory failure", "altered mental status")
    d.q(TEMP, 34.5, 40.5, units=[0])
    d.bp((70, 180), (35, 100), unit="mm Hg")
    d.q(HR, 50, 160)
    d.q(RR, 8, 40)
    fio2 = d.rng.choice([21, 30, 40, 50, 60, 80, 100])
    d.q(FIO2, value=fio2)
    if fio2 >= 50:
        grad = d.rng.randint(100, 550)
        d.entities["A-a gradient"] = grad
        d.say("labs_text", f"The A-a gradient is {grad} mmHg.", "A-a gradient")
        d.keys.add("aagrad")
    else:
        d.q(PAO2, 50, 110)
    d.q(PH, 7.1, 7.6)
    d.q(SODIUM, 120, 160)
    d.q(POTASSIUM, 2.8, 6.8)
    d.q(CREATININE, 0.5, 4.0, units=[0])
    d.flag(
        Flag(
            "Acute renal failure",
            0.25,
            ("{He} has acute kidney injury.",),
            ("There is no acute kidney injury.",),
            "other",
        )
    )
    d.flag(Flag("Chronic Renal Failure", 0.1, ("chronic kidney disease",), ("chronic kidney disease",)))
    d.q(HEMATOCRIT, 22, 55)
    d.q(WBC, 1000, 35000)
    d.q(GCS_TOTAL, value=d.rng.randint(3, 15))
    chronic = d.flag(
        Flag(
            "History of severe organ failure or immunocompromise",
            0.2,
            ("{He} is immunocompromised from chemotherapy.",),
            ("There is no history of severe organ insufficiency or immunocompromise.",),
            "history_text",
        )
    )
    if chronic:
        admission = d.rng.choice(["Nonoperative", "Elective", "Emergency"])
        d.entities["Surgery Type"] = admission
        text = {
            "Nonoperative": "{He} was admitted to the ICU without surgery.",
            "Elective": "{He} was admitted to the ICU after elective surgery.",
            "Emergency": "{He} was admitted to the ICU after emergency surgery.",
        }[admission]
        d.say("other", text, "Surgery Type")


@_spec(43)
def _sofa(d: Draft) -> None:
    d.patient((20, 90), age_entity=False, sex_entity=False)
    d.complaints = ("septic shock", "respiratory failure")
    fio2 = d.rng.choice([21, 30, 40, 50, 60, 80, 100])
    d.q(FIO2, value=fio2)
    d.q(PAO2, 50, 120)
    vent = d.flag(
        Flag(
            "On mechanical ventilation",
            0.4,
            ("{He} is intubated and mechanically ventilated.",),
            ("{He} is not intubated.",),
            "other",
        )
    )
    d.entities["Continous positive airway pressure"] = False
    if vent:  # CPAP adds nothing once ventilation is counted
        d.mentions["Continous positive airway pressure"] = d.mentions["On mechanical ventilation"]
    else:
        d.flag(
            Flag(
                "Continous positive airway pressure",
                0.1,
                ("{He} is on CPAP.",),
                ("{He} is not on CPAP.",),
                "other",
            )
        )
    d.q(PLATELETS, 15000, 300000)
    d.q(GCS_TOTAL, value=d.rng.randint(3, 15))
    d.q(BILIRUBIN, 0.4, 14)
    sbp, dbp = d.bp((70, 150), (35, 90), unit="mm Hg")
    d.entities["Hypotension"] = (sbp + 2 * dbp) / 3 < 70
    d.mentions["Hypotension"] = d.mentions["Systolic Blood Pressure"]
    pressors = {
        "DOPamine": (2, 18),
        "DOBUTamine": (2, 12),
        "EPINEPHrine": (0.02, 0.3),
        "norEPINEPHrine": (0.02, 0.4),
    }
    used = [p for p in pressors if d.rng.random() < 0.2]
    for p in used:  # vasopressors not mentioned are not running
        lo, hi = pressors[p]
        dose = round(d.rng.uniform(lo, hi), 2)
        d.entities[p] = [dose, "mcg/kg/min"]
        d.say("meds", f"{{He}} is receiving {p} at {_num(dose)} mcg/kg/min.", p)
    if not used:
        d.say("meds", "No vasopressors are required.")
    d.q(CREATININE, 0.5, 5.5)
    d.q(URINE_OUTPUT, 150, 2500)


# ---- scores: comorbidity and thrombosis
@_spec(32)
def _cci(d: Draft) -> None:
    d.patient((35, 92), sex_entity=False)
    d.no_distractors |= _RENAL_LABS | _LIVER_LABS | _DIABETES_LABS
    hist = [
        Flag(
            "Myocardial infarction",
            0.15,
            ("a myocardial infarction five years ago",),
            ("myocardial infarction",),
        ),
        Flag("Congestive Heart Faliure", 0.15, ("congestive heart failure",), ("heart failure",)),
        Flag(
            "Peripheral vascular disease",
            0.1,
            ("peripheral vascular disease",),
            ("peripheral vascular disease",),
        ),
        Flag("Cerebrovascular Accident", 0.1, ("a prior stroke without residual deficits",), ("stroke",)),
        Flag(
            "Transient Ischemic Attacks History",
            0.08,
            ("a transient ischemic attack",),
            ("transient ischemic attack",),
        ),
        Flag("Dementia", 0.08, ("Alzheimer dementia",), ("dementia",)),
        Flag("Chronic Obstructive Pulmonary Disease", 0.15, ("COPD",), ("chronic lung disease",)),
        Flag("Connective tissue disease", 0.06, ("rheumatoid arthritis",), ("connective tissue disease",)),
        Flag("Peptic ulcer disease", 0.08, ("peptic ulcer disease",), ("peptic ulcer disease",)),
        Flag("Hemiplegia", 0.04, ("left hemiplegia",), ("hemiplegia",)),
        Flag(
            "Moderate to severe Chronic Kidney Disease",
            0.12,
            ("stage 4 chronic kidney disease",),
            ("kidney disease",),
        ),
        Flag("Leukemia", 0.04, ("chronic lymphocytic leukemia",), ("leukemia",)),
        Flag("Lymphoma", 0.04, ("a history of lymphoma",), ("lymphoma",)),
        Flag("AIDS", 0.03, ("AIDS",), ("HIV infection",)),
    ]
    for f in hist:
        d.flag(f)
    dm = d.choice(
        "Diabetes mellitus criteria for CCI rule",
        [
            ("None or diet-controlled", 0.6, []),
            ("Uncomplicated", 0.25, []),
            ("End-organ damage", 0.15, []),
        ],
    )
    dm_text = {
        "None or diet-controlled": "{He} does not have diabetes.",
        "Uncomplicated": "{He} has type 2 diabetes without complications, treated with metformin.",
        "End-organ damage": "{He} has type 2 diabetes complicated by retinopathy and nephropathy.",
    }[dm]
    d.say("history_text", dm_text, "Diabetes mellitus criteria for CCI rule")
    liver = d.rng.choices(["none", "Mild", "Moderate to Severe"], weights=[0.8, 0.12, 0.08])[0]
    if liver == "none":
        d.say("history_text", "There is no liver disease.")
    else:
        d.entities["Liver disease severity"] = liver
        text = (
            "{He} has chronic hepatitis without portal hypertension."
            if liver == "Mild"
            else "{He} has cirrhosis with portal hypertension and varices."
        )
        d.say("history_text", text, "Liver disease severity")
    tumor = d.rng.choices([False, "Localized", "Metastatic"], weights=[0.8, 0.12, 0.08])[0]
    d.entities["Solid tumor"] = tumor
    text = {
        False: "There is no history of solid tumors.",
        "Localized": "{He} was treated for localized prostate cancer three years ago.",
        "Metastatic": "{He} has metastatic lung cancer.",
    }[tumor]
    d.say("history_text", text, "Solid tumor")


@_spec(36)
def _caprini(d: Draft) -> None:
    d.patient((20, 90))
    d.no_distractors |= _BODY
    d.complaints = ("a preoperative venous thromboembolism risk assessment",)
    surgery = d.rng.choices(
        ["none", "minor", "major", "laparoscopic", "elective major lower extremity arthroplasty"],
        weights=[0.2, 0.2, 0.3, 0.15, 0.15],
    )[0]
    surgery_text = {
        "none": "No surgery is planned.",
        "minor": "{He} is scheduled for a minor surgical procedure.",
        "major": "{He} is scheduled for major open abdominal surgery.",
        "laparoscopic": "{He} is scheduled for a laparoscopic cholecystectomy lasting over 45 minutes.",
        "elective major lower extremity arthroplasty": "{He} is scheduled for an elective total knee arthroplasty.",
    }[surgery]
    if surgery != "none":
        d.entities["Surgery Type"] = surgery
        d.say("presentation", surgery_text, "Surgery Type")
    else:
        d.say("presentation", surgery_text)
    d.choice(
        "Mobility",
        [
            ("normal", 0.6, ["{He} is ambulatory."]),
            ("on bed rest", 0.25, ["{He} is currently on bed rest."]),
            ("confined to bed >72 hours", 0.15, ["{He} has been confined to bed for more than 72 hours."]),
        ],
    )
    recent = [
        (
            "Major Surgery in the last month",
            "{He} had major surgery three weeks ago.",
            "{He} has had no major surgery in the past month.",
        ),
        (
            "Congestive Heart Failure in the last month",
            "{He} was treated for heart failure this month.",
            "No heart failure in the past month.",
        ),
        ("Sepsis in the last month", "{He} had sepsis two weeks ago.", "No sepsis in the past month."),
        ("Pneumonia in the last month", "{He} had pneumonia this month.", "No pneumonia in the past month."),
        (
            "Immobilizing plaster cast in the last month",
            "{His} leg was in a plaster cast this month.",
            "No plaster cast this month.",
        ),
        (
            "Hip, pelvis, or leg fracture in the last month",
            "{He} fractured {his} hip three weeks ago.",
            "No fractures this month.",
        ),
        ("Stroke in the last month", "{He} had a stroke two weeks ago.", "No stroke in the past month."),
        (
            "Multiple trauma in the last month",
            "{He} had multiple trauma in a car accident this month.",
            "No trauma this month.",
        ),
        (
            "Acute spinal cord injury causing paralysis in the last month",
            "{He} had a spinal cord injury with paralysis this month.",
            "No spinal cord injury.",
        ),
        (
            "Current central venous access",
            "{He} has a central venous catheter in place.",
            "There is no central venous catheter.",
        ),
        ("Current swollen legs", "{His} legs are currently swollen.", "There is no leg swelling."),
    ]
    for entity, pos, neg in recent:
        d.flag(Flag(entity, 0.1, (pos,), (neg,), "history_text"))
    hist = [
        Flag("Varicose veins", 0.15, ("varicose veins",), ("varicose veins",)),
        Flag(
            "Previously documented Deep Vein Thrombosis",
            0.08,
            ("a prior deep vein thrombosis",),
            ("deep vein thrombosis",),
        ),
        Flag(
            "Previously Documented Pulmonary Embolism",
            0.05,
            ("a prior pulmonary embolism",),
            ("pulmonary embolism",),
        ),
        Flag(
            "Family history of thrombosis",
            0.08,
            ("a family history of blood clots",),
            ("family history of thrombosis",),
        ),
        Flag(
            "History of inflammatory bowel disease", 0.05, ("Crohn disease",), ("inflammatory bowel disease",)
        ),
        Flag(
            "Acute Myocardial infarction",
            0.05,
            ("a recent acute myocardial infarction",),
            ("myocardial infarction",),
        ),
        Flag("Chronic Obstructive Pulmonary Disease", 0.12, ("COPD",), ("COPD",)),
        Flag("Present or previous malignancy", 0.12, ("a previous malignancy (breast cancer)",), ("cancer",)),
    ]
    for f in hist:
        d.flag(f)
    labs = [
        ("Positive Factor V Leiden", "Factor V Leiden testing is positive.", "Factor V Leiden is negative."),
        (
            "Positive prothrombin 20210A",
            "The prothrombin 20210A mutation is present.",
            "Prothrombin 20210A is negative.",
        ),
        ("Elevated serum homocysteine", "Serum homocysteine is elevated.", "Homocysteine is normal."),
        (
            "Positive lupus anticoagulant",
            "Lupus anticoagulant is positive.",
            "Lupus anticoagulant is negative.",
        ),
        (
            "Elevated anticardiolipin antibody",
            "Anticardiolipin antibodies are elevated.",
            "Anticardiolipin antibodies are normal.",
        ),
        (
            "Heparin-induced thrombocytopenia",
            "{He} has a history of heparin-induced thrombocytopenia.",
            "No history of heparin-induced thrombocytopenia.",
        ),
        (
            "Other congenital or acquired thrombophilia",
            "{He} has protein C deficiency.",
            "No other thrombophilia is known.",
        ),
    ]
    for entity, pos, neg in labs:
        d.flag(Flag(entity, 0.05, (pos,), (neg,), "labs_text"))
    d.q(BMI, 18, 45)


# ---- severity
_EYE = [
    ("eyes open spontaneously", 0.3, ["{His} eyes are open spontaneously."]),
    ("eye opening to verbal command", 0.25, ["{He} opens {his} eyes when spoken to."]),
    ("eye opening to pain", 0.25, ["{He} opens {his} eyes only to a sternal rub."]),
    ("no eye opening", 0.2, ["{His} eyes remain closed even to painful stimuli."]),
]
_VERBAL = [
    ("oriented", 0.2, ["{He} is oriented to person, place and time."]),
    ("confused", 0.25, ["{He} converses but is confused and disoriented."]),
    ("inappropriate words", 0.2, ["{He} utters random, inappropriate words."]),
    ("incomprehensible sounds", 0.2, ["{He} makes only incomprehensible moaning sounds."]),
    ("no verbal response", 0.15, ["{He} makes no verbal response."]),
]
_MOTOR = [
    ("obeys commands", 0.25, ["{He} follows commands, squeezing the examiner's hand on request."]),
    ("localizes pain", 0.2, ["{He} reaches toward and localizes a painful stimulus."]),
    ("withdrawal from pain", 0.2, ["{He} withdraws {his} arm from a painful stimulus."]),
    (
        "flexion to pain",
        0.12,
        ["Painful stimulation produces abnormal flexion (decorticate posturing) of the arms."],
    ),
    (
        "extension to pain",
        0.12,
        ["Painful stimulation produces extension (decerebrate posturing) of the arms."],
    ),
    ("no motor response", 0.11, ["There is no motor response to pain."]),
]


@_spec(21)
def _gcs(d: Draft) -> None:
    d.patient(age_entity=False, sex_entity=False)
    d.complaints = (
        "a fall with head injury",
        "being found unresponsive at home",
        "a motor vehicle collision",
    )
    d.choice("Best eye response", _EYE)
    d.choice("Best verbal response", _VERBAL)
    d.choice("Best motor response", _MOTOR)


# ---- dosage
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


# ---- dates
def _date_text(rng: random.Random, day: date) -> str:
    if rng.random() < 0.7:
        return day.strftime("%m/%d/%Y")
    return f"{day.strftime('%B')} {day.day}, {day.year}"


def _random_day(rng: random.Random) -> date:
    return date(2000, 1, 1) + timedelta(days=rng.randint(0, 25 * 365))


@_spec(13, 68)
def _lmp_cycle(d: Draft) -> None:
    d.patient((18, 42), age_entity=False, sex_entity=False, sex="Female")
    d.template_only = True
    lmp = _random_day(d.rng)
    cycle = d.rng.randint(21, 35)
    d.entities["cycle length"] = cycle
    d.entities["Last menstrual date"] = lmp.strftime("%m/%d/%Y")
    lmp_text = _date_text(d.rng, lmp)
    d.say("presentation", f"The patient's last menstrual period was on {lmp_text}.", "Last menstrual date")
    d.say("presentation", f"Her cycle length is {cycle} days.", "cycle length")


@_spec(69)
def _gestational_age(d: Draft) -> None:
    d.patient((18, 42), age_entity=False, sex_entity=False, sex="Female")
    d.template_only = True
    lmp = _random_day(d.rng)
    today = lmp + timedelta(days=d.rng.randint(0, 290))
    d.entities["Current Date"] = today.strftime("%m/%d/%Y")
    d.entities["Last menstrual date"] = lmp.strftime("%m/%d/%Y")
    d.say(
        "presentation",
        f"The patient's last menstrual period was on {_date_text(d.rng, lmp)}.",
        "Last menstrual date",
    )
    d.say("presentation", f"Today's date is {_date_text(d.rng, today)}.", "Current Date")


# ============================================================================================ rendering
_PRONOUNS = {
    "Male": {"He": "He", "he": "he", "His": "His", "his": "his", "him": "him"},
    "Female": {"He": "She", "he": "she", "His": "Her", "his": "her", "him": "her"},
}


def _add_distractors(d: Draft) -> None:
    pool = [q for q in DISTRACTORS if q.key not in d.keys and q.key not in d.no_distractors]
    cap = d.max_distractors
    k = min(len(pool), d.rng.randint(3, 6))
    if cap is not None:  # drawn only with a cap, so uncapped notes are the same as before caps existed
        k = min(k, d.rng.randint(0, cap))
    for qty in d.rng.sample(pool, k):
        canonical = d.rng.uniform(*qty.normal)
        unit = d.rng.choice(qty.units)
        shown = unit.convert(canonical)
        text = unit.render(shown)
        d.items[qty.section].append((qty.names[0], qty.names[1], text))
        d.distractors.append({"key": qty.key, "text": text})
    if "bp" not in d.keys and "bp" not in d.no_distractors and (cap is None or k < cap):
        k += 1
        s = d.rng.randint(108, 138)
        text = f"{s}/{d.rng.randint(62, min(88, s - 25))} mmHg"
        d.items["vitals"].append(("blood pressure", "BP", text))
        d.distractors.append({"key": "bp", "text": text})
    n_hist = d.rng.choice([0, 1, 1, 2]) if (d.age or 99) >= 18 else 0  # adult conditions only for adults
    if cap is not None:
        n_hist = min(n_hist, max(0, cap - k))
    for phrase in d.rng.sample(DISTRACTOR_HISTORY, n_hist):
        d.history_pos.append(phrase)
        d.distractors.append({"key": "history", "text": phrase})


def _items_text(rng: random.Random, items: list[tuple[str, str, str]], kind: str) -> str:
    if not items:
        return ""
    items = list(items)
    rng.shuffle(items)
    short = rng.random() < 0.4
    parts = [f"{s} {t}" if short else f"{n} {t}" for n, s, t in items]
    if kind == "vitals":
        if short:
            return f"Vitals: {', '.join(parts)}."
        lead = rng.choice(["On examination, ", "On arrival, ", "Vital signs showed ", "Vital signs were: "])
        return f"{lead}{_join(parts)}."
    if kind == "body":
        if short:
            return f"{', '.join(parts)}."
        return f"{rng.choice(['Anthropometrics: ', 'Measured ', 'Body measurements: '])}{_join(parts)}."
    if kind == "ecg":
        return f"A 12-lead ECG showed {_join(parts)}."
    if short:
        return f"Labs: {', '.join(parts)}."
    lead = rng.choice(["Laboratory studies showed ", "Admission labs revealed ", "Blood tests showed "])
    return f"{lead}{_join(parts)}."


def _history_text(d: Draft) -> list[str]:
    out = []
    pos = list(d.history_pos)
    neg = list(d.history_neg)
    d.rng.shuffle(pos)
    if pos:
        lead = d.rng.choice(
            ["{His} past medical history is notable for ", "{He} has a history of ", "Past history includes "]
        )
        out.append(f"{lead}{_join(pos)}.")
    if neg:
        lead = d.rng.choice(["There is no history of ", "{He} denies any history of ", "{He} has no known "])
        out.append(f"{lead}{_join(neg, 'or')}.")
    return out


def render_note(d: Draft) -> str:
    """The note text for a draft (pronouns filled in)."""
    rng = d.rng
    sections: list[str] = []
    if not d.template_only:
        _add_distractors(d)
        complaint = rng.choice(list(d.complaints))
        age = d.age if d.age is not None else rng.randint(25, 88)
        sex_word = "man" if d.sex == "Male" else "woman"
        if age < 18:
            sex_word = "boy" if d.sex == "Male" else "girl"
        opener = rng.choice(
            [
                f"{_article(age)} {age}-year-old {sex_word} {_setting(rng, complaint)}.",
                f"The patient is {_article(age).lower()} {age}-year-old {sex_word} who {_setting(rng, complaint)}.",
            ]
        )
        sections.append(opener)
    sections += d.sentences.get("presentation", [])
    sections += _history_text(d)
    sections += d.sentences.get("history", [])
    sections += d.sentences.get("history_text", [])
    sections += d.sentences.get("social", [])
    sections += d.sentences.get("meds", [])
    for kind in ("vitals", "body"):
        t = _items_text(rng, d.items.get(kind, []), kind)
        if t:
            sections.append(t)
    sections += d.sentences.get("exam", [])
    ecg = _items_text(rng, d.items.get("ecg", []), "ecg")
    if ecg:
        sections.append(ecg)
    sections += d.sentences.get("ecg", [])
    labs = _items_text(rng, d.items.get("labs", []), "labs")
    if labs:
        sections.append(labs)
    sections += d.sentences.get("labs_text", [])
    sections += d.sentences.get("other", [])
    if not d.template_only:
        closing = rng.choice(CLOSINGS)
        if closing:
            sections.append(closing)
    text = " ".join(s for s in sections if s)
    return text.format(**_PRONOUNS[d.sex or "Male"])


# ============================================================================================ examples
def _gold(output_type: str, value: Any) -> dict[str, Any]:
    """The typed target for a computed value, built with the task's own `parse_gold` (decimals ±5%)."""
    if output_type == "date":
        return parse_gold("date", str(value), "", "")
    if output_type == "gestational_age":
        w, dd = value
        return parse_gold("gestational_age", repr((f"{int(w)} weeks", f"{int(dd)} days")), "", "")
    if output_type == "integer":
        v = int(round(float(value)))
        return parse_gold("integer", str(v), str(v), str(v))
    v = float(value)
    answer = round(v, 3)
    lo, hi = sorted((answer * 0.95, answer * 1.05))
    if not (lo <= v <= hi) and v != answer:  # tiny values: rounding to 3 places would leave the tolerance
        answer = v
        lo, hi = sorted((v * 0.95, v * 1.05))
    return parse_gold("decimal", repr(answer), repr(lo), repr(hi))


REASONING_STYLES = ("full", "compact")


def _reasoning(explanation: str, style: str) -> str:
    from ehrmind.tasks.medcalc.calculators.scores_risk import compact_explanation

    if style not in REASONING_STYLES:
        raise ConfigError(f"reasoning must be one of {', '.join(REASONING_STYLES)}, got {style!r}")
    return compact_explanation(explanation) if style == "compact" else explanation


def _registry() -> dict[int, Any]:
    from ehrmind.tasks.medcalc.calculators import load_all

    return load_all()


def make_example(
    calculator_id: int,
    rng: random.Random,
    example_id: str,
    *,
    max_tries: int = 60,
    max_distractors: int | None = None,
    reasoning: str = "full",
) -> Example:
    """One synthetic note for `calculator_id` (its calculator must be registered)."""
    from ehrmind.tasks.medcalc.calculators.base import MissingInput

    spec = SPECS.get(calculator_id)
    if spec is None:
        raise ConfigError(f"no note spec for calculator {calculator_id}; specs exist for {spec_ids()}")
    calcs = _registry()
    if calculator_id not in calcs:
        raise KeyError(f"calculator {calculator_id} is not registered; registered: {sorted(calcs)}")
    calc = calcs[calculator_id]
    last_error: Exception | None = None
    for _ in range(max_tries):
        d = Draft(rng, calculator_id)
        d.max_distractors = max_distractors
        spec.build(d)
        if spec.valid is not None and not spec.valid(d.entities):
            continue
        try:
            result = calc.compute(**calc.from_entities(d.entities))
        except (ArithmeticError, ValueError, MissingInput) as e:  # an implausible draw: draw again
            last_error = e
            continue
        break
    else:
        raise RuntimeError(
            f"could not sample valid inputs for calculator {calculator_id} in {max_tries} tries "
            f"(last error: {last_error!r})"
        )
    name, category, question = BENCHMARK.get(calculator_id, (calc.name, calc.category, ""))
    category = CATEGORY_ALIASES.get(category, calc.category)
    output_type = output_type_for(calculator_id, calc.output_type) or calc.output_type
    note = render_note(d)
    pronouns = _PRONOUNS[d.sex or "Male"]
    mentions = {k: v.format(**pronouns) for k, v in d.mentions.items()}
    return Example(
        id=example_id,
        task="medcalc",
        input={"note": note, "question": d.question or question},
        target=_gold(output_type, result.value),
        metadata={
            "category": category,
            "calculator_id": calculator_id,
            "calculator_name": name,
            "note_id": "",
            "note_type": "Synthetic",
            "relevant_entities": d.entities,
            "explanation": _reasoning(result.explanation, reasoning),
            "source": "synthetic",
            "mentions": mentions,
            "distractors": d.distractors,
            # the date rule the label follows (the calculators' default), for `ehrmind audit`
            **(
                {"convention": calc.compute.__kwdefaults__["convention"]}
                if "convention" in calc.inputs
                else {}
            ),
        },
    )


def reread(example: Example, entities: dict[str, Any], reasoning: str = "full") -> Example:
    """The same note with the reasoning and answer the knowledge base computes from other `entities` — what
    a reader who took the note's findings to be `entities` would write (e.g. a teacher that misreads one
    finding). The note text is unchanged; `metadata["relevant_entities"]` holds the entities used."""
    calc = _registry()[int(example.metadata["calculator_id"])]
    result = calc.compute(**calc.from_entities(entities))
    output_type = example.target["output_type"]
    return dataclasses.replace(
        example,
        target=_gold(output_type, result.value),
        metadata={
            **example.metadata,
            "relevant_entities": entities,
            "explanation": _reasoning(result.explanation, reasoning),
        },
    )


def withhold_points(example: Example, finding: str, reasoning: str = "full") -> Example:
    """The same note, findings read right, but no points for `finding` (which must be present): what a reader
    who misapplies that criterion's rule writes. Its reasoning says the finding is present and gives it 0;
    the later running totals and the answer follow. For point-sum scores whose reasoning has one
    "criterion: finding → points" line per item (`Tally`)."""
    entities = dict(example.metadata["relevant_entities"])
    if entities.get(finding) is not True:
        raise ValueError(f"{finding!r} is not present in example {example.id}")
    right = reread(example, entities, reasoning).metadata["explanation"].splitlines()
    wrong = reread(example, {**entities, finding: False}, reasoning)
    lines = wrong.metadata["explanation"].splitlines()
    i = next(i for i, (a, b) in enumerate(zip(right, lines, strict=True)) if a != b)  # the criterion's line
    lines[i] = right[i].partition(" → ")[0] + " → " + lines[i].partition(" → ")[2]
    return dataclasses.replace(
        wrong,
        metadata={**wrong.metadata, "relevant_entities": entities, "explanation": "\n".join(lines)},
    )


def make_examples(
    calculator_ids: Iterable[int] | None = None,
    n: int = 10,
    seed: int = 0,
    *,
    max_distractors: int | None = None,
    reasoning: str = "full",
) -> list[Example]:
    """`n` synthetic notes per calculator (all registered calculators with a spec when `calculator_ids` is
    None). Deterministic for a seed; each calculator has its own random stream, so the notes for one id do
    not depend on which other ids are asked for. An id without a spec raises ConfigError; an id whose
    calculator is not registered raises KeyError."""
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n}")
    if calculator_ids is None:
        calcs = _registry()
        ids = [i for i in spec_ids() if i in calcs]
    else:
        ids = [int(i) for i in calculator_ids]
    out: list[Example] = []
    for cid in ids:
        rng = random.Random(f"ehrmind-medcalc-notes:{seed}:{cid}")
        out.extend(
            make_example(
                cid, rng, f"synthetic-{cid}-s{seed}-{i}", max_distractors=max_distractors, reasoning=reasoning
            )
            for i in range(n)
        )
    log.info("generated %d synthetic notes for %d calculator(s)", len(out), len(ids))
    return out
