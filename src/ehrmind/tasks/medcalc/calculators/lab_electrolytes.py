"""Electrolyte and acid-base lab calculators: calcium correction (7), sodium correction for hyperglycemia
(26), serum osmolality (30), free water deficit (38), anion gap (39), delta gap (63), delta ratio (64),
albumin-corrected anion gap (65), albumin-corrected delta gap (66), albumin-corrected delta ratio (67)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ehrmind.tasks.medcalc.calculators.base import CalcResult, calculator
from ehrmind.tasks.medcalc.calculators.lab import (
    CONVERSIONS_INPUT,
    age_years,
    check_sex,
    collect,
    conc,
    conversion_lines,
    fmt,
    par,
    rnd,
    sex_of,
    weight_kg,
)
from ehrmind.tasks.medcalc.calculators.units import need

NORMAL_ANION_GAP = 12.0
NORMAL_BICARBONATE = 24.0
NORMAL_ALBUMIN = 4.0


def _sodium(e: dict[str, Any]) -> tuple[float, str | None]:
    return conc(need(e, "Sodium", "sodium"), "mmol/L", "sodium", "sodium")


def _glucose(e: dict[str, Any]) -> tuple[float, str | None]:
    return conc(need(e, "Glucose", "glucose"), "mg/dL", "glucose", "glucose")


def _albumin(e: dict[str, Any]) -> tuple[float, str | None]:
    return conc(need(e, "Albumin", "albumin"), "g/dL", "albumin", "albumin")


# --------------------------------------------------------------------------- 7 calcium correction


def _calcium_from_entities(e: dict[str, Any]) -> dict[str, Any]:
    ca, n1 = conc(need(e, "Calcium", "calcium"), "mg/dL", "calcium", "calcium")
    alb, n2 = _albumin(e)
    return {"calcium": ca, "albumin": alb, "conversions": collect(n1, n2)}


@calculator(
    id=7,
    name="Calcium Correction for Hypoalbuminemia",
    category="lab",
    output_type="decimal",
    reference=(
        "Payne RB, Little AJ, Williams RB, Milner JR. Interpretation of serum calcium in patients with "
        "abnormal serum proteins. Br Med J. 1973;4(5893):643-646."
    ),
    formula="Corrected calcium (mg/dL) = serum calcium (mg/dL) + 0.8 × (normal albumin 4.0 - albumin (g/dL)).",
    inputs={
        "calcium": "total serum calcium, mg/dL",
        "albumin": "serum albumin, g/dL",
        "normal_albumin": "reference albumin, g/dL (default 4.0, as the question states)",
        "conversions": CONVERSIONS_INPUT,
    },
    from_entities=_calcium_from_entities,
)
def calcium_correction(
    *, calcium: float, albumin: float, normal_albumin: float = NORMAL_ALBUMIN, conversions: Sequence[str] = ()
) -> CalcResult:
    """Total calcium corrected for hypoalbuminemia (0.8 mg/dL per 1 g/dL of albumin below normal)."""
    delta = normal_albumin - albumin
    value = rnd(calcium + 0.8 * delta)
    lines = [
        "Corrected calcium (mg/dL) = serum calcium (mg/dL) + 0.8 × (normal albumin - patient's albumin (g/dL)), "
        f"with a normal albumin of {fmt(normal_albumin)} g/dL.",
        *conversion_lines(conversions),
        f"Serum calcium {fmt(calcium)} mg/dL; albumin {fmt(albumin)} g/dL.",
        f"Corrected calcium = {fmt(calcium)} + 0.8 × ({fmt(normal_albumin)} - {fmt(albumin)}) = {fmt(calcium)} + "
        f"{fmt(0.8 * delta)} = {fmt(value)} mg/dL.",
        f"Answer: the corrected calcium is {fmt(value)} mg/dL.",
    ]
    return CalcResult(value, "\n".join(lines))


# --------------------------------------------------------------------------- 26 sodium correction


def _na_glucose_from_entities(e: dict[str, Any]) -> dict[str, Any]:
    na, n1 = _sodium(e)
    glu, n2 = _glucose(e)
    return {"sodium": na, "glucose": glu, "conversions": collect(n1, n2)}


@calculator(
    id=26,
    name="Sodium Correction for Hyperglycemia",
    category="lab",
    output_type="decimal",
    reference=(
        "Hillier TA, Abbott RD, Barrett EJ. Hyponatremia: evaluating the correction factor for hyperglycemia. "
        "Am J Med. 1999;106(4):399-403."
    ),
    formula="Corrected Na (mEq/L) = measured Na + 0.024 × (glucose (mg/dL) - 100).",
    inputs={
        "sodium": "measured serum sodium, mmol/L (= mEq/L)",
        "glucose": "serum glucose, mg/dL",
        "factor": "mEq/L of sodium per mg/dL of glucose above 100 (default 0.024, Hillier; Katz 1973: 0.016)",
        "conversions": CONVERSIONS_INPUT,
    },
    from_entities=_na_glucose_from_entities,
)
def sodium_correction(
    *, sodium: float, glucose: float, factor: float = 0.024, conversions: Sequence[str] = ()
) -> CalcResult:
    """Sodium corrected for hyperglycemia with Hillier's factor (2.4 mEq/L per 100 mg/dL of glucose).

    MedCalc-Bench (and MDCalc) use Hillier's 0.024; the physician-corrected labels of junzeye et al. use
    Katz's 0.016, so they differ from v1.0 whenever glucose is not 100 mg/dL.
    """
    excess = glucose - 100
    value = rnd(sodium + factor * excess)
    lines = [
        f"Corrected sodium (Hillier 1999) = measured sodium (mEq/L) + {fmt(factor)} × (glucose (mg/dL) - 100).",
        *conversion_lines(conversions),
        f"Measured sodium {fmt(sodium)} mEq/L; glucose {fmt(glucose)} mg/dL.",
        f"Corrected sodium = {fmt(sodium)} + {fmt(factor)} × ({fmt(glucose)} - 100) = {fmt(sodium)} + "
        f"{fmt(factor * excess)} = {fmt(value)} mEq/L.",
        f"Answer: the corrected sodium is {fmt(value)} mEq/L.",
    ]
    return CalcResult(value, "\n".join(lines))


# --------------------------------------------------------------------------- 30 serum osmolality


def _osm_from_entities(e: dict[str, Any]) -> dict[str, Any]:
    na, n1 = _sodium(e)
    bun, n2 = conc(need(e, "Blood Urea Nitrogen (BUN)", "BUN", "bun"), "mg/dL", "bun", "BUN")
    glu, n3 = _glucose(e)
    return {"sodium": na, "bun": bun, "glucose": glu, "conversions": collect(n1, n2, n3)}


@calculator(
    id=30,
    name="Serum Osmolality",
    category="lab",
    output_type="decimal",
    reference=(
        "Dorwart WV, Chalmers L. Comparison of methods for calculating serum osmolality from chemical "
        "concentrations, and the prognostic value of such calculations. Clin Chem. 1975;21(2):190-194."
    ),
    formula="Calculated serum osmolality (mOsm/kg) = 2 × Na (mmol/L) + BUN (mg/dL) / 2.8 + glucose (mg/dL) / 18.",
    inputs={
        "sodium": "serum sodium, mmol/L",
        "bun": "blood urea nitrogen, mg/dL",
        "glucose": "serum glucose, mg/dL",
        "conversions": CONVERSIONS_INPUT,
    },
    from_entities=_osm_from_entities,
)
def serum_osmolality(
    *, sodium: float, bun: float, glucose: float, conversions: Sequence[str] = ()
) -> CalcResult:
    """Calculated serum osmolality (2 Na + BUN/2.8 + glucose/18)."""
    t_na, t_bun, t_glu = 2 * sodium, bun / 2.8, glucose / 18
    value = rnd(t_na + t_bun + t_glu)
    lines = [
        "Calculated serum osmolality (mOsm/kg) = 2 × Na (mmol/L) + BUN (mg/dL) / 2.8 + glucose (mg/dL) / 18.",
        *conversion_lines(conversions),
        f"Sodium {fmt(sodium)} mmol/L; BUN {fmt(bun)} mg/dL; glucose {fmt(glucose)} mg/dL.",
        f"Osmolality = 2 × {fmt(sodium)} + {fmt(bun)} / 2.8 + {fmt(glucose)} / 18 = {fmt(t_na)} + {fmt(t_bun)} + "
        f"{fmt(t_glu)} = {fmt(value)} mOsm/kg.",
        f"Answer: the calculated serum osmolality is {fmt(value)} mOsm/kg.",
    ]
    return CalcResult(value, "\n".join(lines))


# --------------------------------------------------------------------------- 38 free water deficit


def _fwd_from_entities(e: dict[str, Any]) -> dict[str, Any]:
    age, n1 = age_years(need(e, "age"))
    weight, n2 = weight_kg(need(e, "weight", "Weight"))
    na, n3 = _sodium(e)
    return {"age": age, "sex": sex_of(e), "weight": weight, "sodium": na, "conversions": collect(n1, n2, n3)}


def total_body_water_fraction(age: float, sex: str) -> tuple[float, str]:
    """Fraction of body weight that is water: children 0.6; adult men 0.6, women 0.5; from 65 y 0.5 / 0.45."""
    if age < 18:
        return 0.6, "a child (under 18 years)"
    if age < 65:
        return (0.6, "an adult man (18–64 years)") if sex == "male" else (0.5, "an adult woman (18–64 years)")
    return (
        (0.5, "an elderly man (65 years or older)")
        if sex == "male"
        else (0.45, "an elderly woman (65 years or older)")
    )


@calculator(
    id=38,
    name="Free Water Deficit",
    category="lab",
    output_type="decimal",
    reference=(
        "Adrogué HJ, Madias NE. Hypernatremia. N Engl J Med. 2000;342(20):1493-1499 (total body water "
        "fractions by age and sex as tabulated by MDCalc)."
    ),
    formula=(
        "Free water deficit (L) = TBW fraction × weight (kg) × (Na / 140 - 1); TBW fraction: child 0.6, adult "
        "man 0.6, adult woman 0.5, man ≥ 65 y 0.5, woman ≥ 65 y 0.45."
    ),
    inputs={
        "age": "age, years",
        "sex": "'male' or 'female'",
        "weight": "body weight, kg",
        "sodium": "serum sodium, mmol/L",
        "target_sodium": "ideal sodium, mmol/L (default 140)",
        "conversions": CONVERSIONS_INPUT,
    },
    from_entities=_fwd_from_entities,
)
def free_water_deficit(
    *,
    age: float,
    sex: str,
    weight: float,
    sodium: float,
    target_sodium: float = 140.0,
    conversions: Sequence[str] = (),
) -> CalcResult:
    """Free water deficit in litres; negative when the sodium is below the target (a water excess)."""
    sex = check_sex(sex)
    tbw, who = total_body_water_fraction(age, sex)
    ratio = sodium / target_sodium - 1
    value = rnd(tbw * weight * ratio)
    lines = [
        f"Free water deficit (L) = total body water fraction × weight (kg) × (sodium / {fmt(target_sodium)} - 1).",
        "Total body water fraction: 0.6 for children and adult men, 0.5 for adult women and elderly men "
        "(65 years or older), 0.45 for elderly women.",
        *conversion_lines(conversions),
        f"Patient: {sex}, {fmt(age)} years, weight {fmt(weight)} kg, sodium {fmt(sodium)} mmol/L.",
        f"The patient is {who}, so the total body water fraction is {fmt(tbw)}.",
        f"Free water deficit = {fmt(tbw)} × {fmt(weight)} × ({fmt(sodium)} / {fmt(target_sodium)} - 1) = "
        f"{fmt(tbw)} × {fmt(weight)} × {par(ratio)} = {fmt(value)} L.",
        f"Answer: the free water deficit is {fmt(value)} L.",
    ]
    return CalcResult(value, "\n".join(lines))


# --------------------------------------------------------------------------- anion gap family


def _ag_from_entities(e: dict[str, Any]) -> dict[str, Any]:
    na, n1 = _sodium(e)
    cl, n2 = conc(need(e, "Chloride", "chloride"), "mmol/L", "chloride", "chloride")
    hco3, n3 = conc(need(e, "Bicarbonate", "bicarbonate", "HCO3"), "mmol/L", "bicarbonate", "bicarbonate")
    return {"sodium": na, "chloride": cl, "bicarbonate": hco3, "conversions": collect(n1, n2, n3)}


def _acag_from_entities(e: dict[str, Any]) -> dict[str, Any]:
    inputs = _ag_from_entities(e)
    alb, note = _albumin(e)
    inputs["albumin"] = alb
    inputs["conversions"] = inputs["conversions"] + collect(note)
    return inputs


_AG_FORMULA = "Anion gap (mEq/L) = Na - (Cl + HCO3)."
_ACAG_FORMULA = "Albumin-corrected anion gap (mEq/L) = anion gap + 2.5 × (4 - albumin (g/dL))."
_AG_INPUTS = {
    "sodium": "serum sodium, mmol/L (= mEq/L)",
    "chloride": "serum chloride, mmol/L (= mEq/L)",
    "bicarbonate": "serum bicarbonate, mmol/L (= mEq/L)",
    "conversions": CONVERSIONS_INPUT,
}
_ACAG_INPUTS = {**_AG_INPUTS, "albumin": "serum albumin, g/dL"}
_AG_REFERENCE = "Emmett M, Narins RG. Clinical use of the anion gap. Medicine (Baltimore). 1977;56(1):38-54."
_DELTA_REFERENCE = "Wrenn K. The delta (Δ) gap: an approach to mixed acid-base disorders. Ann Emerg Med. 1990;19(11):1310-1313"
_ALBUMIN_REFERENCE = (
    "Figge J, Jabor A, Kazda A, Fencl V. Anion gap and hypoalbuminemia. Crit Care Med. 1998;26(11):1807-1810"
)


def _ag_lines(
    sodium: float, chloride: float, bicarbonate: float, conversions: Sequence[str]
) -> tuple[float, list[str]]:
    ag = sodium - (chloride + bicarbonate)
    lines = [
        *conversion_lines(conversions),
        f"Sodium {fmt(sodium)} mEq/L, chloride {fmt(chloride)} mEq/L, bicarbonate {fmt(bicarbonate)} mEq/L.",
        f"Anion gap = {fmt(sodium)} - ({fmt(chloride)} + {fmt(bicarbonate)}) = {fmt(ag)} mEq/L.",
    ]
    return ag, lines


def _acag_lines(
    sodium: float, chloride: float, bicarbonate: float, albumin: float, conversions: Sequence[str]
) -> tuple[float, list[str]]:
    ag, lines = _ag_lines(sodium, chloride, bicarbonate, conversions)
    acag = ag + 2.5 * (NORMAL_ALBUMIN - albumin)
    lines.append(f"Albumin {fmt(albumin)} g/dL.")
    lines.append(
        f"Albumin-corrected anion gap = {fmt(ag)} + 2.5 × (4 - {fmt(albumin)}) = {fmt(ag)} + "
        f"{fmt(2.5 * (NORMAL_ALBUMIN - albumin))} = {fmt(acag)} mEq/L."
    )
    return acag, lines


def _ratio(gap: float, bicarbonate: float, what: str) -> float:
    if bicarbonate == NORMAL_BICARBONATE:
        raise ValueError(f"{what} is undefined when bicarbonate is 24 mEq/L (division by zero)")
    return gap / (NORMAL_BICARBONATE - bicarbonate)


@calculator(
    id=39,
    name="Anion Gap",
    category="lab",
    output_type="decimal",
    reference=_AG_REFERENCE,
    formula=_AG_FORMULA,
    inputs=_AG_INPUTS,
    from_entities=_ag_from_entities,
)
def anion_gap(
    *, sodium: float, chloride: float, bicarbonate: float, conversions: Sequence[str] = ()
) -> CalcResult:
    """Serum anion gap without potassium."""
    ag, lines = _ag_lines(sodium, chloride, bicarbonate, conversions)
    value = rnd(ag)
    lines.insert(0, _AG_FORMULA)
    lines.append(f"Answer: the anion gap is {fmt(value)} mEq/L.")
    return CalcResult(value, "\n".join(lines))


@calculator(
    id=63,
    name="Delta Gap",
    category="lab",
    output_type="decimal",
    reference=_DELTA_REFERENCE + ". " + _AG_REFERENCE,
    formula="Delta gap (mEq/L) = anion gap - 12, where anion gap = Na - (Cl + HCO3).",
    inputs=_AG_INPUTS,
    from_entities=_ag_from_entities,
)
def delta_gap(
    *, sodium: float, chloride: float, bicarbonate: float, conversions: Sequence[str] = ()
) -> CalcResult:
    """Delta gap: the rise of the anion gap above a normal of 12 mEq/L."""
    ag, lines = _ag_lines(sodium, chloride, bicarbonate, conversions)
    value = rnd(ag - NORMAL_ANION_GAP)
    lines.insert(0, "Delta gap (mEq/L) = anion gap - 12 (normal anion gap); " + _AG_FORMULA)
    lines.append(f"Delta gap = {fmt(ag)} - 12 = {fmt(value)} mEq/L.")
    lines.append(f"Answer: the delta gap is {fmt(value)} mEq/L.")
    return CalcResult(value, "\n".join(lines))


@calculator(
    id=64,
    name="Delta Ratio",
    category="lab",
    output_type="decimal",
    reference=_DELTA_REFERENCE + ". " + _AG_REFERENCE,
    formula="Delta ratio = (anion gap - 12) / (24 - HCO3), where anion gap = Na - (Cl + HCO3).",
    inputs=_AG_INPUTS,
    from_entities=_ag_from_entities,
)
def delta_ratio(
    *, sodium: float, chloride: float, bicarbonate: float, conversions: Sequence[str] = ()
) -> CalcResult:
    """Delta ratio (Δ anion gap / Δ bicarbonate); undefined when bicarbonate is exactly 24 mEq/L."""
    ag, lines = _ag_lines(sodium, chloride, bicarbonate, conversions)
    dg = ag - NORMAL_ANION_GAP
    value = rnd(_ratio(dg, bicarbonate, "the delta ratio"))
    lines.insert(0, "Delta ratio = delta gap / (24 - HCO3) = (anion gap - 12) / (24 - HCO3); " + _AG_FORMULA)
    lines.append(f"Delta gap = {fmt(ag)} - 12 = {fmt(dg)} mEq/L.")
    lines.append(
        f"Delta ratio = {fmt(dg)} / (24 - {fmt(bicarbonate)}) = {fmt(dg)} / {par(NORMAL_BICARBONATE - bicarbonate)} = "
        f"{fmt(value)}."
    )
    lines.append(f"Answer: the delta ratio is {fmt(value)}.")
    return CalcResult(value, "\n".join(lines))


@calculator(
    id=65,
    name="Albumin Corrected Anion Gap",
    category="lab",
    output_type="decimal",
    reference=_ALBUMIN_REFERENCE + ". " + _AG_REFERENCE,
    formula=_ACAG_FORMULA + " " + _AG_FORMULA,
    inputs=_ACAG_INPUTS,
    from_entities=_acag_from_entities,
)
def albumin_corrected_anion_gap(
    *, sodium: float, chloride: float, bicarbonate: float, albumin: float, conversions: Sequence[str] = ()
) -> CalcResult:
    """Anion gap corrected for albumin: + 2.5 mEq/L per 1 g/dL of albumin below 4 g/dL."""
    acag, lines = _acag_lines(sodium, chloride, bicarbonate, albumin, conversions)
    value = rnd(acag)
    lines.insert(0, _ACAG_FORMULA + " " + _AG_FORMULA)
    lines.append(f"Answer: the albumin-corrected anion gap is {fmt(value)} mEq/L.")
    return CalcResult(value, "\n".join(lines))


@calculator(
    id=66,
    name="Albumin Corrected Delta Gap",
    category="lab",
    output_type="decimal",
    reference=_ALBUMIN_REFERENCE + ". " + _DELTA_REFERENCE + ".",
    formula="Albumin-corrected delta gap (mEq/L) = albumin-corrected anion gap - 12. " + _ACAG_FORMULA,
    inputs=_ACAG_INPUTS,
    from_entities=_acag_from_entities,
)
def albumin_corrected_delta_gap(
    *, sodium: float, chloride: float, bicarbonate: float, albumin: float, conversions: Sequence[str] = ()
) -> CalcResult:
    """Albumin-corrected anion gap minus the normal gap of 12 mEq/L."""
    acag, lines = _acag_lines(sodium, chloride, bicarbonate, albumin, conversions)
    value = rnd(acag - NORMAL_ANION_GAP)
    lines.insert(
        0,
        "Albumin-corrected delta gap = albumin-corrected anion gap - 12. "
        + _ACAG_FORMULA
        + " "
        + _AG_FORMULA,
    )
    lines.append(f"Albumin-corrected delta gap = {fmt(acag)} - 12 = {fmt(value)} mEq/L.")
    lines.append(f"Answer: the albumin-corrected delta gap is {fmt(value)} mEq/L.")
    return CalcResult(value, "\n".join(lines))


@calculator(
    id=67,
    name="Albumin Corrected Delta Ratio",
    category="lab",
    output_type="decimal",
    reference=_ALBUMIN_REFERENCE + ". " + _DELTA_REFERENCE + ".",
    formula="Albumin-corrected delta ratio = (albumin-corrected anion gap - 12) / (24 - HCO3). "
    + _ACAG_FORMULA,
    inputs=_ACAG_INPUTS,
    from_entities=_acag_from_entities,
)
def albumin_corrected_delta_ratio(
    *, sodium: float, chloride: float, bicarbonate: float, albumin: float, conversions: Sequence[str] = ()
) -> CalcResult:
    """Albumin-corrected delta gap divided by the bicarbonate fall below 24 mEq/L."""
    acag, lines = _acag_lines(sodium, chloride, bicarbonate, albumin, conversions)
    dg = acag - NORMAL_ANION_GAP
    value = rnd(_ratio(dg, bicarbonate, "the albumin-corrected delta ratio"))
    lines.insert(
        0,
        "Albumin-corrected delta ratio = albumin-corrected delta gap / (24 - HCO3), where the albumin-corrected "
        "delta gap = albumin-corrected anion gap - 12. " + _ACAG_FORMULA + " " + _AG_FORMULA,
    )
    lines.append(f"Albumin-corrected delta gap = {fmt(acag)} - 12 = {fmt(dg)} mEq/L.")
    lines.append(
        f"Albumin-corrected delta ratio = {fmt(dg)} / (24 - {fmt(bicarbonate)}) = {fmt(dg)} / "
        f"{par(NORMAL_BICARBONATE - bicarbonate)} = {fmt(value)}."
    )
    lines.append(f"Answer: the albumin-corrected delta ratio is {fmt(value)}.")
    return CalcResult(value, "\n".join(lines))
