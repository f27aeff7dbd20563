"""Note specs for the calculators in `calculators/dates.py` (due date, conception, gestational age)."""

from __future__ import annotations

import random
from datetime import date, timedelta

from ehrmind.tasks.medcalc.notes.draft import Draft, _spec


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
