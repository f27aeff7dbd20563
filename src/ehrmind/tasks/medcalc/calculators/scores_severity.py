"""Severity and diagnosis scores (MedCalc-Bench categories `severity` and `diagnosis`).

Severity: 15 Child-Pugh, 20 Centor (McIsaac), 21 Glasgow Coma Scale, 29 PSI/PORT.
Diagnosis: 33 FeverPAIN, 48 PERC rule (number of criteria met), 51 SIRS (number of criteria met).

As in `scores_risk`, a criterion absent from a row's `Relevant Entities` counts as not present.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ehrmind.tasks.medcalc.calculators.base import CalcResult
from ehrmind.tasks.medcalc.calculators.scores_risk import (
    Tally,
    age_years,
    albumin_g_dl,
    bilirubin_mg_dl,
    bun_mg_dl,
    cells_per_ul,
    flag,
    fmt,
    glucose_mg_dl,
    is_female,
    lookup,
    mmol_l,
    optional,
    percent,
    pressure_mmhg,
    rate,
    score_calculator,
    temperature_c,
    text_choice,
    with_conversions,
)
from ehrmind.tasks.medcalc.calculators.units import need, value_unit

# ---------------------------------------------------------------------------------------------------------
# 15  Child-Pugh
# ---------------------------------------------------------------------------------------------------------

_ASCITES = {
    "absent": 1,
    "none": 1,
    "slight": 2,
    "mild": 2,
    "moderate": 3,
    "severe": 3,
    "moderate to severe": 3,
}
_ENCEPHALOPATHY = {"no encephalopathy": 1, "none": 1, "grade 0": 1, "grade 1-2": 2, "grade 3-4": 3}


@with_conversions
def _child_pugh_entities(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "bilirubin": bilirubin_mg_dl(need(e, "Bilirubin")),
        "albumin": albumin_g_dl(need(e, "Albumin")),
        "inr": value_unit(need(e, "international normalized ratio", "INR"))[0],
        "ascites": text_choice(optional(e, "Ascites") or "absent"),
        "encephalopathy": text_choice(optional(e, "Encephalopathy") or "no encephalopathy"),
    }


@score_calculator(
    id=15,
    name="Child-Pugh Score for Cirrhosis Mortality",
    category="severity",
    output_type="integer",
    reference=(
        "Pugh RNH, Murray-Lyon IM, Dawson JL, Pietroni MC, Williams R. Transection of the oesophagus for "
        "bleeding oesophageal varices. Br J Surg 1973;60:646-649 (INR cut-offs as in current use)."
    ),
    formula=(
        "Bilirubin (mg/dL) <2 1, 2-3 2, >3 3; albumin (g/dL) >3.5 1, 2.8-3.5 2, <2.8 3; INR <1.7 1, 1.7-2.3 "
        "2, >2.3 3; ascites absent 1, slight 2, moderate 3; encephalopathy none 1, grade 1-2 2, grade 3-4 3. "
        "Range 5-15 (class A 5-6, B 7-9, C 10-15)."
    ),
    inputs={
        "bilirubin": "total bilirubin, mg/dL",
        "albumin": "serum albumin, g/dL",
        "inr": "INR",
        "ascites": "'absent', 'slight' or 'moderate'",
        "encephalopathy": "'no encephalopathy', 'grade 1-2' or 'grade 3-4'",
    },
    from_entities=_child_pugh_entities,
)
def child_pugh(
    *,
    bilirubin: float,
    albumin: float,
    inr: float,
    ascites: str = "absent",
    encephalopathy: str = "no encephalopathy",
    conversions: Sequence[str] = (),
) -> CalcResult:
    """Child-Pugh score. Every item scores at least 1. MedCalc-Bench v1.0 never scores ascites (its labels are
    1-3 points low), gives albumin 2.8 g/dL 3 points and bilirubin 2.0 mg/dL none; those rows disagree."""
    t = Tally("Child-Pugh score (Pugh 1973): 1-3 points for each of five items.", conversions)
    pts, label = (1, "<2") if bilirubin < 2 else (2, "2-3") if bilirubin <= 3 else (3, ">3")
    t.add(f"Bilirubin {fmt(bilirubin)} mg/dL", pts, label)
    pts, label = (1, ">3.5") if albumin > 3.5 else (2, "2.8-3.5") if albumin >= 2.8 else (3, "<2.8")
    t.add(f"Albumin {fmt(albumin)} g/dL", pts, label)
    pts, label = (1, "<1.7") if inr < 1.7 else (2, "1.7-2.3") if inr <= 2.3 else (3, ">2.3")
    t.add(f"INR {fmt(inr)}", pts, label)
    t.add("Ascites", lookup(_ASCITES, ascites, "ascites"), ascites)
    t.add("Hepatic encephalopathy", lookup(_ENCEPHALOPATHY, encephalopathy, "encephalopathy"), encephalopathy)
    score = int(t.total)
    klass = "A" if score <= 6 else "B" if score <= 9 else "C"
    return t.result(f"Child-Pugh score = {score} (class {klass}).", score)


# ---------------------------------------------------------------------------------------------------------
# 20  Centor score, McIsaac modification
# ---------------------------------------------------------------------------------------------------------


@with_conversions
def _centor_entities(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "age": age_years(need(e, "age")),
        "temperature": temperature_c(need(e, "Temperature")),
        "cough_absent": flag(e, "Cough Absent"),
        "tender_nodes": flag(e, "Tender/swollen anterior cervical lymph nodes"),
        "tonsillar_exudate": flag(e, "Exudate or swelling on tonsils"),
    }


@score_calculator(
    id=20,
    name="Centor Score (Modified/McIsaac) for Strep Pharyngitis",
    category="severity",
    output_type="integer",
    reference=(
        "McIsaac WJ, White D, Tannenbaum D, Low DE. A clinical score to reduce unnecessary antibiotic use in "
        "patients with sore throat. CMAJ 1998;158:75-83 (Centor RM et al. Med Decis Making 1981;1:239-246)."
    ),
    formula=(
        "Age 3-14 +1, 15-44 0, ≥45 −1; temperature >38 °C +1; absence of cough +1; tender/swollen anterior "
        "cervical nodes +1; tonsillar exudate or swelling +1. Range −1 to 5."
    ),
    inputs={
        "age": "age, years",
        "temperature": "temperature, °C",
        "cough_absent": "cough is absent",
        "tender_nodes": "tender/swollen anterior cervical lymph nodes",
        "tonsillar_exudate": "exudate or swelling on tonsils",
    },
    from_entities=_centor_entities,
)
def centor_mcisaac(
    *,
    age: float,
    temperature: float,
    cough_absent: bool = False,
    tender_nodes: bool = False,
    tonsillar_exudate: bool = False,
    conversions: Sequence[str] = (),
) -> CalcResult:
    """Modified Centor (McIsaac 1998). The score was derived for ages ≥3; a younger child's age scores 0."""
    t = Tally("Centor score, McIsaac modification (McIsaac 1998): add the points of each item.", conversions)
    if 3 <= age < 15:
        t.add(f"Age {fmt(age)} years", 1, "3-14")
    elif age >= 45:
        t.add(f"Age {fmt(age)} years", -1, "≥45")
    else:
        t.add(f"Age {fmt(age)} years", 0, "15-44" if age >= 15 else "<3 (outside the derivation range)")
    fever = temperature > 38
    t.add(f"Temperature {fmt(temperature)} °C", 1 if fever else 0, ">38" if fever else "≤38")
    t.criterion("Absence of cough", cough_absent, 1)
    t.criterion("Tender/swollen anterior cervical lymph nodes", tender_nodes, 1)
    t.criterion("Tonsillar exudate or swelling", tonsillar_exudate, 1)
    score = int(t.total)
    return t.result(f"Centor (McIsaac) score = {score}.", score)


# ---------------------------------------------------------------------------------------------------------
# 21  Glasgow Coma Scale
# ---------------------------------------------------------------------------------------------------------

_GCS_EYE = {
    "eyes open spontaneously": 4,
    "eye opening to verbal command": 3,
    "eye opening to pain": 2,
    "no eye opening": 1,
    "not testable": 1,
}
_GCS_VERBAL = {
    "oriented": 5,
    "confused": 4,
    "inappropriate words": 3,
    "incomprehensible sounds": 2,
    "no verbal response": 1,
    "not testable": 1,
}
_GCS_MOTOR = {
    "obeys commands": 6,
    "localizes pain": 5,
    "withdrawal from pain": 4,
    "flexion to pain": 3,
    "extension to pain": 2,
    "no motor response": 1,
    "not testable": 1,
}


@with_conversions
def _gcs_entities(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "eye": text_choice(need(e, "Best eye response")),
        "verbal": text_choice(need(e, "Best verbal response")),
        "motor": text_choice(need(e, "Best motor response")),
    }


@score_calculator(
    id=21,
    name="Glasgow Coma Score (GCS)",
    category="severity",
    output_type="integer",
    reference="Teasdale G, Jennett B. Assessment of coma and impaired consciousness: a practical scale. Lancet 1974;2:81-84.",
    formula=(
        "GCS = eye (spontaneous 4, to verbal command 3, to pain 2, none 1) + verbal (oriented 5, confused 4, "
        "inappropriate words 3, incomprehensible sounds 2, none 1) + motor (obeys 6, localizes 5, withdraws 4, "
        "abnormal flexion 3, extension 2, none 1). Range 3-15."
    ),
    inputs={
        "eye": "best eye response: " + ", ".join(_GCS_EYE),
        "verbal": "best verbal response: " + ", ".join(_GCS_VERBAL),
        "motor": "best motor response: " + ", ".join(_GCS_MOTOR),
    },
    from_entities=_gcs_entities,
)
def glasgow_coma_scale(*, eye: str, verbal: str, motor: str, conversions: Sequence[str] = ()) -> CalcResult:
    """GCS = eye + verbal + motor.

    MedCalc-Bench v1.0 adds the verbal response twice (its explanations list it two times), so every v1.0
    label exceeds the true GCS by the verbal score. A component that is 'not testable' (e.g. verbal when
    intubated, eyes after ocular surgery) scores 1 and is flagged, the bedside convention behind 'GCS 3T'
    and the one the physician-corrected labels use; v1.0 instead assumes a normal response (eye 4, verbal 4).
    Teasdale et al. (Lancet Neurol 2014) recommend reporting such a component as NT rather than summing."""
    e_pts = lookup(_GCS_EYE, eye, "eye response")
    v_pts = lookup(_GCS_VERBAL, verbal, "verbal response")
    m_pts = lookup(_GCS_MOTOR, motor, "motor response")
    t = Tally("Glasgow Coma Scale (Teasdale & Jennett 1974) = eye + verbal + motor.", conversions)
    nt = " (not testable: scored 1 and flagged 'T')"
    t.add("Best eye response", e_pts, eye + (nt if eye == "not testable" else ""))
    t.add("Best verbal response", v_pts, verbal + (nt if verbal == "not testable" else ""))
    t.add("Best motor response", m_pts, motor + (nt if motor == "not testable" else ""))
    score = int(t.total)
    return t.result(f"GCS = {e_pts} + {v_pts} + {m_pts} = {score}.", score)


# ---------------------------------------------------------------------------------------------------------
# 29  Pneumonia Severity Index (PORT)
# ---------------------------------------------------------------------------------------------------------

_PSI_HISTORY = (
    ("nursing_home", "Nursing home resident", 10, ("Nursing home resident",)),
    ("neoplastic_disease", "Neoplastic disease", 30, ("Neoplastic disease",)),
    ("liver_disease", "Liver disease", 20, ("Liver disease severity", "Liver disease history")),
    (
        "heart_failure",
        "Congestive heart failure",
        10,
        ("Congestive Heart Faliure", "Congestive Heart Failure"),
    ),
    ("cerebrovascular_disease", "Cerebrovascular disease", 10, ("Cerebrovascular disease history",)),
    ("renal_disease", "Renal disease", 10, ("Renal disease",)),
    ("altered_mental_status", "Altered mental status", 20, ("Altered mental status",)),
    ("pleural_effusion", "Pleural effusion on chest x-ray", 10, ("Pleural effusion on x-ray",)),
)


@with_conversions
def _psi_entities(e: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {key: flag(e, *names) for key, _label, _pts, names in _PSI_HISTORY}
    out |= {
        "age": age_years(need(e, "age")),
        "female": is_female(e),
        "respiratory_rate": rate(need(e, "respiratory rate")),
        "systolic_bp": pressure_mmhg(need(e, "Systolic Blood Pressure"), "systolic blood pressure"),
        "temperature": temperature_c(need(e, "Temperature")),
        "heart_rate": rate(need(e, "Heart Rate or Pulse")),
        "ph": value_unit(need(e, "pH"))[0],
        "bun": bun_mg_dl(need(e, "Blood Urea Nitrogen (BUN)")),
        "sodium": mmol_l(need(e, "Sodium"), "sodium"),
        "glucose": glucose_mg_dl(need(e, "Glucose")),
        "hematocrit": percent(need(e, "Hematocrit")),
        "pao2": pressure_mmhg(need(e, "Partial pressure of oxygen (PaO₂) for Apache II", "PaO₂"), "PaO2"),
    }
    return out


@score_calculator(
    id=29,
    name="PSI Score: Pneumonia Severity Index for CAP",
    category="severity",
    output_type="integer",
    reference=(
        "Fine MJ, Auble TE, Yealy DM, et al. A prediction rule to identify low-risk patients with "
        "community-acquired pneumonia. N Engl J Med 1997;336:243-250."
    ),
    formula=(
        "Age in years (women: age − 10); nursing home resident +10; neoplastic disease +30; liver disease +20; "
        "CHF +10; cerebrovascular disease +10; renal disease +10; altered mental status +20; respiratory rate "
        "≥30 +20; systolic BP <90 +20; temperature <35 or ≥40 °C +15; pulse ≥125 +10; arterial pH <7.35 +30; "
        "BUN ≥30 mg/dL +20; sodium <130 mmol/L +20; glucose ≥250 mg/dL +10; hematocrit <30% +10; PaO2 <60 "
        "mm Hg +10; pleural effusion +10."
    ),
    inputs={key: label for key, label, _pts, _names in _PSI_HISTORY}
    | {
        "age": "age, years",
        "female": "sex is female",
        "respiratory_rate": "respiratory rate, breaths/min",
        "systolic_bp": "systolic blood pressure, mm Hg",
        "temperature": "temperature, °C",
        "heart_rate": "pulse, beats/min",
        "ph": "arterial pH",
        "bun": "blood urea nitrogen, mg/dL",
        "sodium": "serum sodium, mmol/L",
        "glucose": "glucose, mg/dL",
        "hematocrit": "hematocrit, %",
        "pao2": "PaO2, mm Hg",
    },
    from_entities=_psi_entities,
)
def psi(
    *,
    age: float,
    female: bool,
    respiratory_rate: float,
    systolic_bp: float,
    temperature: float,
    heart_rate: float,
    ph: float,
    bun: float,
    sodium: float,
    glucose: float,
    hematocrit: float,
    pao2: float,
    nursing_home: bool = False,
    neoplastic_disease: bool = False,
    liver_disease: bool = False,
    heart_failure: bool = False,
    cerebrovascular_disease: bool = False,
    renal_disease: bool = False,
    altered_mental_status: bool = False,
    pleural_effusion: bool = False,
    conversions: Sequence[str] = (),
) -> CalcResult:
    """PSI/PORT score (Fine 1997). MedCalc-Bench v1.0 converts temperatures labelled 'degrees celsisus' as
    if they were Fahrenheit (so ~37 °C becomes <35 °C, +15); those labels disagree."""
    values = locals()
    t = Tally(
        "Pneumonia Severity Index (Fine 1997): age points plus the points of each finding.", conversions
    )
    t.add(f"Age {fmt(age)} years", age, "age in years")
    if female:
        t.add("Sex", -10, "female")
    else:
        t.add("Sex", 0, "male")
    for key, label, points, _names in _PSI_HISTORY:
        t.criterion(label, values[key], points)
    t.add(
        f"Respiratory rate {fmt(respiratory_rate)}/min",
        20 if respiratory_rate >= 30 else 0,
        "≥30" if respiratory_rate >= 30 else "<30",
    )
    t.add(
        f"Systolic BP {fmt(systolic_bp)} mm Hg",
        20 if systolic_bp < 90 else 0,
        "<90" if systolic_bp < 90 else "≥90",
    )
    abnormal_t = temperature < 35 or temperature >= 40
    t.add(
        f"Temperature {fmt(temperature)} °C",
        15 if abnormal_t else 0,
        "<35 or ≥40" if abnormal_t else "35-39.9",
    )
    t.add(
        f"Pulse {fmt(heart_rate)}/min",
        10 if heart_rate >= 125 else 0,
        "≥125" if heart_rate >= 125 else "<125",
    )
    t.add(f"Arterial pH {fmt(ph)}", 30 if ph < 7.35 else 0, "<7.35" if ph < 7.35 else "≥7.35")
    t.add(f"BUN {fmt(bun)} mg/dL", 20 if bun >= 30 else 0, "≥30" if bun >= 30 else "<30")
    t.add(f"Sodium {fmt(sodium)} mmol/L", 20 if sodium < 130 else 0, "<130" if sodium < 130 else "≥130")
    t.add(f"Glucose {fmt(glucose)} mg/dL", 10 if glucose >= 250 else 0, "≥250" if glucose >= 250 else "<250")
    t.add(f"Hematocrit {fmt(hematocrit)}%", 10 if hematocrit < 30 else 0, "<30" if hematocrit < 30 else "≥30")
    t.add(f"PaO2 {fmt(pao2)} mm Hg", 10 if pao2 < 60 else 0, "<60" if pao2 < 60 else "≥60")
    score = round(t.total)
    klass = (
        "I-II (≤70)"
        if score <= 70
        else "III (71-90)"
        if score <= 90
        else "IV (91-130)"
        if score <= 130
        else "V (>130)"
    )
    return t.result(f"PSI = {score} (risk class {klass}).", score)


# ---------------------------------------------------------------------------------------------------------
# 33  FeverPAIN
# ---------------------------------------------------------------------------------------------------------


@with_conversions
def _feverpain_entities(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "fever": flag(e, "Fever in past 24 hours"),
        "purulence": flag(e, "Purulent tonsils"),
        "attend_rapidly": flag(e, "Symptom onset ≤3 days"),
        "inflamed_tonsils": flag(e, "Severe tonsil inflammation"),
        "no_cough_or_coryza": flag(e, "Absence of cough or coryza"),
    }


@score_calculator(
    id=33,
    name="FeverPAIN Score for Strep Pharyngitis",
    category="diagnosis",
    output_type="integer",
    reference=(
        "Little P, Hobbs FDR, Moore M, et al. Clinical score and rapid antigen detection test to guide "
        "antibiotic use for sore throats: randomised controlled trial of PRISM (primary care streptococcal "
        "management). BMJ 2013;347:f5806."
    ),
    formula=(
        "+1 each: Fever in the past 24 h; Purulence (tonsillar exudate); Attend rapidly (symptom onset ≤3 "
        "days); severely Inflamed tonsils; No cough or coryza. Range 0-5."
    ),
    inputs={
        "fever": "fever in the past 24 hours",
        "purulence": "purulent tonsils",
        "attend_rapidly": "symptom onset ≤3 days",
        "inflamed_tonsils": "severely inflamed tonsils",
        "no_cough_or_coryza": "absence of cough or coryza",
    },
    from_entities=_feverpain_entities,
)
def feverpain(
    *,
    fever: bool = False,
    purulence: bool = False,
    attend_rapidly: bool = False,
    inflamed_tonsils: bool = False,
    no_cough_or_coryza: bool = False,
    conversions: Sequence[str] = (),
) -> CalcResult:
    """FeverPAIN (Little 2013). Entities of other calculators that v1.0 rows carry (PECARN) are ignored."""
    t = Tally("FeverPAIN score (Little 2013): +1 per item present.", conversions)
    t.criterion("Fever in the past 24 hours", fever, 1)
    t.criterion("Purulence", purulence, 1)
    t.criterion("Attend rapidly (symptom onset ≤3 days)", attend_rapidly, 1)
    t.criterion("Severely inflamed tonsils", inflamed_tonsils, 1)
    t.criterion("No cough or coryza", no_cough_or_coryza, 1)
    score = int(t.total)
    return t.result(f"FeverPAIN score = {score}.", score)


# ---------------------------------------------------------------------------------------------------------
# 48  PERC rule
# ---------------------------------------------------------------------------------------------------------


@with_conversions
def _perc_entities(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "age": age_years(need(e, "age")),
        "heart_rate": rate(need(e, "Heart Rate or Pulse")),
        "o2_saturation": percent(need(e, "O₂ saturation percentage")),
        "unilateral_leg_swelling": flag(e, "Unilateral Leg Swelling"),
        "hemoptysis": flag(e, "Hemoptysis"),
        "recent_surgery_or_trauma": flag(e, "Recent surgery or trauma"),
        "prior_pe_or_dvt": flag(
            e, "Previously Documented Pulmonary Embolism", "Previously documented Deep Vein Thrombosis"
        ),
        "hormone_use": flag(e, "Hormone use"),
    }


@score_calculator(
    id=48,
    name="PERC Rule for Pulmonary Embolism",
    category="diagnosis",
    output_type="integer",
    reference=(
        "Kline JA, Mitchell AM, Kabrhel C, Richman PB, Courtney DM. Clinical criteria to prevent unnecessary "
        "diagnostic testing in emergency department patients with suspected pulmonary embolism. J Thromb "
        "Haemost 2004;2:1247-1255."
    ),
    formula=(
        "Count of criteria met: age ≥50; heart rate ≥100; SaO2 <95%; unilateral leg swelling; hemoptysis; "
        "recent surgery or trauma (≤4 weeks); prior PE or DVT; hormone use. 0 = PERC negative."
    ),
    inputs={
        "age": "age, years",
        "heart_rate": "heart rate, beats/min",
        "o2_saturation": "oxygen saturation, %",
        "unilateral_leg_swelling": "unilateral leg swelling",
        "hemoptysis": "hemoptysis",
        "recent_surgery_or_trauma": "surgery or trauma within 4 weeks",
        "prior_pe_or_dvt": "prior PE or DVT",
        "hormone_use": "oral contraceptives, hormone replacement or estrogen use",
    },
    from_entities=_perc_entities,
)
def perc(
    *,
    age: float,
    heart_rate: float,
    o2_saturation: float,
    unilateral_leg_swelling: bool = False,
    hemoptysis: bool = False,
    recent_surgery_or_trauma: bool = False,
    prior_pe_or_dvt: bool = False,
    hormone_use: bool = False,
    conversions: Sequence[str] = (),
) -> CalcResult:
    """PERC rule (Kline 2004); MedCalc-Bench asks for the number of criteria met."""
    t = Tally(
        "PERC rule (Kline 2004): count the criteria met (PE is ruled out only if none is met).", conversions
    )
    t.add(f"Age {fmt(age)} years", 1 if age >= 50 else 0, "≥50, met" if age >= 50 else "<50, not met")
    t.add(
        f"Heart rate {fmt(heart_rate)}/min",
        1 if heart_rate >= 100 else 0,
        "≥100, met" if heart_rate >= 100 else "<100, not met",
    )
    t.add(
        f"O2 saturation {fmt(o2_saturation)}%",
        1 if o2_saturation < 95 else 0,
        "<95%, met" if o2_saturation < 95 else "≥95%, not met",
    )
    t.criterion("Unilateral leg swelling", unilateral_leg_swelling, 1)
    t.criterion("Hemoptysis", hemoptysis, 1)
    t.criterion("Recent surgery or trauma", recent_surgery_or_trauma, 1)
    t.criterion("Prior PE or DVT", prior_pe_or_dvt, 1)
    t.criterion("Hormone use", hormone_use, 1)
    count = int(t.total)
    return t.result(f"Number of PERC criteria met = {count}.", count)


# ---------------------------------------------------------------------------------------------------------
# 51  SIRS criteria
# ---------------------------------------------------------------------------------------------------------


@with_conversions
def _sirs_entities(e: dict[str, Any]) -> dict[str, Any]:
    paco2 = optional(e, "PaCO₂")
    return {
        "temperature": temperature_c(need(e, "Temperature")),
        "heart_rate": rate(need(e, "Heart Rate or Pulse")),
        "respiratory_rate": rate(need(e, "respiratory rate")),
        "paco2": None if paco2 is None else pressure_mmhg(paco2, "PaCO2"),
        "wbc": cells_per_ul(need(e, "White blood cell count"), "white blood cell count"),
    }


@score_calculator(
    id=51,
    name="SIRS Criteria",
    category="diagnosis",
    output_type="integer",
    reference=(
        "Bone RC, Balk RA, Cerra FB, et al. Definitions for sepsis and organ failure and guidelines for the "
        "use of innovative therapies in sepsis (ACCP/SCCM Consensus Conference). Chest 1992;101:1644-1655."
    ),
    formula=(
        "Count of criteria met: temperature >38 °C or <36 °C; heart rate >90/min; respiratory rate >20/min "
        "or PaCO2 <32 mm Hg; WBC >12 000/µL or <4 000/µL (or >10% bands). Range 0-4."
    ),
    inputs={
        "temperature": "temperature, °C",
        "heart_rate": "heart rate, beats/min",
        "respiratory_rate": "respiratory rate, breaths/min",
        "paco2": "PaCO2, mm Hg (None if not reported)",
        "wbc": "white blood cell count, cells/µL",
        "bands_over_10_percent": "immature (band) forms >10%",
    },
    from_entities=_sirs_entities,
)
def sirs(
    *,
    temperature: float,
    heart_rate: float,
    respiratory_rate: float,
    wbc: float,
    paco2: float | None = None,
    bands_over_10_percent: bool = False,
    conversions: Sequence[str] = (),
) -> CalcResult:
    """SIRS criteria count (Bone 1992). WBC counts in MedCalc-Bench rows come with garbled units; see
    `scores_risk.cells_per_ul` for how they are read."""
    t = Tally("SIRS criteria (Bone 1992): count the criteria met.", conversions)
    met = temperature > 38 or temperature < 36
    t.add(
        f"Temperature {fmt(temperature)} °C", 1 if met else 0, ">38 or <36, met" if met else "36-38, not met"
    )
    met = heart_rate > 90
    t.add(f"Heart rate {fmt(heart_rate)}/min", 1 if met else 0, ">90, met" if met else "≤90, not met")
    met = respiratory_rate > 20 or (paco2 is not None and paco2 < 32)
    resp = f"Respiratory rate {fmt(respiratory_rate)}/min" + (
        "" if paco2 is None else f", PaCO2 {fmt(paco2)} mm Hg"
    )
    t.add(resp, 1 if met else 0, "RR >20 or PaCO2 <32, met" if met else "RR ≤20 and PaCO2 not <32, not met")
    met = wbc > 12000 or wbc < 4000 or bands_over_10_percent
    why = ">12 000 or <4 000/µL (or >10% bands), met" if met else "4 000-12 000/µL, not met"
    t.add(f"WBC {fmt(wbc)}/µL", 1 if met else 0, why)
    count = int(t.total)
    return t.result(f"Number of SIRS criteria met = {count}.", count)
