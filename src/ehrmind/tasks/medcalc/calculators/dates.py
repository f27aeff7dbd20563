"""Date calculators of pregnancy: estimated due date (MedCalc-Bench id 13), estimated date of conception
(id 68) and estimated gestational age (id 69).

Dates are `datetime.date` inputs; the entities give them as MM/DD/YYYY strings. Due date and conception date
are returned as MM/DD/YYYY strings, the gestational age as a (weeks, days) tuple.

MedCalc-Bench's conventions differ from the published cycle-length adjustments, and its v1.0 labels follow
its own conventions (physicians reversed them: the corrected labels agree with v1.0's rule on 2 of 18 due-date
and 2 of 20 conception rows), so both date calculators take `convention="published"` (the default: the
clinical rule, for synthetic notes and knowledge cards) or `convention="medcalc"` (v1.0's rule: `ehrmind
audit` recomputes v1.0 labels with it):

- due date: published (Naegele's calendar rule with Parikh's cycle adjustment, as the physicians who
  corrected the labels computed it) = LMP + 9 months + 7 days + (cycle length − 28) days, so a 22-day cycle
  moves the date 6 days *earlier*; MedCalc-Bench v1.0 = LMP + 280 days + |cycle length − 28| days, i.e. a
  short cycle also moves the date later.
- conception: published = LMP + (cycle length − 14) days (ovulation about 14 days before the next menses);
  MedCalc-Bench = LMP + 14 days whatever the cycle length.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from typing import Any

from ehrmind.tasks.medcalc.calculators.base import CalcResult, calculator
from ehrmind.tasks.medcalc.calculators.units import need

CONVENTIONS = ("medcalc", "published")


def parse_mdy(value: Any, what: str = "date") -> date:
    """A date from 'MM/DD/YYYY' (the benchmark's format), or a `date`/`datetime`."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return datetime.strptime(str(value).strip(), "%m/%d/%Y").date()
    except ValueError:
        raise ValueError(f"{what}: expected a date MM/DD/YYYY, got {value!r}") from None


def mdy(d: date) -> str:
    return d.strftime("%m/%d/%Y")


def _cycle_length(value: Any) -> int:
    if isinstance(value, (list, tuple)):  # [28, 'days']
        value = value[0]
    if isinstance(value, bool):
        raise ValueError("cycle length: expected a number of days, got a boolean")
    n = float(value)
    if not n.is_integer() or not 10 <= n <= 90:
        raise ValueError(f"cycle length: expected a whole number of days (10-90), got {value!r}")
    return int(n)


def add_months(d: date, months: int) -> date:
    """The same day `months` later, clipped to the month's last day (05/31 + 9 months = 02/28 or 02/29)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    return convention


def _lmp_cycle_entities(e: dict[str, Any]) -> dict[str, Any]:
    lmp = parse_mdy(need(e, "Last menstrual date", "last menstrual date"), "last menstrual date")
    cycle = _cycle_length(need(e, "cycle length", "Cycle length"))
    return {"lmp": lmp, "cycle_length": cycle}


_INPUTS = {
    "lmp": "first day of the last menstrual period, date",
    "cycle_length": "menstrual cycle length, days",
    "convention": "'published' (default, the clinical cycle rule) or 'medcalc' (MedCalc-Bench v1.0's rule)",
}


# ---------------------------------------------------------------------------------------------- 13: due date
@calculator(
    id=13,
    name="Estimated Due Date",
    category="date",
    output_type="date",
    reference=(
        "Naegele's rule (Naegele FC. Lehrbuch der Geburtshülfe, 1830): LMP + 280 days; cycle-length "
        "adjustment per Parikh's formula (LMP + 9 months + (cycle length − 21) days): Baskett TF, Nagele F. "
        "Naegele's rule: a reappraisal. BJOG 2000;107(11):1433-1435."
    ),
    formula=(
        "EDD = LMP + 9 months + 7 days + (cycle length − 28) days (MedCalc-Bench v1.0: LMP + 280 days + "
        "|cycle length − 28| days)"
    ),
    inputs=_INPUTS,
    from_entities=_lmp_cycle_entities,
)
def estimated_due_date(*, lmp: date, cycle_length: int = 28, convention: str = "published") -> CalcResult:
    """Naegele's rule with a cycle-length adjustment: the published rule (default) adds the signed difference
    between the cycle length and 28 days; `convention="medcalc"` adds the absolute difference, as MedCalc-Bench
    v1.0 computes its labels (its own explanation says "subtract" for short cycles, but its date adds)."""
    lmp = parse_mdy(lmp, "last menstrual date")
    _check_convention(convention)
    diff = cycle_length - 28
    if convention == "medcalc":
        base = lmp + timedelta(days=280)
        lines = [
            "Naegele's rule: the estimated due date is the first day of the last menstrual period (LMP) plus "
            "40 weeks (280 days), adjusted by the difference between the cycle length and the standard 28 days.",
            f"LMP = {mdy(lmp)}; cycle length = {cycle_length} days.",
            f"LMP + 40 weeks = {mdy(lmp)} + 280 days = {mdy(base)}.",
        ]
    else:
        nine = add_months(lmp, 9)
        base = nine + timedelta(days=7)
        lines = [
            "Naegele's rule: the estimated due date is the first day of the last menstrual period (LMP) plus "
            "9 months and 7 days, adjusted by the difference between the cycle length and the standard 28 days.",
            f"LMP = {mdy(lmp)}; cycle length = {cycle_length} days.",
            f"LMP + 9 months = {mdy(nine)}; + 7 days = {mdy(base)}.",
        ]
    if diff == 0:
        adjust = 0
        lines.append("The cycle length is 28 days, so no adjustment is needed.")
    elif convention == "medcalc":
        adjust = abs(diff)
        lines.append(
            f"The cycle length differs from 28 days by |{cycle_length} − 28| = {adjust} days, which are added: "
            f"{mdy(base)} + {adjust} days = {mdy(base + timedelta(days=adjust))}."
        )
    else:
        adjust = diff
        verb = "added" if diff > 0 else "subtracted"
        lines.append(
            f"The cycle is {abs(diff)} days {'longer' if diff > 0 else 'shorter'} than 28 days, so {abs(diff)} "
            f"days are {verb}: {mdy(base + timedelta(days=adjust))}."
        )
    edd = base + timedelta(days=adjust)
    lines.append(f"The estimated due date is {mdy(edd)}.")
    return CalcResult(mdy(edd), "\n".join(lines))


# ---------------------------------------------------------------------------------------------- 68: conception
@calculator(
    id=68,
    name="Estimated of Conception",
    category="date",
    output_type="date",
    reference=(
        "Conception (ovulation) about 14 days before the next menses, i.e. 2 weeks after the LMP in a 28-day "
        "cycle: Wilcox AJ, Weinberg CR, Baird DD. Timing of sexual intercourse in relation to ovulation. "
        "N Engl J Med 1995;333(23):1517-1521; gestational dating per ACOG Committee Opinion No. 700, 2017."
    ),
    formula=(
        "conception date = LMP + (cycle length − 14) days (MedCalc-Bench v1.0: LMP + 14 days whatever the "
        "cycle length)"
    ),
    inputs=_INPUTS,
    from_entities=_lmp_cycle_entities,
)
def estimated_conception_date(
    *, lmp: date, cycle_length: int = 28, convention: str = "published"
) -> CalcResult:
    """Estimated date of conception: ovulation 14 days before the next expected menses, LMP + (cycle length −
    14) days (the default, `convention="published"`); MedCalc-Bench v1.0 adds 2 weeks to the LMP whatever the
    cycle length (`convention="medcalc"`)."""
    lmp = parse_mdy(lmp, "last menstrual date")
    _check_convention(convention)
    lines = [f"LMP = {mdy(lmp)}; cycle length = {cycle_length} days."]
    if convention == "medcalc":
        days = 14
        lines.insert(
            0,
            "Conception is estimated at 2 weeks (14 days) after the first day of the last menstrual period "
            "(LMP), the typical time of ovulation.",
        )
        lines.append(f"Conception date = {mdy(lmp)} + 14 days = {mdy(lmp + timedelta(days=days))}.")
    else:
        days = cycle_length - 14
        lines.insert(
            0,
            "Ovulation, and so conception, occurs about 14 days before the next expected menses: "
            "conception date = LMP + (cycle length − 14) days.",
        )
        lines.append(
            f"Conception date = {mdy(lmp)} + ({cycle_length} − 14) days = {mdy(lmp)} + {days} days "
            f"= {mdy(lmp + timedelta(days=days))}."
        )
    value = lmp + timedelta(days=days)
    lines.append(f"The estimated date of conception is {mdy(value)}.")
    return CalcResult(mdy(value), "\n".join(lines))


# ---------------------------------------------------------------------------------------------- 69: gestational age
def _ga_entities(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "lmp": parse_mdy(need(e, "Last menstrual date", "last menstrual date"), "last menstrual date"),
        "current_date": parse_mdy(need(e, "Current Date", "current date"), "current date"),
    }


@calculator(
    id=69,
    name="Estimated Gestational Age",
    category="date",
    output_type="gestational_age",
    reference=(
        "Gestational age counted from the first day of the last menstrual period: American College of "
        "Obstetricians and Gynecologists. Committee Opinion No. 700: Methods for estimating the due date. "
        "Obstet Gynecol 2017;129(5):e150-e154."
    ),
    formula="gestational age = current date − LMP, in completed weeks and remaining days",
    inputs={
        "lmp": "first day of the last menstrual period, date",
        "current_date": "today's date, date",
    },
    from_entities=_ga_entities,
)
def estimated_gestational_age(*, lmp: date, current_date: date) -> CalcResult:
    """Completed weeks and days since the LMP. A current date before the LMP is not a pregnancy; like
    MedCalc-Bench, the absolute gap is used then (no v1.0 row has one)."""
    lmp = parse_mdy(lmp, "last menstrual date")
    current_date = parse_mdy(current_date, "current date")
    gap = abs((current_date - lmp).days)
    weeks, days = divmod(gap, 7)
    lines = [
        "Gestational age is the time elapsed since the first day of the last menstrual period (LMP), "
        "expressed in completed weeks and days.",
        f"Current date = {mdy(current_date)}; LMP = {mdy(lmp)}.",
        f"The two dates are {gap} days apart: {gap} = {weeks} × 7 + {days}, i.e. {weeks} weeks and {days} days.",
        f"The estimated gestational age is {weeks} weeks and {days} days.",
    ]
    return CalcResult((weeks, days), "\n".join(lines))
