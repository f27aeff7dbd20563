"""Physical, dosage and date calculators (MedCalc-Bench ids 5, 6, 10, 11, 22, 56-62; 24, 49; 13, 68, 69).

1. Hand-worked cases from each published definition (table-driven, one comment per case).
2. `from_entities` on entity dicts copied from the data, unit conversions, and MissingInput.
3. Agreement with the v1.0 test labels under the official verifier rule, on the rows whose label the
   physician-corrected file (junzeye) confirms, and on all rows.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import pandas as pd
import pytest

from conftest import SHARED_DATA, shared_file
from ehrmind import get_task
from ehrmind.tasks.medcalc.calculators import load_all
from ehrmind.tasks.medcalc.calculators.base import MissingInput
from ehrmind.tasks.medcalc.calculators.dates import (
    estimated_conception_date,
    estimated_due_date,
    estimated_gestational_age,
)
from ehrmind.tasks.medcalc.calculators.dosage import morphine_milligram_equivalents, steroid_conversion
from ehrmind.tasks.medcalc.calculators.physical import (
    adjusted_body_weight,
    body_mass_index,
    body_surface_area,
    ideal_body_weight,
    maintenance_fluids,
    mean_arterial_pressure,
    qtc_bazett,
    qtc_framingham,
    qtc_fridericia,
    qtc_hodges,
    qtc_rautaharju,
    target_weight,
)

CALCS = load_all()
TASK = get_task("medcalc")
MEDCALC = SHARED_DATA / "medcalc_bench"

GROUPS = {
    "physical": (5, 6, 10, 11, 22, 56, 57, 58, 59, 60, 61, 62),
    "dosage": (24, 49),
    "date": (13, 68, 69),
}
MY_IDS = tuple(i for ids in GROUPS.values() for i in ids)


# ------------------------------------------------------------------------------------ registration
@pytest.mark.parametrize("cid", MY_IDS)
def test_registered_with_reference_and_type(cid):
    c = CALCS[cid]
    assert c.id == cid
    assert c.category in GROUPS and cid in GROUPS[c.category]
    expected = {13: "date", 68: "date", 69: "gestational_age"}.get(cid, "decimal")
    assert c.output_type == expected
    assert len(c.reference) > 30 and any(ch.isdigit() for ch in c.reference)  # authors/journal + a year
    assert c.formula and c.inputs


# ------------------------------------------------------------------------------------ hand-worked cases
NUMERIC_CASES = [
    # MAP = 2/3·DBP + 1/3·SBP: 120/80 → 80 + 40/3
    pytest.param(mean_arterial_pressure, {"sbp": 120, "dbp": 80}, 93.333, id="map-120/80"),
    # 140/80 → 100 exactly (the benchmark's row 61)
    pytest.param(mean_arterial_pressure, {"sbp": 140, "dbp": 80}, 100.0, id="map-140/80"),
    # BMI 70 kg / 1.75² = 22.857
    pytest.param(body_mass_index, {"weight": 70, "height": 175}, 22.857, id="bmi-70kg-175cm"),
    # BMI 10.2 kg / 0.838² = 14.525 (row 81)
    pytest.param(body_mass_index, {"weight": 10.2, "height": 83.8}, 14.525, id="bmi-child"),
    # Devine male 180 cm = 70.866 in: 50 + 2.3 × 10.866 = 74.992
    pytest.param(ideal_body_weight, {"sex": "male", "height": 180}, 74.992, id="ibw-male-180cm"),
    # Devine female at exactly 5 ft (152.4 cm): the base weight 45.5 kg (boundary of the formula)
    pytest.param(ideal_body_weight, {"sex": "Female", "height": 152.4}, 45.5, id="ibw-female-5ft"),
    # ABW female 168 cm, 80 kg: IBW 59.626, 59.626 + 0.4 × 20.374 = 67.776 (row 708)
    pytest.param(
        adjusted_body_weight, {"sex": "female", "weight": 80, "height": 168}, 67.776, id="abw-female"
    ),
    # ABW male 5 ft, 50 kg: weight = IBW = 50, so ABW = 50
    pytest.param(adjusted_body_weight, {"sex": "male", "weight": 50, "height": 152.4}, 50.0, id="abw-at-ibw"),
    # Bazett: HR 60 → RR 1 s, QTc = QT
    pytest.param(qtc_bazett, {"qt": 400, "heart_rate": 60}, 400.0, id="bazett-hr60"),
    # Bazett: HR 100 → RR 0.6 s, 350 / √0.6 = 451.848
    pytest.param(qtc_bazett, {"qt": 350, "heart_rate": 100}, 451.848, id="bazett-hr100"),
    # Fridericia: HR 60 → QTc = QT
    pytest.param(qtc_fridericia, {"qt": 400, "heart_rate": 60}, 400.0, id="fridericia-hr60"),
    # Fridericia: HR 75 → RR 0.8 s, 360 / 0.8^(1/3) = 387.798
    pytest.param(qtc_fridericia, {"qt": 360, "heart_rate": 75}, 387.798, id="fridericia-hr75"),
    # Framingham: HR 60 → QTc = QT
    pytest.param(qtc_framingham, {"qt": 400, "heart_rate": 60}, 400.0, id="framingham-hr60"),
    # Framingham: HR 120 → RR 0.5 s, 330 + 154 × 0.5 = 407
    pytest.param(qtc_framingham, {"qt": 330, "heart_rate": 120}, 407.0, id="framingham-hr120"),
    # Hodges: HR 60 → QTc = QT
    pytest.param(qtc_hodges, {"qt": 400, "heart_rate": 60}, 400.0, id="hodges-hr60"),
    # Hodges: 350 + 1.75 × (100 − 60) = 420
    pytest.param(qtc_hodges, {"qt": 350, "heart_rate": 100}, 420.0, id="hodges-hr100"),
    # Rautaharju: HR 60 → (120 + 60)/180 = 1, QTc = QT
    pytest.param(qtc_rautaharju, {"qt": 400, "heart_rate": 60}, 400.0, id="rautaharju-hr60"),
    # Rautaharju: 360 × 210 / 180 = 420
    pytest.param(qtc_rautaharju, {"qt": 360, "heart_rate": 90}, 420.0, id="rautaharju-hr90"),
    # 4-2-1 rule, first band: 7.9 kg × 4 = 31.6 mL/h
    pytest.param(maintenance_fluids, {"weight": 7.9}, 31.6, id="fluids-7.9kg"),
    # boundary 10 kg: 4 × 10 = 40 + 2 × 0 = 40 mL/h (the bands meet)
    pytest.param(maintenance_fluids, {"weight": 10}, 40.0, id="fluids-10kg-boundary"),
    # boundary 20 kg: 40 + 2 × 10 = 60 mL/h
    pytest.param(maintenance_fluids, {"weight": 20}, 60.0, id="fluids-20kg-boundary"),
    # third band: 60 + (70 − 20) = 110 mL/h
    pytest.param(maintenance_fluids, {"weight": 70}, 110.0, id="fluids-70kg"),
    # Mosteller: √(175 × 70 / 3600) = √3.4028 = 1.845 m²
    pytest.param(body_surface_area, {"weight": 70, "height": 175}, 1.845, id="bsa-70kg-175cm"),
    # Mosteller: √(176.1 × 77.1 / 3600) = 1.942 m² (row 683)
    pytest.param(body_surface_area, {"weight": 77.1, "height": 176.1}, 1.942, id="bsa-row683"),
    # target weight: 22 × 1.8² = 71.28 kg
    pytest.param(target_weight, {"target_bmi": 22, "height": 180}, 71.28, id="target-22-180cm"),
    # target weight: 19.2 × 1.96² = 73.759 kg (row 968)
    pytest.param(target_weight, {"target_bmi": 19.2, "height": 196}, 73.759, id="target-row968"),
    # prednisone 10 mg → methylprednisolone: 10 × 4/5 = 8 mg
    pytest.param(
        steroid_conversion,
        {"input_steroid": "PredniSONE PO", "dose": 10, "target_steroid": "MethylPrednisoLONE IV"},
        8.0,
        id="steroid-pred-to-mp",
    ),
    # dexamethasone 4 mg → hydrocortisone: 4 × 20/0.75 = 106.667 mg
    pytest.param(
        steroid_conversion,
        {"input_steroid": "Dexamethasone IV", "dose": 4, "target_steroid": "Hydrocortisone PO"},
        106.667,
        id="steroid-dex-to-hc",
    ),
    # oxycodone 10 mg × 4/day × 1.5 = 60 MME/day
    pytest.param(
        morphine_milligram_equivalents, {"regimen": [("OxyCODONE", 10, 4)]}, 60.0, id="mme-oxycodone"
    ),
    # methadone 10 mg × 3 × 4.7 = 141, + fentanyl patch 25 µg/h × 1 × 2.4 = 60 → 201 MME/day
    pytest.param(
        morphine_milligram_equivalents,
        {"regimen": [("Methadone", 10, 3), ("FentANYL patch", 25, 1)]},
        201.0,
        id="mme-methadone-patch",
    ),
]


@pytest.mark.parametrize("fn, kwargs, expected", NUMERIC_CASES)
def test_hand_worked(fn, kwargs, expected):
    res = fn(**kwargs)
    assert res.value == pytest.approx(expected, abs=1e-3)
    assert res.explanation.strip()
    # the explanation ends with the result, written as in the value
    last = res.explanation.strip().splitlines()[-1]
    assert f"{res.value:.3f}".rstrip("0").rstrip(".") in last


DATE_CASES = [
    # Naegele (published, the default): 01/01/2020 + 9 months + 7 days = 10/08/2020, 28-day cycle: no adjustment
    pytest.param(
        estimated_due_date, {"lmp": date(2020, 1, 1), "cycle_length": 28}, "10/08/2020", id="edd-28"
    ),
    # v1.0: + 280 days = 10/07/2020 (leap year)
    pytest.param(
        estimated_due_date,
        {"lmp": date(2020, 1, 1), "cycle_length": 28, "convention": "medcalc"},
        "10/07/2020",
        id="edd-28-medcalc",
    ),
    # 35-day cycle: + 7 days (both conventions add)
    pytest.param(
        estimated_due_date, {"lmp": date(2020, 1, 1), "cycle_length": 35}, "10/15/2020", id="edd-35"
    ),
    # 9 months after 05/31/2023 is clipped to the end of February: 02/29/2024 + 7 days
    pytest.param(
        estimated_due_date, {"lmp": date(2023, 5, 31), "cycle_length": 28}, "03/07/2024", id="edd-month-end"
    ),
    # 22-day cycle, MedCalc-Bench: + |22 − 28| = 6 days (row 928: 12/11/2013 → 09/17/2014 + 6)
    pytest.param(
        estimated_due_date,
        {"lmp": "12/11/2013", "cycle_length": 22, "convention": "medcalc"},
        "09/23/2014",
        id="edd-22-medcalc",
    ),
    # 22-day cycle, published (signed) adjustment, the default: 09/18/2014 − 6 days (row 928's corrected label)
    pytest.param(
        estimated_due_date, {"lmp": "12/11/2013", "cycle_length": 22}, "09/12/2014", id="edd-22-published"
    ),
    # conception, MedCalc-Bench: LMP + 14 days whatever the cycle (row 1008)
    pytest.param(
        estimated_conception_date,
        {"lmp": "12/17/2009", "cycle_length": 21, "convention": "medcalc"},
        "12/31/2009",
        id="conc-medcalc",
    ),
    # conception, published, the default: LMP + (21 − 14) = 7 days
    pytest.param(
        estimated_conception_date,
        {"lmp": "12/17/2009", "cycle_length": 21},
        "12/24/2009",
        id="conc-published",
    ),
    # conception across a year end, 28-day cycle: both conventions give LMP + 14
    pytest.param(
        estimated_conception_date,
        {"lmp": date(2023, 12, 25), "cycle_length": 28, "convention": "published"},
        "01/08/2024",
        id="conc-year-end",
    ),
    # gestational age: 6 days apart → (0 weeks, 6 days) (row 1028)
    pytest.param(
        estimated_gestational_age, {"lmp": "03/23/2020", "current_date": "03/29/2020"}, (0, 6), id="ga-6d"
    ),
    # gestational age: 280 days → exactly 40 weeks (boundary: 0 remaining days)
    pytest.param(
        estimated_gestational_age,
        {"lmp": date(2020, 1, 1), "current_date": date(2020, 10, 7)},
        (40, 0),
        id="ga-40w",
    ),
]


@pytest.mark.parametrize("fn, kwargs, expected", DATE_CASES)
def test_date_cases(fn, kwargs, expected):
    res = fn(**kwargs)
    assert res.value == expected
    assert res.explanation.strip()


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="sex"):
        ideal_body_weight(sex="unknown", height=170)
    with pytest.raises(ValueError, match="heart rate"):
        qtc_bazett(qt=400, heart_rate=0)
    with pytest.raises(ValueError, match="corticosteroid"):
        steroid_conversion(input_steroid="Fludrocortisone PO", dose=1, target_steroid="PredniSONE PO")
    with pytest.raises(ValueError, match="opioid"):
        morphine_milligram_equivalents(regimen=[("Heroin", 10, 1)])
    with pytest.raises(ValueError, match="convention"):
        estimated_due_date(lmp=date(2020, 1, 1), cycle_length=28, convention="other")
    with pytest.raises(ValueError, match="MM/DD/YYYY"):
        estimated_due_date(lmp="2020-01-01", cycle_length=28)


# ------------------------------------------------------------------------------------ from_entities
ENTITY_CASES = [
    # row 61 (v1.0 test)
    pytest.param(
        5,
        {"Systolic Blood Pressure": [140.0, "mm hg"], "Diastolic Blood Pressure": [80.0, "mm hg"]},
        100.0,
        id="5",
    ),
    # BMI with lb and in (train-sample units): 154 lb = 69.853 kg, 65 in = 1.651 m → 25.627
    pytest.param(6, {"weight": [154, "lbs"], "height": [65, "in"]}, 25.627, id="6-lb-in"),
    # row 168: male, 1.85 m → 72.835 in → 79.52 kg
    pytest.param(10, {"sex": "Male", "height": [1.85, "m"]}, 79.52, id="10-metres"),
    # IBW male 72 in: 50 + 2.3 × 12 = 77.6 kg
    pytest.param(10, {"sex": "Male", "height": [72, "in"]}, 77.6, id="10-inches"),
    # row 180
    pytest.param(
        11, {"Heart Rate or Pulse": [131, "beats per minute"], "QT interval": [330, "msec"]}, 487.612, id="11"
    ),
    # QT given in seconds: 0.4 s = 400 ms at HR 60
    pytest.param(
        11, {"Heart Rate or Pulse": [60, "beats per minute"], "QT interval": [0.4, "s"]}, 400.0, id="11-s"
    ),
    # maintenance fluids from grams (train units): 7900 g = 7.9 kg → 31.6 mL/h
    pytest.param(22, {"weight": [7900.0, "g"]}, 31.6, id="22-grams"),
    # 44.0925 lb ≈ 20.0 kg → 60 mL/h
    pytest.param(22, {"weight": [44.0925, "lbs"]}, 60.0, id="22-lbs"),
    # target weight with height in inches: 77 in = 1.9558 m, 19.2 × 1.9558² = 73.443
    pytest.param(61, {"Body Mass Index (BMI)": [19.2, "kg/m^2"], "height": [77, "in"]}, 73.443, id="61-in"),
    # row 708
    pytest.param(62, {"sex": "Female", "weight": [80.0, "kg"], "height": [168.0, "cm"]}, 67.776, id="62"),
    # steroid dose in grams: 1 g hydrocortisone = 1000 mg → 250 mg prednisone
    pytest.param(
        24,
        {"input steroid": ["Hydrocortisone IV", 1, "g"], "target steroid": "PredniSONE PO"},
        250.0,
        id="24-grams",
    ),
    # row 988: tapentadol 50×1×0.4 + tramadol 50×1×0.2 + buccal fentanyl 20 µg×2×0.13 = 35.2
    pytest.param(
        49,
        {
            "Tapentadol Dose": [50, "mg"],
            "Tapentadol Dose Per Day": [1, "per day"],
            "TraMADol Dose": [50, "mg"],
            "TraMADol Dose Per Day": [1, "per day"],
            "FentaNYL buccal Dose": [20, "µg"],
            "FentaNYL buccal Dose Per Day": [2, "per day"],
        },
        35.2,
        id="49",
    ),
    # buccal fentanyl in mg is converted to µg: 0.1 mg = 100 µg × 1 × 0.13 = 13
    pytest.param(
        49,
        {"FentaNYL buccal Dose": [0.1, "mg"], "FentaNYL buccal Dose Per Day": [1, "per day"]},
        13.0,
        id="49-mg",
    ),
    # row 928
    pytest.param(13, {"cycle length": 22, "Last menstrual date": "12/11/2013"}, "09/23/2014", id="13"),
    # row 1008
    pytest.param(68, {"cycle length": 21, "Last menstrual date": "12/17/2009"}, "12/31/2009", id="68"),
    # row 1028
    pytest.param(69, {"Current Date": "03/29/2020", "Last menstrual date": "03/23/2020"}, (0, 6), id="69"),
]


def v1_rules(cid: int) -> dict:
    """The cases and labels below are MedCalc-Bench v1.0 rows: date calculators follow v1.0's own rule."""
    return {"convention": "medcalc"} if "convention" in CALCS[cid].inputs else {}


@pytest.mark.parametrize("cid, entities, expected", ENTITY_CASES)
def test_from_entities(cid, entities, expected):
    res = CALCS[cid].from_row_entities(entities, **v1_rules(cid))
    if isinstance(expected, float):
        assert res.value == pytest.approx(expected, abs=1e-3)
    else:
        assert res.value == expected


def test_conversion_shown_in_explanation():
    res = CALCS[6].from_row_entities({"weight": [154, "lbs"], "height": [65, "in"]})
    assert "154 lbs" in res.explanation and "65 in" in res.explanation


MISSING_CASES = [
    pytest.param(5, {"Systolic Blood Pressure": [140.0, "mm hg"]}, id="5-no-dbp"),
    pytest.param(6, {"weight": [70, "kg"]}, id="6-no-height"),
    pytest.param(10, {"height": [170, "cm"]}, id="10-no-sex"),
    pytest.param(11, {"QT interval": [330, "msec"]}, id="11-no-hr"),
    pytest.param(22, {}, id="22-no-weight"),
    pytest.param(56, {"Heart Rate or Pulse": [118, "beats per minute"]}, id="56-no-qt"),
    pytest.param(57, {"Heart Rate or Pulse": [118, "beats per minute"]}, id="57-no-qt"),
    pytest.param(58, {"QT interval": [330, "msec"]}, id="58-no-hr"),
    pytest.param(59, {"QT interval": [330, "msec"]}, id="59-no-hr"),
    pytest.param(60, {"height": [170, "cm"]}, id="60-no-weight"),
    pytest.param(61, {"height": [170, "cm"]}, id="61-no-bmi"),
    pytest.param(62, {"sex": "Male", "height": [170, "cm"]}, id="62-no-weight"),
    pytest.param(24, {"input steroid": ["Dexamethasone PO", 7.96, "mg"]}, id="24-no-target"),
    pytest.param(49, {}, id="49-no-opioid"),
    pytest.param(49, {"Morphine Dose": [10, "mg"]}, id="49-no-per-day"),
    pytest.param(13, {"Last menstrual date": "12/11/2013"}, id="13-no-cycle"),
    pytest.param(68, {"cycle length": 28}, id="68-no-lmp"),
    pytest.param(69, {"Last menstrual date": "03/23/2020"}, id="69-no-current-date"),
]


@pytest.mark.parametrize("cid, entities", MISSING_CASES)
def test_missing_input(cid, entities):
    with pytest.raises(MissingInput):
        CALCS[cid].from_entities(entities)


def test_unknown_unit_is_an_error():
    with pytest.raises(ValueError, match="unit"):
        CALCS[6].from_row_entities({"weight": [70, "stone"], "height": [170, "cm"]})


# ------------------------------------------------------------------------------------ real-data agreement
def _confirmed(ex, corrected: str | None) -> bool:
    """A v1.0 label is confirmed when the physician-corrected label equals it: numerically for numbers, as
    strings for dates. The corrected file writes gestational ages (id 69) as a number of days ('99' for
    ('14 weeks', '1 days')), so a (weeks, days) label is also confirmed when its total days equal that number."""
    if corrected is None:
        return False
    t = ex.target
    if t["output_type"] == "gestational_age":
        if corrected.strip() == t["answer"].strip():
            return True
        weeks, days = t["value"]
        try:
            return weeks * 7 + days == int(corrected.strip())
        except ValueError:
            return False
    if t["output_type"] == "date":
        return corrected.strip() == t["answer"]
    try:
        return float(corrected) == float(t["answer"])
    except ValueError:
        return False


def _agreement(examples, corrected: dict[str, str]):
    """{cid: {"all": [n_ok, n], "confirmed": [n_ok, n]}} and the list of disagreements."""
    stats: dict[int, dict[str, list[int]]] = defaultdict(lambda: {"all": [0, 0], "confirmed": [0, 0]})
    bad = []
    for ex in examples:
        cid = ex.metadata["calculator_id"]
        if cid not in MY_IDS:
            continue
        try:
            value = CALCS[cid].from_row_entities(ex.metadata["relevant_entities"], **v1_rules(cid)).value
            if isinstance(value, tuple):
                value = list(value)
            ok, _, why = TASK.judge(ex, value)
        except (MissingInput, ValueError) as e:  # insufficient entities count as disagreements
            ok, why = False, repr(e)
        ok = bool(ok)
        keys = ["all"] + (["confirmed"] if _confirmed(ex, corrected.get(ex.id)) else [])
        for k in keys:
            stats[cid][k][0] += ok
            stats[cid][k][1] += 1
        if not ok:
            bad.append((cid, ex.id, why))
    return stats, bad


@pytest.fixture(scope="module")
def v1_test():
    examples = TASK.load(shared_file(MEDCALC / "medcalc_bench_v1.0_test.csv"))
    corr = pd.read_csv(shared_file(MEDCALC / "junzeye_v1.0_test_corrected_labels_887.csv"), dtype=str)
    corrected = dict(zip(corr["Unique ID"].str.strip(), corr["Ground Truth Answer"], strict=True))
    return list(examples), corrected


def test_agreement_v1_test(v1_test):
    examples, corrected = v1_test
    stats, bad = _agreement(examples, corrected)
    assert set(stats) == set(MY_IDS), "every calculator has v1.0 test rows"
    for group, ids in GROUPS.items():
        for subset in ("confirmed", "all"):
            ok = sum(stats[i][subset][0] for i in ids)
            n = sum(stats[i][subset][1] for i in ids)
            assert n > 0, (group, subset)
            assert ok / n >= 0.95, f"{group} {subset}: {ok}/{n}; disagreements: {bad}"
    # every calculator on its own too (20 rows each): at most one disagreement
    for cid in MY_IDS:
        ok, n = stats[cid]["all"]
        assert ok / n >= 0.95, f"calculator {cid}: {ok}/{n}; {[b for b in bad if b[0] == cid]}"


def test_agreement_train_sample():
    """The train sample brings other units (lb, g, in, m). Calculator 24 is left out: its train rows carry
    Lower = Upper = the label (no ±5% band), so only the benchmark's own rounded factors could match."""
    examples = list(TASK.load(shared_file(MEDCALC / "medcalc_bench_v1.0_train_sample_1006.csv")))
    examples = [e for e in examples if e.metadata["calculator_id"] != 24]
    stats, bad = _agreement(examples, {})
    for cid, s in stats.items():
        ok, n = s["all"]
        assert ok / n >= 0.95, f"calculator {cid}: {ok}/{n}; {[b for b in bad if b[0] == cid]}"


def test_corrected_labels_follow_the_published_date_rules():
    """#12 item 6: physicians reversed v1.0's date rules. On the v1.0 test rows of the due date (13) and the
    conception date (68), the corrected labels agree with the published rule (the default) far more often
    than with v1.0's own rule, which v1.0's labels follow."""
    from conftest import MEDCALC_TEST, SHARED_DATA, shared_file
    from ehrmind.tasks.medcalc.audit import corrected_target, load_corrected

    corrected_path = shared_file(SHARED_DATA / "medcalc_bench" / "junzeye_v1.0_test_corrected_labels_887.csv")
    corrected = load_corrected(corrected_path)
    rows = [ex for ex in TASK.load(shared_file(MEDCALC_TEST)) if ex.metadata["calculator_id"] in (13, 68)]
    agree = {(cid, rule): 0 for cid in (13, 68) for rule in ("published", "medcalc")}
    n = {13: 0, 68: 0}
    for ex in rows:
        label = corrected.get(ex.id)
        if label is None or label.missing:
            continue
        cid = ex.metadata["calculator_id"]
        gold = corrected_target(label, "date", corrected_path)["answer"]
        n[cid] += 1
        for rule in ("published", "medcalc"):
            agree[cid, rule] += (
                CALCS[cid].from_row_entities(ex.metadata["relevant_entities"], convention=rule).value == gold
            )
    assert n[13] >= 15 and n[68] >= 15
    for cid in (13, 68):
        assert agree[cid, "medcalc"] <= 0.2 * n[cid] < 0.9 * n[cid] <= agree[cid, "published"], (
            cid,
            agree,
            n,
        )
    assert (
        CALCS[13].from_row_entities({"Last menstrual date": "12/11/2013", "cycle length": 22}).value
        == "09/12/2014"
    )


def test_synthetic_date_notes_follow_the_default_rule_and_audit_agrees():
    from ehrmind.tasks.medcalc.audit import recompute
    from ehrmind.tasks.medcalc.notes import make_examples

    for ex in make_examples([13, 68], n=20, seed=3):
        assert ex.metadata["convention"] == "published"
        r = recompute(ex)
        assert TASK.judge(ex, r.value)[0], (ex.id, r)
