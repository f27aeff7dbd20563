"""MedCalc-Bench v1.0's own wording, so synthetic notes ask their questions as the benchmark does."""

from __future__ import annotations

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
