"""Note specs for the calculators in `calculators/scores_risk.py` (cardiac, bleeding, thrombosis, pneumonia,
ICU and comorbidity scores)."""

from __future__ import annotations

from ehrmind.tasks.medcalc.notes.draft import Draft, Flag, _spec
from ehrmind.tasks.medcalc.notes.quantities import (
    _BODY,
    _DIABETES_LABS,
    _LIVER_LABS,
    _RENAL_LABS,
    BILIRUBIN,
    BMI,
    BUN,
    CREATININE,
    FIO2,
    GCS_TOTAL,
    HEMATOCRIT,
    HEMOGLOBIN,
    HR,
    PAO2,
    PH,
    PLATELETS,
    POTASSIUM,
    RR,
    SODIUM,
    TEMP,
    URINE_OUTPUT,
    WBC,
    _num,
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


# ---- scores: pneumonia and sepsis
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
