"""EHRSHOT labelers (Wornow et al., NeurIPS 2023), as in the benchmark's own code (FEMR `labelers/ehrshot.py`).

Every labeler turns one Timeline into (prediction time, boolean label) pairs. Definitions:

* **New diagnosis** (`new_hypertension`, `new_hyperlipidemia`, `new_pancan`, `new_celiac`, `new_lupus`,
  `new_acutemi`): prediction at 11:59pm on the day of discharge of each inpatient stay; positive when a
  code of the disease's set occurs in [prediction time + 1 day, prediction time + 365 days] (EHRSHOT's
  `TimeHorizon(timedelta(days=1), timedelta(days=365))`). Excluded: prediction times at or after the first
  diagnosis ("already diagnosed"). No diagnosis in the window is a negative even when the record ends
  before the window does (EHRSHOT's `is_apply_censoring() -> False`), so a death inside the window without
  the diagnosis is a negative. ehrmind's earlier rule is an option: `censor=True` drops those censored
  prediction times, `horizon_start_minutes=1` opens the window a minute after (both: `RULES["ehrmind"]`).
* **30-day readmission** (`guo_readmission`): prediction at 11:59pm on the discharge day; positive when a
  new inpatient admission starts in [prediction time + 1 minute, + 30 days]. Excluded: stays followed by a
  new admission on the discharge day itself (it would be in the prompt). Censored (no label): no
  readmission and the record ends inside the window (EHRSHOT's TimeHorizonEventLabeler default).
* **Long length of stay** (`guo_los`): prediction at 11:59pm on the admission day; positive when
  discharge − admission >= 7 days. Excluded: stays discharged on the day of admission.
* **ICU transfer** (`guo_icu`): prediction at 11:59pm on the admission day of each inpatient stay; positive
  when an ICU admission starts between the prediction time and the discharge (EHRSHOT's `WithinVisitLabeler`,
  no censoring). Excluded: stays discharged on the day of admission, and stays with an ICU admission on the
  day of admission (any ICU start on that date: it would be in the prompt). ICU admissions: OMOP
  `visit_detail` events at one of EHRSHOT's ICU care sites with an end after their start (EHRSHOT's
  `get_icu_events`), or, for MIMIC-IV MEDS, `ICU_ADMISSION//…` events.
* **Lab results** (`lab_thrombocytopenia`, `lab_hyperkalemia`, `lab_hypoglycemia`, `lab_hyponatremia`,
  `lab_anemia`): prediction one minute before each result of the lab; EHRSHOT's four classes (normal,
  mild, moderate, severe) from its thresholds, binarized as in EHRSHOT's evaluation: abnormal (mild or
  worse) is positive. Excluded: results at the time of the patient's first event, and results without a
  usable value or unit.

Inpatient stays: OMOP visits (`Visit/IP` events with an end time, EHRSHOT; single-point visits dropped) or,
for MIMIC-IV MEDS, each `HOSPITAL_ADMISSION//…` paired with the next `HOSPITAL_DISCHARGE…`.

Code sets and thresholds are configuration: a dataclass per labeler with EHRSHOT's defaults (SNOMED / LOINC
roots) plus ICD-9-CM / ICD-10-CM sets and MIMIC-IV lab item ids, overridable from a YAML file or
`--set key=value`.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from abc import ABC, abstractmethod
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from ehrmind.errors import ConfigError
from ehrmind.tasks.ehrshot.codes import CodeSet
from ehrmind.tasks.ehrshot.readers import Event, Timeline

LAB_CLASSES = ("normal", "mild", "moderate", "severe")


def end_of_day(t: datetime) -> datetime:
    """23:59:59 of that day: ehrshot-benchmark `ehrshot/labelers/omop.py:62-63` (`move_datetime_to_end_of_day`,
    `date.replace(hour=23, minute=59, second=59)`; femr 0.0.20 `src/femr/labelers/omop.py:92-93`). A date-only
    event moved to 23:59:00 (`move_to_day_end`) is then before the prediction time of its own day, and a
    window of whole days from it ends at 23:59:59 too (issue #29: at 23:59:00 a date-only diagnosis on the day
    after a discharge fell inside `new_*`'s window, and a record ending exactly 30 days later was not censored
    for `guo_readmission`)."""
    return t.replace(hour=23, minute=59, second=59, microsecond=0)


@dataclass(frozen=True)
class LabelResult:
    """One label: when the prediction is made, and the answer. `detail` may describe what is asked about
    (the lab's name) but never holds anything from after the prediction time."""

    prediction_time: datetime
    value: bool
    label_class: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- stays


@dataclass
class VisitConfig:
    """How inpatient stays are found."""

    inpatient_codes: tuple[str, ...] = ("Visit/IP",)
    """OMOP visit codes counted as inpatient (EHRSHOT: Visit/IP; EHRSHOT's MIMIC runs add Visit/ERIP)."""
    admission_prefixes: tuple[str, ...] = ("HOSPITAL_ADMISSION",)
    """MEDS codes opening a stay (MIMIC-IV MEDS: HOSPITAL_ADMISSION//<type>//<location>)."""
    discharge_prefixes: tuple[str, ...] = ("HOSPITAL_DISCHARGE",)
    """MEDS codes closing the open stay."""
    exclude_admission_types: tuple[str, ...] = ()
    """MIMIC admission types to ignore (second code segment), e.g. ["EU OBSERVATION"]; none by default."""


def inpatient_stays(
    tl: Timeline, cfg: VisitConfig, stats: Counter[str] | None = None
) -> list[tuple[datetime, datetime]]:
    """(admission, discharge) pairs, sorted and de-duplicated. At one time, discharges come before
    admissions (a transfer closes one stay and opens the next in the same minute), whatever the file order
    (issue #16, cause 8)."""
    stats = stats if stats is not None else Counter()
    stays: set[tuple[datetime, datetime]] = set()
    inpatient = set(cfg.inpatient_codes)
    open_at: datetime | None = None
    skipping = False

    def discharge_first(e: Event) -> tuple[datetime, int]:
        return e.time, 0 if e.code.startswith(cfg.discharge_prefixes) else 1

    for e in sorted(tl.timed, key=discharge_first):  # stable: the timeline's own order otherwise
        t = e.time
        assert t is not None
        if e.code in inpatient and e.end is not None and e.table in (None, "visit_occurrence"):
            if e.end > t:
                stays.add((t, e.end))
            else:
                stats["visit: end not after start (dropped)"] += 1
            continue
        if e.code.startswith(cfg.admission_prefixes):
            if open_at is not None:
                stats["visit: admission without discharge (dropped)"] += 1
            parts = e.code.split("//")
            skipping = len(parts) > 1 and parts[1] in cfg.exclude_admission_types
            open_at = None if skipping else t
            if skipping:
                stats["visit: excluded admission type"] += 1
        elif e.code.startswith(cfg.discharge_prefixes):
            if open_at is not None:
                if t > open_at:
                    stays.add((open_at, t))
                else:
                    stats["visit: end not after start (dropped)"] += 1
            open_at, skipping = None, False
    if open_at is not None:
        stats["visit: admission without discharge (dropped)"] += 1
    return sorted(stays)


def admission_day_stays(
    tl: Timeline, cfg: VisitConfig, stats: Counter[str]
) -> list[tuple[datetime, datetime, datetime]]:
    """(11:59pm on the admission day, admission, discharge) of each stay predicted at its admission day
    (`guo_los`, `guo_icu`): stays discharged that same day are excluded, and a second stay with the same
    prediction time (one example per time here; the benchmark would label it twice)."""
    out: dict[datetime, tuple[datetime, datetime, datetime]] = {}
    for adm, dis in inpatient_stays(tl, cfg, stats):
        if adm.date() == dis.date():
            stats["excluded: discharged on the day of admission"] += 1
            continue
        t = end_of_day(adm)
        if t in out:
            stats["excluded: second stay with the same prediction time"] += 1
            continue
        out[t] = (t, adm, dis)
    return [out[t] for t in sorted(out)]


def _time_horizon_labels(
    prediction_times: Sequence[datetime],
    outcomes: Sequence[datetime],
    end_time: datetime | None,
    start: timedelta,
    end: timedelta,
    censor: bool,
    stats: Counter[str],
) -> list[LabelResult]:
    """EHRSHOT's TimeHorizonEventLabeler: positive if an outcome falls in [t + start, t + end]; negative if
    not and the record goes on to t + end; otherwise censored: dropped with `censor`, else a negative."""
    out = []
    for t in prediction_times:
        i = bisect_left(outcomes, t + start)
        if i < len(outcomes) and outcomes[i] <= t + end:
            out.append(LabelResult(t, True))
        elif end_time is not None and end_time >= t + end:
            out.append(LabelResult(t, False))
        elif censor:
            stats["excluded: censored (follow-up ends inside the window)"] += 1
        else:
            out.append(LabelResult(t, False))
    return out


# ---------------------------------------------------------------------------------------------- configs


@dataclass
class LabelerConfig:
    """Fields shared by every labeler."""

    name: str = ""
    title: str = ""
    """What is predicted, in words (used in the question)."""
    visits: VisitConfig = field(default_factory=VisitConfig)

    RULES: ClassVar[dict[str, dict[str, Any]]] = {"ehrshot": {}, "ehrmind": {}}
    """Field values of each rule set (`rules=NAME` build option): "ehrshot", the benchmark's definitions
    (the dataclass defaults), and "ehrmind", ehrmind's earlier departures from them."""

    def with_overrides(self, overrides: dict[str, Any]) -> LabelerConfig:
        """A copy with fields replaced; unknown keys raise ConfigError listing the valid ones."""
        names = {f.name for f in dataclasses.fields(self)} - {"name"}
        visit_names = {f.name for f in dataclasses.fields(VisitConfig)}
        unknown = [k for k in overrides if k not in names and k not in visit_names]
        if unknown:
            raise ConfigError(
                f"unknown option(s) for labeler {self.name}: {', '.join(unknown)}; "
                f"valid: {', '.join(sorted(names | visit_names))}"
            )
        visit = {k: _as_tuple(v) for k, v in overrides.items() if k in visit_names}
        own = {k: v for k, v in overrides.items() if k in names and k != "visits"}
        if isinstance(overrides.get("visits"), dict):
            visit.update({k: _as_tuple(v) for k, v in overrides["visits"].items()})
        fields = {f.name: f for f in dataclasses.fields(self)}
        for k, v in own.items():
            if k == "unit_factors" and isinstance(v, dict):
                own[k] = tuple((str(u).lower(), float(f)) for u, f in v.items())
            elif isinstance(getattr(self, k), tuple):
                own[k] = _as_tuple(v)
            elif fields[k].type in ("int", "float") and (
                isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
            ):
                raise ConfigError(f"labeler option {k} must be a number, got {str(v)[:40]!r}")
            elif fields[k].type == "int" and isinstance(v, float):
                if not v.is_integer():
                    raise ConfigError(f"labeler option {k} must be a whole number, got {v!r}")
                own[k] = int(v)
            elif fields[k].type == "bool" and not isinstance(v, bool):
                raise ConfigError(f"labeler option {k} must be true or false, got {str(v)[:40]!r}")
        new = dataclasses.replace(self, **own)
        if visit:
            new = dataclasses.replace(new, visits=dataclasses.replace(self.visits, **visit))
        new.validate()
        return new

    def validate(self) -> None:  # noqa: B027 - optional hook
        """Cross-field checks; raise ConfigError saying what to change."""


def _as_tuple(v: Any) -> Any:
    if isinstance(v, str):
        return tuple(s.strip() for s in v.split(",") if s.strip())
    if isinstance(v, (list, tuple)):
        return tuple(v)
    return v


@dataclass
class NewDiagnosisConfig(LabelerConfig):
    codes: tuple[str, ...] = ()
    """Codes of the disease (`VOCAB/CODE`, a trailing `*` for a prefix)."""
    horizon_days: int = 365
    """The window ends this many days after the prediction time (inclusive)."""
    horizon_start_minutes: int = 24 * 60
    """The window opens this many minutes after the prediction time (inclusive). EHRSHOT: 1 day (1440);
    ehrmind's earlier rule: 1 minute, so a diagnosis within the first day counts too."""
    censor: bool = False
    """False (EHRSHOT): no diagnosis in the window is a negative even when the record ends inside the window.
    True (ehrmind's earlier rule): such censored prediction times are dropped."""

    RULES: ClassVar[dict[str, dict[str, Any]]] = {
        "ehrshot": {},
        "ehrmind": {"horizon_start_minutes": 1, "censor": True},
    }

    def validate(self) -> None:
        if not self.codes:
            raise ConfigError(f"labeler {self.name}: 'codes' is empty; give at least one code")
        _check_window(self)
        _check_codes(self.name, self.codes)


@dataclass
class ReadmissionConfig(LabelerConfig):
    horizon_days: int = 30
    """The window ends this many days after the prediction time (inclusive)."""
    horizon_start_minutes: int = 1
    """The window opens this many minutes after the prediction time (EHRSHOT: 1 minute)."""
    censor: bool = True
    """True (EHRSHOT): no readmission and the record ends inside the window: dropped. False: a negative."""
    same_day: str = "benchmark"
    """Which stays are dropped as "readmitted on same day as discharge". "benchmark" (the code,
    ehrshot-benchmark `ehrshot/labelers/ehrshot.py:95-105`): a stay discharged on the day an *earlier* stay
    was admitted (the admission days seen so far, in admission order). "next_admission" (its docstring, and
    ehrmind's earlier rule): a stay followed by a new admission on its discharge day, which the prompt would
    show. On the MIMIC-IV demo: 223 examples / 51 positive vs 221 / 50."""

    RULES: ClassVar[dict[str, dict[str, Any]]] = {"ehrshot": {}, "ehrmind": {"same_day": "next_admission"}}

    def validate(self) -> None:
        _check_window(self)
        if self.same_day not in ("benchmark", "next_admission"):
            raise ConfigError(
                f"labeler {self.name}: same_day must be benchmark or next_admission, got {self.same_day!r}"
            )


def _check_window(cfg: NewDiagnosisConfig | ReadmissionConfig) -> None:
    if cfg.horizon_days <= 0:
        raise ConfigError(f"labeler {cfg.name}: horizon_days must be > 0")
    if cfg.horizon_start_minutes < 0 or cfg.horizon_start_minutes > cfg.horizon_days * 24 * 60:
        raise ConfigError(
            f"labeler {cfg.name}: horizon_start_minutes must be between 0 and horizon_days in minutes "
            f"({cfg.horizon_days * 24 * 60}); got {cfg.horizon_start_minutes}"
        )
    if not isinstance(cfg.censor, bool):
        raise ConfigError(f"labeler {cfg.name}: censor must be true or false, got {cfg.censor!r}")


ICU_CARE_SITES = tuple(
    f"CARE_SITE/{n}"
    for n in (
        7928450,
        7930385,
        7930600,
        7928852,
        7928619,
        7929727,
        7928675,
        7930225,
        7928759,
        7928227,
        7928810,
        7929179,
        7928650,
        7929351,
        7928457,
        7928195,
        7930681,
        7930670,
        7930176,
        7931420,
        7929149,
        7930857,
        7931186,
        7930934,
        7930924,
    )
)
"""EHRSHOT's ICU care sites (every STARR care site with "ICU" in its name): ehrshot-benchmark@a7cfb52
`ehrshot/labelers/omop.py:31-59` `get_icu_visit_detail_concepts`."""


@dataclass
class IcuTransferConfig(LabelerConfig):
    icu_codes: tuple[str, ...] = ICU_CARE_SITES
    """OMOP codes of ICU stays, counted on `visit_detail` events with an end after their start (EHRSHOT)."""
    icu_prefixes: tuple[str, ...] = ("ICU_ADMISSION",)
    """MEDS codes starting an ICU stay (MIMIC-IV MEDS: ICU_ADMISSION//<care unit>)."""

    def validate(self) -> None:
        if not self.icu_codes and not self.icu_prefixes:
            raise ConfigError(f"labeler {self.name}: give icu_codes or icu_prefixes")


@dataclass
class LongStayConfig(LabelerConfig):
    min_days: float = 7.0

    def validate(self) -> None:
        if self.min_days <= 0:
            raise ConfigError(f"labeler {self.name}: min_days must be > 0")


def _check_codes(name: str, codes: Sequence[str]) -> None:
    try:
        CodeSet.parse(codes, where=f"labeler {name} codes")
    except ValueError as e:
        raise ConfigError(str(e)) from None


_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass
class LabConfig(LabelerConfig):
    analyte: str = ""
    """The measured substance, in words (e.g. 'sodium')."""
    codes: tuple[str, ...] = ()
    unit: str = ""
    """The unit the thresholds are in, after conversion."""
    levels: tuple[tuple[str, str, float], ...] = ()
    """(class, operator, threshold), checked in order; no match is 'normal'."""
    unit_factors: tuple[tuple[str, float], ...] | None = None
    """(unit prefix, factor to the thresholds' unit), lower-case; a unit matching none is unusable (the
    result is skipped, as EHRSHOT does). None: the unit is not looked at (EHRSHOT's sodium, platelets)."""

    def validate(self) -> None:
        if not self.codes:
            raise ConfigError(f"labeler {self.name}: 'codes' is empty; give at least one code")
        if not self.levels:
            raise ConfigError(f"labeler {self.name}: 'levels' is empty")
        for lv in self.levels:
            if len(lv) != 3 or lv[0] not in LAB_CLASSES[1:] or lv[1] not in _OPS:
                raise ConfigError(
                    f"labeler {self.name}: each level is [class, operator, threshold] with class in "
                    f"{LAB_CLASSES[1:]} and operator in {tuple(_OPS)}; got {lv!r}"
                )
        _check_codes(self.name, self.codes)

    def classify(self, value: float | None, text: str | None, unit: str | None) -> str | None:
        """EHRSHOT's class for one result, or None when it cannot be read."""
        if value is None and text is not None:
            if text.strip().lower() in ("normal", "adequate"):
                return "normal"
            try:
                value = float(text)
            except ValueError:
                return None
        if value is None:
            return None
        if self.unit_factors is not None:
            u = (unit or "").strip().lower()
            factor = next((f for prefix, f in self.unit_factors if u.startswith(prefix)), None)
            if not u or factor is None:
                return None
            value = value * factor
        for cls, op, threshold in self.levels:
            if _OPS[op](value, float(threshold)):
                return cls
        return "normal"

    @property
    def criterion(self) -> str:
        """'sodium <= 135 mmol/L': the boundary between normal and abnormal."""
        mild = next((lv for lv in self.levels if lv[0] == "mild"), self.levels[-1])
        return f"{self.analyte} {mild[1]} {float(mild[2]):g} {self.unit}".strip()


# ---------------------------------------------------------------------------------------------- labelers


class Labeler(ABC):
    """Turns a Timeline into labels. Subclasses set `kind` and the label names a model may answer with."""

    kind: ClassVar[str] = ""
    positive_names: ClassVar[tuple[str, ...]] = ()
    negative_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: LabelerConfig):
        config.validate()
        self.config = config

    @property
    def name(self) -> str:
        return self.config.name

    @abstractmethod
    def label(self, tl: Timeline, stats: Counter[str]) -> list[LabelResult]:
        """All labels of one subject, in time order; exclusions are counted in `stats`."""

    @abstractmethod
    def question(self, prediction_time: datetime, detail: dict[str, Any]) -> str:
        """The task question for one example."""

    def code_sets(self) -> dict[str, CodeSet]:
        return {}

    def wanted(self, code: str, canonical: str) -> bool:
        """Whether `label` looks at events of this code (the code as written, stripped; its canonical
        spelling). The columnar reader gives `label` only those events (`Timeline.for_labels`), deciding once per
        distinct code; a labeler that does not say looks at every event."""
        return True


def visit_wanted(cfg: VisitConfig, code: str) -> bool:
    """Whether `inpatient_stays` looks at events of this code."""
    return code in cfg.inpatient_codes or code.startswith(cfg.admission_prefixes + cfg.discharge_prefixes)


class NewDiagnosisLabeler(Labeler):
    kind = "new_diagnosis"
    positive_names = ("diagnosed", "new diagnosis")
    negative_names = ("not diagnosed", "no new diagnosis", "no diagnosis")

    def __init__(self, config: NewDiagnosisConfig, codes: CodeSet | None = None):
        super().__init__(config)
        self.config: NewDiagnosisConfig = config
        self.codes = codes or CodeSet.parse(config.codes)

    def code_sets(self) -> dict[str, CodeSet]:
        return {"outcome": self.codes}

    def wanted(self, code: str, canonical: str) -> bool:
        return canonical in self.codes or visit_wanted(self.config.visits, code)

    def label(self, tl: Timeline, stats: Counter[str]) -> list[LabelResult]:
        cfg = self.config
        times = sorted({end_of_day(dis) for _, dis in inpatient_stays(tl, cfg.visits, stats)})
        outcomes = [e.time for e in tl.timed if e.canonical in self.codes]
        if outcomes:
            first = outcomes[0]
            # ehrshot-benchmark `ehrshot/labelers/ehrshot.py:575-578`: times at or before the first diagnosis
            kept = [t for t in times if t <= first]
            stats["excluded: already diagnosed"] += len(times) - len(kept)
            times = kept
        return _time_horizon_labels(
            times,
            outcomes,  # type: ignore[arg-type]
            tl.end_time,
            timedelta(minutes=cfg.horizon_start_minutes),
            timedelta(days=cfg.horizon_days),
            cfg.censor,
            stats,
        )

    def question(self, prediction_time: datetime, detail: dict[str, Any]) -> str:
        c = self.config
        if c.horizon_start_minutes <= 1:
            window = f"within {c.horizon_days} days after"
        else:
            window = f"between {_duration(c.horizon_start_minutes)} and {c.horizon_days} days after"
        return (
            f"Will this patient receive a first diagnosis of {c.title} {window} the prediction time "
            f"({prediction_time:%Y-%m-%d %H:%M})? "
            "The prediction is made at the end of the day of a hospital discharge."
        )


def _duration(minutes: int) -> str:
    """1440 -> '1 day', 120 -> '2 hours', 90 -> '90 minutes'."""
    size, unit = next((k, u) for k, u in ((24 * 60, "day"), (60, "hour"), (1, "minute")) if minutes % k == 0)
    n = minutes // size
    return f"{n} {unit}{'' if n == 1 else 's'}"


class ReadmissionLabeler(Labeler):
    kind = "readmission"
    positive_names = ("readmitted", "readmission")
    negative_names = ("not readmitted", "no readmission")

    def __init__(self, config: ReadmissionConfig):
        super().__init__(config)
        self.config: ReadmissionConfig = config

    def wanted(self, code: str, canonical: str) -> bool:
        return visit_wanted(self.config.visits, code)

    def label(self, tl: Timeline, stats: Counter[str]) -> list[LabelResult]:
        cfg = self.config
        stays = inpatient_stays(tl, cfg.visits, stats)
        admissions = sorted(a for a, _ in stays)
        times = set()
        admission_days: set[date] = set()
        for adm, dis in stays:  # in admission order
            t = end_of_day(dis)
            if cfg.same_day == "benchmark":
                # ehrshot.py:99-104: the discharge day is the admission day of a stay kept before this one
                same_day = t.date() in admission_days
                if not same_day:
                    admission_days.add(adm.date())
            else:  # a new admission on the very day of discharge: it would be in the prompt
                i = bisect_left(admissions, dis)
                same_day = i < len(admissions) and admissions[i] <= t
            if same_day:
                stats["excluded: readmitted on the day of discharge"] += 1
                continue
            times.add(t)
        return _time_horizon_labels(
            sorted(times),
            admissions,
            tl.end_time,
            timedelta(minutes=cfg.horizon_start_minutes),
            timedelta(days=cfg.horizon_days),
            cfg.censor,
            stats,
        )

    def question(self, prediction_time: datetime, detail: dict[str, Any]) -> str:
        return (
            "The patient was discharged from an inpatient stay on the day of the prediction time "
            f"({prediction_time:%Y-%m-%d %H:%M}). Will the patient be readmitted to the hospital (a new "
            f"inpatient admission) within {self.config.horizon_days} days?"
        )


class LongStayLabeler(Labeler):
    kind = "long_los"
    positive_names = ("long stay", "long", "long length of stay")
    negative_names = ("short stay", "short", "not long")

    def __init__(self, config: LongStayConfig):
        super().__init__(config)
        self.config: LongStayConfig = config

    def wanted(self, code: str, canonical: str) -> bool:
        return visit_wanted(self.config.visits, code)

    def label(self, tl: Timeline, stats: Counter[str]) -> list[LabelResult]:
        return [
            LabelResult(t, (dis - adm) >= timedelta(days=self.config.min_days))
            for t, adm, dis in admission_day_stays(tl, self.config.visits, stats)
        ]

    def question(self, prediction_time: datetime, detail: dict[str, Any]) -> str:
        return (
            "The patient was admitted to the hospital on the day of the prediction time "
            f"({prediction_time:%Y-%m-%d %H:%M}) and is still in hospital. Will this hospital stay last "
            f"{self.config.min_days:g} days or longer (from admission to discharge)?"
        )


class IcuTransferLabeler(Labeler):
    kind = "icu_transfer"
    positive_names = ("icu", "icu transfer", "transferred")
    negative_names = ("no icu", "no icu transfer", "not transferred")

    def __init__(self, config: IcuTransferConfig):
        super().__init__(config)
        self.config: IcuTransferConfig = config

    def wanted(self, code: str, canonical: str) -> bool:
        c = self.config
        return code in c.icu_codes or code.startswith(c.icu_prefixes) or visit_wanted(c.visits, code)

    def icu_starts(self, tl: Timeline) -> list[datetime]:
        """Start times of the ICU stays (ehrshot-benchmark `omop.py:129-154` `get_icu_events`, or MEDS codes)."""
        codes, prefixes = set(self.config.icu_codes), self.config.icu_prefixes
        out = []
        for e in tl.timed:
            assert e.time is not None
            if e.code in codes and e.table == "visit_detail":
                if e.end is not None and e.end > e.time:  # single-point ICU events are dropped
                    out.append(e.time)
            elif prefixes and e.code.startswith(prefixes):
                out.append(e.time)
        return sorted(out)

    def label(self, tl: Timeline, stats: Counter[str]) -> list[LabelResult]:
        """ehrshot-benchmark `ehrshot/labelers/ehrshot.py:112-153` (`Guo_ICUAdmissionLabeler`) and
        `omop.py:233-345` (`WithinVisitLabeler.label`)."""
        starts = self.icu_starts(tl)
        icu_days = {t.date() for t in starts}
        out = []
        for t, adm, dis in admission_day_stays(tl, self.config.visits, stats):
            if adm.date() in icu_days:
                stats["excluded: ICU admission on the day of admission"] += 1
                continue
            i = bisect_left(starts, t)
            out.append(LabelResult(t, i < len(starts) and starts[i] <= dis))
        return out

    def question(self, prediction_time: datetime, detail: dict[str, Any]) -> str:
        return (
            "The patient was admitted to the hospital on the day of the prediction time "
            f"({prediction_time:%Y-%m-%d %H:%M}) and is still in hospital, not in an intensive care unit. Will "
            "the patient be transferred to an intensive care unit (ICU) before discharge from this stay?"
        )


class LabLabeler(Labeler):
    kind = "lab"
    positive_names = ("abnormal", "mild", "moderate", "severe")
    negative_names = ("normal",)

    def __init__(self, config: LabConfig, codes: CodeSet | None = None):
        super().__init__(config)
        self.config: LabConfig = config
        self.codes = codes or CodeSet.parse(config.codes)

    def code_sets(self) -> dict[str, CodeSet]:
        return {"lab": self.codes}

    def wanted(self, code: str, canonical: str) -> bool:
        return canonical in self.codes

    def label(self, tl: Timeline, stats: Counter[str]) -> list[LabelResult]:
        first = tl.start_time
        out: dict[datetime, LabelResult] = {}
        for e in tl.timed:
            if e.canonical not in self.codes:
                continue
            if e.time == first:
                stats["excluded: result at the time of the first event"] += 1
                continue
            cls = self.config.classify(e.numeric_value, e.text_value, e.unit)
            if cls is None:
                stats["excluded: no usable value or unit"] += 1
                continue
            t = e.time - timedelta(minutes=1)  # type: ignore[operator]
            if t in out:
                stats["excluded: second result at the same time"] += 1
                continue
            out[t] = LabelResult(t, cls != "normal", cls, {"code": e.code})
        return list(out.values())

    def question(self, prediction_time: datetime, detail: dict[str, Any]) -> str:
        c = self.config
        return (
            f"A {c.analyte} test result for this patient will be reported one minute after the prediction "
            f"time ({prediction_time:%Y-%m-%d %H:%M}). Will the result be abnormal, that is, show "
            f"{c.title} ({c.criterion})?"
        )


# ---------------------------------------------------------------------------------------------- defaults

# SNOMED roots are EHRSHOT's (FEMR labelers/ehrshot.py), expanded to descendants by EHRSHOT's ontology;
# pass an OMOP vocabulary folder (`--set ontology=DIR`) to do the same. ICD sets serve ICD-coded data
# (MIMIC-IV): the hypertension and hyperlipidemia ranges are the project's (ICD-9 401-405 / ICD-10 I10-I16;
# ICD-9 272.0-272.4 / ICD-10 E78.0-E78.5); the others are the usual ICD categories of each disease.
NEW_DIAGNOSIS_DEFAULTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "new_hypertension": (
        "hypertension",
        ("SNOMED/59621000",)
        + tuple(f"ICD10CM/{c}*" for c in ("I10", "I11", "I12", "I13", "I15", "I16"))
        + tuple(f"ICD9CM/{c}*" for c in ("401", "402", "403", "404", "405")),
    ),
    "new_hyperlipidemia": (
        "hyperlipidemia",
        ("SNOMED/55822004",)
        + tuple(f"ICD10CM/{c}*" for c in ("E780", "E781", "E782", "E783", "E784", "E785"))
        + tuple(f"ICD9CM/{c}*" for c in ("2720", "2721", "2722", "2723", "2724")),
    ),
    "new_pancan": ("pancreatic cancer", ("SNOMED/372003004", "ICD10CM/C25*", "ICD9CM/157*")),
    "new_celiac": ("celiac disease", ("SNOMED/396331005", "ICD10CM/K900*", "ICD9CM/5790*")),
    "new_lupus": ("systemic lupus erythematosus", ("SNOMED/55464009", "ICD10CM/M32*", "ICD9CM/7100*")),
    "new_acutemi": (
        "acute myocardial infarction",
        ("SNOMED/57054005", "ICD10CM/I21*", "ICD10CM/I22*", "ICD9CM/410*"),
    ),
}

# EHRSHOT's lab roots (LOINC groups/parts are expanded by its ontology), a few exact LOINC codes of the same
# tests so the task works without an ontology, and MIMIC-IV lab item ids (labevents, not ICU chart copies).
LAB_DEFAULTS: dict[str, dict[str, Any]] = {
    "lab_thrombocytopenia": {
        "title": "thrombocytopenia",
        "analyte": "platelet count",
        "unit": "x10^9/L",
        "codes": ("LOINC/LP393218-5", "LOINC/LG32892-8", "LOINC/777-3", "LOINC/26515-7", "LAB//51265//*"),
        "levels": (("severe", "<", 50.0), ("moderate", "<", 100.0), ("mild", "<", 150.0)),
        "unit_factors": None,
    },
    "lab_hyperkalemia": {
        "title": "hyperkalemia",
        "analyte": "potassium",
        "unit": "mmol/L",
        "codes": (
            "LOINC/LG7931-1",
            "LOINC/LP386618-5",
            "LOINC/LG10990-6",
            "LOINC/6298-4",
            "LOINC/2823-3",
            "LAB//50971//*",
            "LAB//50822//*",
        ),
        "levels": (("severe", ">", 7.0), ("moderate", ">", 6.0), ("mild", ">", 5.5)),
        # EHRSHOT divides mg/dL by 18 for potassium too (a glucose factor); kept for faithful labels
        "unit_factors": (("mmol/l", 1.0), ("meq/l", 1.0), ("mg/dl", 1 / 18)),
    },
    "lab_hypoglycemia": {
        "title": "hypoglycemia",
        "analyte": "glucose",
        "unit": "mmol/L",
        "codes": (
            "SNOMED/33747003",
            "LOINC/LP416145-3",
            "LOINC/14749-6",
            "LOINC/2345-7",
            "LOINC/2339-0",
            "LOINC/15074-8",
            "LAB//50931//*",
            "LAB//50809//*",
        ),
        "levels": (("severe", "<", 3.0), ("moderate", "<", 3.5), ("mild", "<=", 3.9)),
        "unit_factors": (("mg/dl", 1 / 18), ("mmol/l", 1.0)),
    },
    "lab_hyponatremia": {
        "title": "hyponatremia",
        "analyte": "sodium",
        "unit": "mmol/L",
        "codes": ("LOINC/LG11363-5", "LOINC/2951-2", "LOINC/2947-0", "LAB//50983//*", "LAB//50824//*"),
        "levels": (("severe", "<", 125.0), ("moderate", "<", 130.0), ("mild", "<=", 135.0)),
        "unit_factors": None,
    },
    "lab_anemia": {
        "title": "anemia",
        "analyte": "hemoglobin",
        "unit": "g/L",
        "codes": ("LOINC/LP392452-1", "LOINC/718-7", "LAB//51222//*", "LAB//50811//*"),
        "levels": (("severe", "<", 70.0), ("moderate", "<", 110.0), ("mild", "<", 120.0)),
        # EHRSHOT: g/dL x 10 -> g/L; mg/dL / 100 (sic); g/L as is
        "unit_factors": (("g/dl", 10.0), ("mg/dl", 0.01), ("g/l", 1.0)),
    },
}

READMISSION = "guo_readmission"
LONG_LOS = "guo_los"
ICU_TRANSFER = "guo_icu"
LABELER_NAMES: tuple[str, ...] = (
    LONG_LOS,
    READMISSION,
    ICU_TRANSFER,
    *NEW_DIAGNOSIS_DEFAULTS,
    *LAB_DEFAULTS,
)
ALIASES = {"readmission": READMISSION, "long_los": LONG_LOS, "los": LONG_LOS, "icu_transfer": ICU_TRANSFER}


def default_config(name: str) -> LabelerConfig:
    """The EHRSHOT-default configuration of a labeler."""
    name = ALIASES.get(name, name)
    if name in NEW_DIAGNOSIS_DEFAULTS:
        title, codes = NEW_DIAGNOSIS_DEFAULTS[name]
        return NewDiagnosisConfig(name=name, title=title, codes=codes)
    if name in LAB_DEFAULTS:
        return LabConfig(name=name, **LAB_DEFAULTS[name])
    if name == READMISSION:
        return ReadmissionConfig(name=name, title="30-day readmission")
    if name == LONG_LOS:
        return LongStayConfig(name=name, title="long length of stay")
    if name == ICU_TRANSFER:
        return IcuTransferConfig(name=name, title="ICU transfer")
    raise ConfigError(f"unknown labeler {name!r}; known: {', '.join(LABELER_NAMES)}")


def make_labeler(config: LabelerConfig, codes: CodeSet | None = None) -> Labeler:
    if isinstance(config, NewDiagnosisConfig):
        return NewDiagnosisLabeler(config, codes)
    if isinstance(config, LabConfig):
        return LabLabeler(config, codes)
    if isinstance(config, ReadmissionConfig):
        return ReadmissionLabeler(config)
    if isinstance(config, LongStayConfig):
        return LongStayLabeler(config)
    if isinstance(config, IcuTransferConfig):
        return IcuTransferLabeler(config)
    raise ConfigError(f"no labeler for configuration {type(config).__name__}")


RULE_SETS = ("ehrshot", "ehrmind")
"""`rules=` values: "ehrshot" (default) is the benchmark's definitions; "ehrmind" restores ehrmind's earlier
rules (new diagnoses: censored prediction times dropped, window from 1 minute; dates read at 00:00)."""


def rule_overrides(config: LabelerConfig, rules: str) -> dict[str, Any]:
    """The field values a rule set gives this labeler; ConfigError for an unknown rule set."""
    if rules not in RULE_SETS:
        raise ConfigError(f"unknown rules {rules!r}; choose one of {', '.join(RULE_SETS)}")
    return dict(config.RULES.get(rules, {}))


def get_labeler(name: str, rules: str = "ehrshot", **overrides: Any) -> Labeler:
    """`get_labeler("new_hypertension", horizon_days=180)`; `rules="ehrmind"` for ehrmind's earlier rules
    (explicit overrides win)."""
    cfg = default_config(name)
    overrides = {**rule_overrides(cfg, rules), **overrides}
    return make_labeler(cfg.with_overrides(overrides) if overrides else cfg)
