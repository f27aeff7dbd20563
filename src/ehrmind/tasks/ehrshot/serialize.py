"""Turn a timeline up to a prediction time into text, within a token budget, most recent first.

Layout: the prediction time and demographics (age at the prediction time, sex, race, ethnicity), then one
section per event table in this order: labs, vitals, visits, conditions, procedures, medications, other.
Within a section lines run most recent first. Labs and vitals show the latest value with its unit and a
low/high flag (generic adult reference ranges, a hint only), followed by up to `lab_history - 1` earlier
values; conditions, procedures, medications and other codes appear once each, at their most recent date,
with their description (see `codes.Vocabulary`).

Leakage: only events at or before the prediction time are read (`Timeline.cut`), and a visit's end time
is shown only if it is at or before the prediction time ("ongoing" otherwise).

Budget: events are taken from the prediction time backwards, across all included tables, until the next
line would not fit in `max_tokens`; older events are dropped and the text says how many. Tokens are counted
with a Hugging Face tokenizer when `tokenizer` names one (loaded locally, offline), otherwise approximated
as one token per 4 characters (typical of English BPE tokenizers; codes and numbers often cost more, so
leave headroom under a model's context).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ehrmind.errors import ConfigError
from ehrmind.tasks.ehrshot.codes import (
    OMOP_RACE,
    Vocabulary,
    is_mimic_chart_item,
    mimic_item,
    pretty_code,
    split_code,
)
from ehrmind.tasks.ehrshot.readers import Event, Timeline

TABLES = ("demographics", "labs", "vitals", "visits", "conditions", "procedures", "medications", "other")
DEFAULT_TABLES = ("demographics", "labs", "vitals", "visits", "conditions", "procedures", "medications")
TABLE_PRESETS = {
    "all": TABLES,
    "default": DEFAULT_TABLES,
    # the EHRMind paper kept only conditions and procedures; one setting, so its cost can be measured
    "paper": ("conditions", "procedures"),
}
SECTION_TITLES = {
    "labs": "Lab results",
    "vitals": "Vital signs and measurements",
    "visits": "Visits, transfers and admissions",
    "conditions": "Conditions and diagnoses",
    "procedures": "Procedures",
    "medications": "Medications",
    "other": "Other events",
}


@dataclass
class SerializerConfig:
    """How a timeline becomes text."""

    tables: tuple[str, ...] = DEFAULT_TABLES
    """Event tables to include (names in TABLES), or one preset: all, default, paper."""
    max_tokens: int = 4096
    """Token budget of the serialized timeline (the question and instructions come on top)."""
    lab_history: int = 3
    """Values shown per lab or vital, most recent first."""
    tokenizer: str | None = None
    """A Hugging Face tokenizer (local folder or cached id) to count tokens; None: 4 characters a token."""
    show_codes: bool = True
    """Show codes next to their descriptions (conditions, procedures, medications)."""
    skip_unnamed: bool = True
    """Leave out events known only by a numeric item id (MIMIC ICU items missing from the built-in table
    and from any vocabulary file): a bare number tells a reader nothing and eats the budget."""

    def __post_init__(self) -> None:
        tables = self.tables
        if isinstance(tables, str):
            tables = TABLE_PRESETS.get(tables) or tuple(t.strip() for t in tables.split(",") if t.strip())
        tables = tuple(tables)
        if len(tables) == 1 and tables[0] in TABLE_PRESETS:
            tables = TABLE_PRESETS[tables[0]]
        unknown = [t for t in tables if t not in TABLES]
        if unknown or not tables:
            raise ConfigError(
                f"tables: unknown {', '.join(unknown) or '(none given)'}; use names from {', '.join(TABLES)} "
                f"or a preset ({', '.join(TABLE_PRESETS)})"
            )
        self.tables = tables
        if int(self.max_tokens) < 64:
            raise ConfigError(
                f"max_tokens must be >= 64 (the header alone needs some), got {self.max_tokens}"
            )
        self.max_tokens = int(self.max_tokens)
        if int(self.lab_history) < 1:
            raise ConfigError(f"lab_history must be >= 1, got {self.lab_history}")
        self.lab_history = int(self.lab_history)


@dataclass
class Serialized:
    text: str
    n_events_before: int
    """Timed events at or before the prediction time."""
    n_events_used: int
    """Of those, the most recent ones read into the text (shown, or merged into a shown line)."""
    truncated: bool
    approx_tokens: int


# ---------------------------------------------------------------------------------------------- categories

_PREFIX_TABLE = {
    "MEDS_BIRTH": "demographics",
    "GENDER": "demographics",
    "RACE": "demographics",
    "ETHNICITY": "demographics",
    "Gender": "demographics",
    "Race": "demographics",
    "Ethnicity": "demographics",
    "MEDS_DEATH": "visits",
    "Death Type": "visits",
    "HOSPITAL_ADMISSION": "visits",
    "HOSPITAL_DISCHARGE": "visits",
    "ED_REGISTRATION": "visits",
    "ED_OUT": "visits",
    "ICU_ADMISSION": "visits",
    "ICU_DISCHARGE": "visits",
    "TRANSFER_TO": "visits",
    "Visit": "visits",
    "Visit Type": "visits",
    "CARE_SITE": "visits",
    "DIAGNOSIS": "conditions",
    "ICD10CM": "conditions",
    "ICD9CM": "conditions",
    "SNOMED": "conditions",
    "PROCEDURE": "procedures",
    "HCPCS": "procedures",
    "CPT4": "procedures",
    "ICD10PCS": "procedures",
    "ICD9Proc": "procedures",
    "MEDICATION": "medications",
    "INFUSION_START": "other",  # MIMIC input item ids: medications only once a vocabulary names them
    "RxNorm": "medications",
    "RxNorm Extension": "medications",
    "ATC": "medications",
    "NDC": "medications",
    "CVX": "medications",
    "LOINC": "labs",
    "Blood Pressure": "vitals",
    "Blood Pressure Sitting": "vitals",
    "Blood Pressure Lying": "vitals",
    "Blood Pressure Standing (1 min)": "vitals",
    "Blood Pressure Standing (3 mins)": "vitals",
    "Weight (Lbs)": "vitals",
    "BMI (kg/m2)": "vitals",
    "Height (Inches)": "vitals",
    "SUBJECT_WEIGHT_AT_INFUSION": "vitals",
}
_OMOP_TABLE = {
    "person": "demographics",
    "visit_occurrence": "visits",
    "visit_detail": "visits",
    "death": "visits",
    "condition_occurrence": "conditions",
    "procedure_occurrence": "procedures",
    "device_exposure": "procedures",
    "drug_exposure": "medications",
    "measurement": "labs",
    "observation": "other",
    "note": "other",
    "specimen": "other",
}
_BIRTH_CODES = ("MEDS_BIRTH", "SNOMED/3950001")
_VITAL_LOINC = {
    "8867-4": "hr",
    "9279-1": "rr",
    "2708-6": "spo2",
    "59408-5": "spo2",
    "8480-6": "sbp",
    "8462-4": "dbp",
    "8478-0": None,
    "8310-5": "temp_c",
    "29463-7": None,
    "8302-2": None,
    "39156-5": None,
}


def _head(code: str) -> str:
    if "//" in code:
        return code.split("//", 1)[0]
    vocab, _ = split_code(code)
    return vocab or code


def categorize(e: Event) -> str:
    """The event table of one event (see TABLES)."""
    if e.code in _BIRTH_CODES:
        return "demographics"
    if e.code.startswith("LAB//"):
        item = mimic_item(e.code)
        return "vitals" if item and is_mimic_chart_item(item[0]) else "labs"
    vocab, value = split_code(e.canonical)
    if vocab == "LOINC" and value in _VITAL_LOINC:
        return "vitals"
    if e.table in _OMOP_TABLE:
        return _OMOP_TABLE[e.table]
    return _PREFIX_TABLE.get(_head(e.code), "other")


# ---------------------------------------------------------------------------------------------- lab flags

_ANALYTE_BY_ITEM = {
    **dict.fromkeys(("50983", "50824", "220645"), "sodium"),
    **dict.fromkeys(("50971", "50822", "227442", "227464"), "potassium"),
    **dict.fromkeys(("50902", "50806", "220602"), "chloride"),
    "50882": "bicarbonate",
    **dict.fromkeys(("51006", "225624"), "bun"),
    **dict.fromkeys(("50912", "220615"), "creatinine"),
    **dict.fromkeys(("50931", "50809", "220621", "225664"), "glucose"),
    "50893": "calcium",
    "50960": "magnesium",
    "50970": "phosphate",
    "50813": "lactate",
    "50862": "albumin",
    "50885": "bilirubin",
    "50861": "alt",
    "50878": "ast",
    **dict.fromkeys(("51222", "50811", "220228"), "hemoglobin"),
    "51221": "hematocrit",
    **dict.fromkeys(("51265", "227457"), "platelets"),
    **dict.fromkeys(("51301", "220546"), "wbc"),
    "51237": "inr",
    "220045": "hr",
    "220210": "rr",
    "220277": "spo2",
    **dict.fromkeys(("220179", "220050"), "sbp"),
    **dict.fromkeys(("220180", "220051"), "dbp"),
    "223761": "temp_f",
    "223762": "temp_c",
}
_ANALYTE_BY_LOINC = {
    **dict.fromkeys(("2951-2", "2947-0"), "sodium"),
    **dict.fromkeys(("2823-3", "6298-4"), "potassium"),
    "2075-0": "chloride",
    **dict.fromkeys(("1963-8", "2028-9"), "bicarbonate"),
    "3094-0": "bun",
    "2160-0": "creatinine",
    **dict.fromkeys(("2345-7", "2339-0", "14749-6", "15074-8"), "glucose"),
    "17861-6": "calcium",
    "718-7": "hemoglobin",
    "4544-3": "hematocrit",
    **dict.fromkeys(("777-3", "26515-7"), "platelets"),
    "6690-2": "wbc",
    **{k: v for k, v in _VITAL_LOINC.items() if v},
}
# Generic adult reference ranges by unit (lower case); '*' applies to any unit. Flags are hints for the
# reader, not labels.
REFERENCE_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "sodium": {"meq/l": (135, 145), "mmol/l": (135, 145)},
    "potassium": {"meq/l": (3.5, 5.1), "mmol/l": (3.5, 5.1)},
    "chloride": {"meq/l": (96, 108), "mmol/l": (96, 108)},
    "bicarbonate": {"meq/l": (22, 32), "mmol/l": (22, 32)},
    "bun": {"mg/dl": (6, 20)},
    "creatinine": {"mg/dl": (0.5, 1.2)},
    "glucose": {"mg/dl": (70, 140), "mmol/l": (3.9, 7.8)},
    "calcium": {"mg/dl": (8.4, 10.3)},
    "magnesium": {"mg/dl": (1.6, 2.6)},
    "phosphate": {"mg/dl": (2.7, 4.5)},
    "lactate": {"mmol/l": (0.5, 2.0)},
    "albumin": {"g/dl": (3.5, 5.2)},
    "bilirubin": {"mg/dl": (0.0, 1.5)},
    "alt": {"iu/l": (0, 40), "u/l": (0, 40)},
    "ast": {"iu/l": (0, 40), "u/l": (0, 40)},
    "hemoglobin": {"g/dl": (12.0, 17.5), "g/l": (120, 175)},
    "hematocrit": {"%": (36, 50)},
    "platelets": {"k/ul": (150, 400), "10*3/ul": (150, 400), "10^9/l": (150, 400), "10*9/l": (150, 400)},
    "wbc": {"k/ul": (4.0, 11.0), "10*3/ul": (4.0, 11.0), "10^9/l": (4.0, 11.0), "10*9/l": (4.0, 11.0)},
    "inr": {"*": (0.9, 1.1)},
    "hr": {"*": (60, 100)},
    "rr": {"*": (12, 20)},
    "spo2": {"*": (95, 100)},
    "sbp": {"*": (90, 140)},
    "dbp": {"*": (60, 90)},
    "temp_f": {"*": (97.0, 100.4)},
    "temp_c": {"*": (36.1, 38.0)},
}


def lab_flag(e: Event) -> str | None:
    """'low' / 'high' against the generic reference range, or None."""
    if e.numeric_value is None:
        return None
    item = mimic_item(e.code)
    if item:
        analyte = _ANALYTE_BY_ITEM.get(item[0])
    else:
        vocab, value = split_code(e.canonical)
        analyte = _ANALYTE_BY_LOINC.get(value) if vocab == "LOINC" else None
    ranges = REFERENCE_RANGES.get(analyte or "")
    if not ranges:
        return None
    lo_hi = ranges.get((e.unit or "").lower()) or ranges.get("*")
    if not lo_hi:
        return None
    if e.numeric_value < lo_hi[0]:
        return "low"
    if e.numeric_value > lo_hi[1]:
        return "high"
    return None


# ---------------------------------------------------------------------------------------------- rendering


def fmt_time(t: datetime) -> str:
    return f"{t:%Y-%m-%d}" if (t.hour, t.minute, t.second) == (0, 0, 0) else f"{t:%Y-%m-%d %H:%M}"


def fmt_number(v: float) -> str:
    return f"{float(f'{v:.6g}'):g}"


def _words(head: str) -> str:
    s = head.replace("_", " ").strip().lower()
    return s[:1].upper() + s[1:]


def pretty_meds_code(code: str) -> str:
    """`HOSPITAL_ADMISSION//URGENT//TRANSFER FROM HOSPITAL` → `Hospital admission: URGENT, TRANSFER FROM HOSPITAL`."""
    if "//" not in code:
        return pretty_code(code)
    head, *rest = [p for p in code.split("//") if p and p != "UNK"] or [code]
    return f"{_words(head)}: {', '.join(rest)}" if rest else _words(head)


@dataclass
class _Item:
    key: str
    time: datetime
    text: str
    values: list[str] = field(default_factory=list)


@dataclass
class _Demo:
    birth: datetime | None = None
    sex: str | None = None
    race: str | None = None
    ethnicity: str | None = None


class TimelineSerializer:
    """Renders timelines; per-timeline work (categories, demographics) is cached for its next prediction
    time. One serializer may be reused across subjects."""

    def __init__(self, config: SerializerConfig | None = None, vocab: Vocabulary | None = None):
        self.config = config or SerializerConfig()
        self.vocab = vocab or Vocabulary()
        self._count: Callable[[str], int] = _make_counter(self.config.tokenizer)
        self._cached: Timeline | None = None
        """The timeline the caches below belong to; held (not its id) so that a later timeline cannot
        reuse a freed one's id and get its categories and demographics."""
        self._cats: list[str] = []
        self._demo = _Demo()
        self._desc: dict[str, str | None] = {}
        self._categories: dict[tuple[str, str | None], str] = {}
        """`categorize` by (code, table): what it depends on (the canonical code follows from the code)."""
        self._unnamed_codes: dict[str, bool] = {}
        self._first: datetime | None = None
        self._lines: list[Any] = []
        """Per event of the cached timeline: its `_line` (computed on first use; visits excepted, whose line
        depends on the prediction time), so that the many prediction times of one timeline (a lab labeler's,
        a label file's) do not render the same events again (issue #31: 20,000 labels took 391 s)."""
        self._extras: list[Any] = []
        """Per event: its value and time as an earlier value of a lab or vital ("8.4 mg/dL, 2110-04-11 …")."""

    def count_tokens(self, text: str) -> int:
        return self._count(text)

    def _prepare(self, tl: Timeline) -> None:
        if self._cached is tl:
            return
        self._cached = tl
        known = self._categories
        self._cats = [
            known.get((e.code, e.table)) or _remember(known, (e.code, e.table), categorize(e))
            for e in tl.events
        ]
        self._lines = [_UNSET] * len(tl.events)
        self._extras = [None] * len(tl.events)
        demo = _Demo()
        for e, cat in zip(tl.events, self._cats, strict=True):
            if cat != "demographics":
                continue
            head = _head(e.code)
            if e.code in _BIRTH_CODES and e.time is not None:
                demo.birth = demo.birth or e.time
            elif head in ("GENDER", "Gender"):
                value = e.code.split("//")[-1] if "//" in e.code else split_code(e.code)[1]
                demo.sex = {"F": "female", "M": "male"}.get(value.upper(), value.lower())
            elif head in ("RACE", "Race"):
                value = e.code.split("//")[-1] if "//" in e.code else split_code(e.code)[1]
                demo.race = OMOP_RACE.get(value, value)
            elif head in ("ETHNICITY", "Ethnicity"):
                demo.ethnicity = e.code.split("//")[-1] if "//" in e.code else split_code(e.code)[1]
        self._demo = demo
        self._first = next(
            (
                e.time
                for e, cat in zip(tl.timed, self._cats[tl.n_static :], strict=True)
                if cat != "demographics"
            ),
            None,
        )

    def describe(self, canonical: str) -> str | None:
        if canonical not in self._desc:
            self._desc[canonical] = self.vocab.describe(canonical)
        return self._desc[canonical]

    # ------------------------------------------------------------------ lines
    def _name(self, e: Event) -> str:
        desc = self.describe(e.canonical)
        if desc:
            return desc
        item = mimic_item(e.code)
        if item:
            return item[1] or f"item {item[0]}"
        parts = e.code.split("//")
        if len(parts) == 2 and e.numeric_value is not None:  # HEAD//UNIT, e.g. SUBJECT_WEIGHT_AT_INFUSION//KG
            return _words(parts[0])
        return pretty_meds_code(e.code)

    def _coded(self, e: Event) -> str:
        desc = self.describe(e.canonical)
        if desc:
            return f"{desc} ({pretty_code(e.canonical)})" if self.config.show_codes else desc
        return pretty_meds_code(e.code)

    def _value(self, e: Event) -> str | None:
        if e.numeric_value is not None:
            s = fmt_number(e.numeric_value)
            if e.unit:
                s += f" {e.unit}"
            flag = lab_flag(e)
            return f"{s} ({flag})" if flag else s
        if e.text_value:
            return e.text_value[:80]
        return None

    def _medication(self, e: Event) -> tuple[str, str]:
        parts = e.code.split("//")
        if parts[0] == "MEDICATION" and len(parts) >= 3:
            if parts[1] in ("START", "STOP"):
                drug, action = parts[2], "started" if parts[1] == "START" else "stopped"
            else:
                drug, action = parts[1], parts[2].lower()
            if drug.strip().upper() in ("", "UNK"):
                return "", ""
            return drug.strip().lower(), f"{drug.strip()} ({action})"
        text = self._coded(e)
        return e.canonical, text

    def _unnamed(self, e: Event) -> bool:
        """Known only by a numeric item id (`skip_unnamed`); decided once per code."""
        known = self._unnamed_codes.get(e.code)
        if known is None:
            known = _remember(self._unnamed_codes, e.code, self._is_unnamed(e))
        return known

    def _is_unnamed(self, e: Event) -> bool:
        if self.describe(e.canonical):
            return False
        item = mimic_item(e.code)
        if item:
            return not item[1]
        parts = [p for p in e.code.split("//") if p and p != "UNK"]
        return len(parts) > 1 and parts[-1].isdigit()

    def _line(self, cat: str, e: Event, pt: datetime) -> tuple[str, str] | None:
        """(dedupe key, line text) for a new item, or None to skip the event."""
        if self.config.skip_unnamed and cat != "visits" and self._unnamed(e):
            return None
        t = fmt_time(e.time)  # type: ignore[arg-type]
        if cat in ("labs", "vitals"):
            value = self._value(e)
            if value is None:
                return None
            return e.code.split("//")[1] if e.code.startswith(
                "LAB//"
            ) else e.canonical, f"{self._name(e)}: {value}, {t}"
        if cat == "visits":
            text = f"{t} {self._coded(e) if split_code(e.canonical)[0] else pretty_meds_code(e.code)}"
            if e.end is not None:
                text += f", until {fmt_time(e.end)}" if e.end <= pt else ", ongoing at the prediction time"
            return f"{e.code}@{t}", text
        if cat == "medications":
            key, text = self._medication(e)
            return (key, f"{t} {text}") if key else None
        return e.canonical, f"{t} {self._coded(e)}"

    # ------------------------------------------------------------------ main
    def header(self, tl: Timeline, pt: datetime, n_before: int) -> list[str]:
        lines = [f"Prediction time: {fmt_time(pt)}"]
        if "demographics" in self.config.tables:
            d = self._demo
            who = []
            if d.birth is not None and d.birth <= pt:
                age = pt.year - d.birth.year - ((pt.month, pt.day) < (d.birth.month, d.birth.day))
                who.append(f"{age}-year-old")
            who.append(d.sex or "sex unknown")
            extra = [f"race: {d.race}"] if d.race else []
            extra += [f"ethnicity: {d.ethnicity}"] if d.ethnicity else []
            lines.append("Patient: " + " ".join(who) + ("; " + "; ".join(extra) if extra else ""))
        first = self._first
        span = (
            f" from {fmt_time(first)} to {fmt_time(tl.times[n_before - 1])}"
            if n_before and first is not None and first <= pt
            else ""
        )
        lines.append(f"Record before the prediction time: {n_before} events{span}.")
        return lines

    def serialize(self, tl: Timeline, prediction_time: datetime) -> Serialized:
        self._prepare(tl)
        cfg = self.config
        n = tl.cut(prediction_time)
        n_before = n - tl.n_static
        head = self.header(tl, prediction_time, n_before)
        sections = [t for t in TABLES if t in cfg.tables and t != "demographics"]
        # the budget covers the header, the note on truncation (with room for any count) and every line
        budget = cfg.max_tokens - sum(self._count(x) + 1 for x in head) - (self._count(_note(10**9)) + 2)
        items: dict[str, dict[str, _Item]] = {s: {} for s in sections}
        used, i, truncated = 0, n - 1, False
        events, cats, lines, first = tl.events, self._cats, self._lines, tl.n_static  # locals: the hot loop
        while i >= first:
            cat = cats[i]
            if cat in items:
                e = events[i]
                bucket = items[cat]
                got = lines[i] if cat != "visits" else _UNSET
                if got is _UNSET:
                    got = self._line(cat, e, prediction_time)
                    if cat != "visits":
                        lines[i] = got
                if got is not None:
                    key, text = got
                    item = bucket.get(key)
                    if item is None:
                        cost = self._count(f"- {text}") + 1
                        if not bucket:  # the section's heading comes with its first line
                            cost += self._count(_heading(cat)) + 2
                        if used + cost > budget:
                            truncated = True
                            break
                        bucket[key] = _Item(key, e.time, text)  # type: ignore[arg-type]
                        used += cost
                    elif cat in ("labs", "vitals") and len(item.values) + 1 < cfg.lab_history:
                        extra = self._extras[i]
                        if extra is None:
                            extra = self._extras[i] = f"{self._value(e)}, {fmt_time(e.time)}"  # type: ignore[arg-type]
                        cost = self._count(("; earlier: " if not item.values else "; ") + extra) + 1
                        if used + cost > budget:
                            truncated = True
                            break
                        item.values.append(extra)
                        used += cost
            i -= 1
        n_used = n - 1 - i
        body: list[str] = []
        for s in sections:
            if items[s]:
                body.append(_heading(s))
                for it in items[s].values():
                    line = it.text + (f"; earlier: {'; '.join(it.values)}" if it.values else "")
                    body.append(f"- {line}")
        if truncated:
            body.append(_note(n_before - n_used))
        elif not any(items.values()):
            body.append("\nNo events of the included kinds before the prediction time.")
        text = "\n".join(head + body)
        return Serialized(text, n_before, n_used, truncated, self._count(text))


_UNSET: Any = object()
_MAX_REMEMBERED = 1_000_000


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> Any:
    """`value`, kept in `cache` under `key` while the cache holds fewer than a million entries."""
    if len(cache) < _MAX_REMEMBERED:
        cache[key] = value
    return value


def _heading(section: str) -> str:
    return f"\n{SECTION_TITLES[section]} (most recent first):"


def _note(n_dropped: int) -> str:
    return f"\n[Truncated to fit the length budget: {n_dropped} earlier events not shown.]"


def _make_counter(tokenizer: str | None) -> Callable[[str], int]:
    if not tokenizer:
        return lambda s: (len(s) + 3) // 4
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer)
    except Exception as e:  # many error types from the Hub client and tokenizer classes
        raise ConfigError(
            f"cannot load tokenizer {tokenizer!r} to count tokens ({type(e).__name__}: {e})"
        ) from None
    return lambda s: len(tok.encode(s, add_special_tokens=False))


def serializer_config(**options: Any) -> SerializerConfig:
    """A SerializerConfig from option values; unknown keys are the caller's to reject."""
    names = {f.name for f in dataclasses.fields(SerializerConfig)}
    return SerializerConfig(**{k: v for k, v in options.items() if k in names and v is not None})
