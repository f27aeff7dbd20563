"""Note specs for the calculators in `calculators/scores_severity.py` (Child-Pugh, PERC, Centor, FeverPAIN,
SIRS, PSI, GCS)."""

from __future__ import annotations

from ehrmind.tasks.medcalc.notes.draft import Draft, Flag, _spec
from ehrmind.tasks.medcalc.notes.quantities import (
    _LIVER_LABS,
    _RENAL_LABS,
    ALBUMIN,
    BILIRUBIN,
    BUN,
    GLUCOSE,
    HEMATOCRIT,
    HR,
    INR,
    PACO2,
    PAO2,
    PH,
    RR,
    SODIUM,
    SPO2,
    TEMP,
    WBC,
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
