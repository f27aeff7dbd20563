"""What one note says (`Draft`, `Flag`) and the spec registry (`SPECS`, `_spec`, `spec_ids`).

Spec modules import `_spec` from here, never from the package, so registering a spec cannot import-cycle."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ehrmind.tasks.medcalc.notes.quantities import Quantity

COMPLAINTS = (
    "chest pain",
    "shortness of breath",
    "fatigue",
    "abdominal pain",
    "dizziness",
    "fever and cough",
    "generalized weakness",
    "nausea and vomiting",
    "a routine follow-up visit",
)


@dataclass(frozen=True)
class Flag:
    """A yes/no entity. For `history` flags, `pos`/`neg` are noun phrases merged into history sentences;
    otherwise they are whole sentences (with {He}/{he}/{his}/{him} pronoun slots) put in `section`."""

    entity: str
    p: float
    pos: tuple[str, ...]
    neg: tuple[str, ...] = ()
    section: str = "history"


def _join(items: Sequence[str], conj: str = "and") -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conj} {items[-1]}"


class Draft:
    """What one note says: entities (for the calculator) and text fragments by section."""

    def __init__(self, rng: random.Random, calculator_id: int):
        self.rng = rng
        self.calculator_id = calculator_id
        self.entities: dict[str, Any] = {}
        self.mentions: dict[str, str] = {}
        self.keys: set[str] = set()
        self.items: dict[str, list[tuple[str, str, str]]] = defaultdict(list)  # vitals/body/labs/ecg
        self.sentences: dict[str, list[str]] = defaultdict(list)  # presentation/exam/ecg/other/meds
        self.history_pos: list[str] = []
        self.history_neg: list[str] = []
        self.age: int | None = None
        self.sex: str | None = None
        self.complaints: Sequence[str] = COMPLAINTS
        self.question: str | None = None
        self.template_only = False
        self.no_distractors: set[str] = set()
        self.distractors: list[dict[str, str]] = []
        self.max_distractors: int | None = None
        """At most this many distractor measurements and history items (None: the usual 3-6 and 0-2)."""

    # ------------------------------------------------------------------ patient
    def patient(
        self,
        age: tuple[int, int] = (25, 88),
        *,
        age_entity: bool = True,
        sex_entity: bool = True,
        sex: str | None = None,
    ) -> None:
        self.age = self.rng.randint(*age)
        self.sex = sex or self.rng.choice(["Male", "Female"])
        if age_entity:
            self.entities["age"] = [self.age, "years"]
            self.mentions["age"] = f"{self.age}-year-old"
            self.keys.add("age")
        if sex_entity:
            self.entities["sex"] = self.sex
            self.mentions["sex"] = self._sex_word()
            self.keys.add("sex")

    def _sex_word(self) -> str:
        return "man" if self.sex == "Male" else "woman"

    # ------------------------------------------------------------------ quantities
    def q(
        self,
        qty: Quantity,
        lo: float | None = None,
        hi: float | None = None,
        *,
        entity: str | None = None,
        units: Sequence[int] | None = None,
        value: float | None = None,
        name: str | None = None,
        section: str | None = None,
    ) -> float | int:
        """Sample `qty` in [lo, hi] (canonical unit), write it in a random unit, store the entity; returns
        the value as written (in the unit chosen)."""
        lo = qty.normal[0] if lo is None else lo
        hi = qty.normal[1] if hi is None else hi
        canonical = self.rng.uniform(lo, hi) if value is None else value
        choices = [qty.units[i] for i in units] if units is not None else list(qty.units)
        unit = self.rng.choice(choices)
        shown = unit.convert(canonical)
        name_entity = entity or qty.entity
        self.entities[name_entity] = shown if unit.entity is None else [shown, unit.entity]
        text = unit.render(shown)
        self.mentions[name_entity] = text
        self.keys.add(qty.key)
        long_name, short_name = qty.names
        if name is not None:
            long_name = short_name = name
        self.items[section or qty.section].append((long_name, short_name, text))
        return shown

    def bp(
        self,
        sbp: tuple[int, int] = (100, 165),
        dbp: tuple[int, int] = (55, 100),
        *,
        unit: str = "mm hg",
        sbp_entity: bool = True,
        dbp_entity: bool = True,
    ) -> tuple[int, int]:
        s = self.rng.randint(*sbp)
        d = self.rng.randint(dbp[0], max(dbp[0], min(dbp[1], s - 20)))
        text = f"{s}/{d} mmHg"
        if sbp_entity:
            self.entities["Systolic Blood Pressure"] = [s, unit]
            self.mentions["Systolic Blood Pressure"] = text
        if dbp_entity:
            self.entities["Diastolic Blood Pressure"] = [d, unit]
            self.mentions["Diastolic Blood Pressure"] = text
        self.keys.add("bp")
        self.items["vitals"].append(("blood pressure", "BP", text))
        return s, d

    # ------------------------------------------------------------------ yes/no and categories
    def flag(self, f: Flag, value: bool | None = None) -> bool:
        v = self.rng.random() < f.p if value is None else value
        self.entities[f.entity] = v
        options = f.pos if v else f.neg
        if f.section == "history":
            if options:
                phrase = self.rng.choice(options)
                (self.history_pos if v else self.history_neg).append(phrase)
                self.mentions[f.entity] = phrase
        elif options:
            sentence = self.rng.choice(options)
            self.sentences[f.section].append(sentence)
            self.mentions[f.entity] = sentence
        return v

    def choice(
        self, entity: str, options: Sequence[tuple[str, float, Sequence[str]]], section: str = "exam"
    ) -> str:
        """Pick a category value (weighted) and one of its sentences."""
        values = [o[0] for o in options]
        value = self.rng.choices(values, weights=[o[1] for o in options])[0]
        sentences = next(o[2] for o in options if o[0] == value)
        self.entities[entity] = value
        if sentences:
            s = self.rng.choice(list(sentences))
            self.sentences[section].append(s)
            self.mentions[entity] = s
        return value

    def say(self, section: str, sentence: str, entity: str | None = None) -> None:
        self.sentences[section].append(sentence)
        if entity is not None:
            self.mentions[entity] = sentence


@dataclass(frozen=True)
class NoteSpec:
    calculator_id: int
    build: Callable[[Draft], None]
    valid: Callable[[dict[str, Any]], bool] | None = None
    """An extra plausibility check on the sampled entities (resampled when False)."""


SPECS: dict[int, NoteSpec] = {}


def _spec(*ids: int, valid: Callable[[dict[str, Any]], bool] | None = None) -> Callable:
    def deco(fn: Callable[[Draft], None]) -> Callable[[Draft], None]:
        for i in ids:
            if i in SPECS:
                raise ValueError(f"note spec {i} defined twice")
            SPECS[i] = NoteSpec(i, fn, valid)
        return fn

    return deco


def spec_ids() -> list[int]:
    """Calculator ids that have a note spec."""
    return sorted(SPECS)
