"""What a note measures: units, quantities in every unit system they are written in, and the distractors.

Shared by every spec module (they sample inputs with these) and by the renderer (it draws distractors)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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
