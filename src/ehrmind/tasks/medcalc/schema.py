"""MedCalc-Bench's columns, categories and output types, normalised across v1.0, v1.2 and Verified."""

from __future__ import annotations

REQUIRED_COLUMNS = (
    "Row Number",
    "Calculator ID",
    "Calculator Name",
    "Category",
    "Output Type",
    "Patient Note",
    "Question",
    "Ground Truth Answer",
    "Lower Limit",
    "Upper Limit",
)
OPTIONAL_COLUMNS = ("Note ID", "Note Type", "Relevant Entities", "Ground Truth Explanation")

# Canonical category names are the v1.0 test set's; the train sets and v1.2/Verified use longer ones.
CATEGORY_ALIASES = {
    "lab": "lab",
    "lab test": "lab",
    "physical": "physical",
    "risk": "risk",
    "severity": "severity",
    "diagnosis": "diagnosis",
    "date": "date",
    "dosage": "dosage",
    "dosage conversion": "dosage",
}
CATEGORIES = ("lab", "physical", "risk", "severity", "diagnosis", "date", "dosage")

# Output types as the official evaluator decides them: by calculator id, not by the row's column
# (v1.0 calls calculator 69 "integer", Verified calls it "date"; Verified calls 8 "integer" although its
# labels are half-points). Unknown ids fall back to the row's own Output Type.
DATE_CALCULATORS = frozenset({13, 68})
GESTATIONAL_AGE_CALCULATORS = frozenset({69})
INTEGER_CALCULATORS = frozenset({4, 15, 16, 17, 18, 20, 21, 25, 27, 28, 29, 32, 33, 36, 43, 45, 48, 51})
DECIMAL_CALCULATORS = frozenset(
    {2, 3, 5, 6, 7, 8, 9, 10, 11, 19, 22, 23, 24, 26, 30, 31, 38, 39, 40, 44, 46, 49}
    | {56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67}
)
OUTPUT_TYPES = ("decimal", "integer", "date", "gestational_age")


def output_type_for(calculator_id: int, row_output_type: str) -> str | None:
    if calculator_id in DATE_CALCULATORS:
        return "date"
    if calculator_id in GESTATIONAL_AGE_CALCULATORS:
        return "gestational_age"
    if calculator_id in INTEGER_CALCULATORS:
        return "integer"
    if calculator_id in DECIMAL_CALCULATORS:
        return "decimal"
    t = row_output_type.strip().lower()
    return t if t in ("decimal", "integer", "date") else None
