"""Stream patient timelines from MEDS Parquet, EHRSHOT CSV and the MIMIC-IV demo variant.

All three are one long table of events; only the column names differ:

| MEDS (meds 0.4)  | EHRSHOT CSV | MIMIC-IV demo file | meaning |
|---|---|---|---|
| subject_id       | patient_id  | subject_id | the patient |
| time             | start       | time       | event time; null for static codes (sex) |
| code             | code        | code       | `SNOMED/…`, `LOINC/…`, `DIAGNOSIS//ICD//10//I10`, … |
| numeric_value    | value       | value      | a number (EHRSHOT's `value` may also be text) |
| text_value       | value       | —          | text results |
| —                | unit        | —          | unit (MIMIC puts it in the code: `LAB//50983//mEq/L`) |
| end (metadata)   | end         | —          | end of a visit |
| table (metadata) | omop_table  | table      | OMOP table; MIMIC's `table` is meaningless and ignored |

Streaming: events are read in batches (pyarrow), and one subject's events are held at a time. This needs
the rows of each subject to be contiguous, as in MEDS shards (sorted by subject_id, then time) and the
EHRSHOT CSV (sorted by patient_id). A subject that shows up again after other subjects is an error naming
the row; `sort=True` sorts in memory instead (only for data that fits). Within a subject, events are
sorted by time, then by content (the file order of same-time events never matters), static events first.

Times, as EHRSHOT's ETL reads them: a timestamp with a time-zone offset is converted to UTC (then kept
naive); a timestamp exactly at midnight is taken as date-only and moved to 23:59 of its day, birth excepted
(`move_to_day_end`, femr 0.0.20 `transforms/stanford.py` `move_to_day_end`, applied by its Stanford ETL),
so a same-day event is not visible to an intraday prediction time. Codes whose midnight is a real time
(`timed_codes`; by default MIMIC-IV MEDS's lab, medication, admission… codes, `MIMIC_TIMED_CODES`) stay at
00:00. `move_to_day_end=False` reads every such event at 00:00.
"""

from __future__ import annotations

import logging
import math
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehrmind.errors import DataError
from ehrmind.tasks.ehrshot.codes import Vocabulary, canonical_code
from ehrmind.tasks.ehrshot.tables import BATCH_ROWS, iter_table_batches, table_columns, table_kind

if TYPE_CHECKING:
    from ehrmind.tasks.ehrshot.columnar import ColumnarReader

log = logging.getLogger(__name__)

COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "subject_id": ("subject_id", "patient_id", "person_id"),
    "time": ("time", "start", "timestamp"),
    "code": ("code",),
    "numeric_value": ("numeric_value", "value"),
    "text_value": ("text_value",),
    "unit": ("unit",),
    "end": ("end",),
    "table": ("omop_table", "table"),
}
REQUIRED = ("subject_id", "time", "code")
OMOP_TABLES = frozenset(
    {
        "person",
        "visit_occurrence",
        "visit_detail",
        "condition_occurrence",
        "procedure_occurrence",
        "drug_exposure",
        "measurement",
        "observation",
        "device_exposure",
        "death",
        "note",
        "specimen",
        "image_occurrence",
    }
)
BIRTH_CODES = frozenset({"MEDS_BIRTH", "SNOMED/3950001"})
"""Birth events (MEDS, EHRSHOT/OMOP): never moved to the end of the day (femr skips OMOP_BIRTH too)."""
STATIC_PREFIXES = ("GENDER", "SEX", "RACE", "ETHNICITY", "LANGUAGE", "MARITAL", "INSURANCE", "PAYER")
"""Codes that are facts about a person rather than events (MEDS's static measurements, OMOP's person
table): a row of these without a time is expected; any other code without a time is counted as odd."""
_TO_DAY_END = timedelta(hours=23, minutes=59)
MIMIC_TIMED_CODES = (
    "LAB",
    "MEDICATION",
    "DIAGNOSIS",
    "DRG",
    "HOSPITAL_ADMISSION",
    "HOSPITAL_DISCHARGE",
    "ED_REGISTRATION",
    "ED_OUT",
    "TRANSFER_TO",
    "ICU_ADMISSION",
    "ICU_DISCHARGE",
    "PROCEDURE//START",
    "PROCEDURE//END",
    "INFUSION_START",
    "INFUSION_END",
    "SUBJECT_WEIGHT_AT_INFUSION",
    "PATIENT_WEIGHT_AT_INFUSION",
    "SUBJECT_FLUID_OUTPUT",
    "PATIENT_FLUID_OUTPUT",
)
"""Codes whose midnight times are real times, not dates (the `timed_codes` build option's default): the
MIMIC-IV MEDS ETL takes these from datetime columns — labevents/chartevents `charttime`, emar `charttime`,
pharmacy `starttime`, admissions `admittime`/`dischtime`/`edregtime`/`edouttime`, diagnoses and DRGs at the
stay's `dischtime`, transfers and ICU stays `intime`/`outtime`, procedureevents and inputevents
`starttime`/`endtime`, outputevents `charttime` (MEDS_transforms `MIMIC-IV_Example/configs/event_configs.yaml`).
Its date-only events (procedures_icd, hcpcsevents and omr `chartdate`, death `dod`) are not listed and are
moved like any other midnight event. EHRSHOT's OMOP codes (`LOINC/…`, `SNOMED/…`, `Visit/IP`) never start
so: on EHRSHOT data every midnight event is moved, as femr's ETL does. Issue #29: MIMIC charts 42,684 lab
results at exactly 00:00 on the demo; read as dates they moved to 23:59 and a lab label's prediction time
(1 minute before) became 23:58, showing the rest of that day's results to the model."""
READERS = ("columnar", "rows")
_CONTROL = re.compile(r"[\x00-\x1f]")
"""A line break or another control character (below U+0020), refused in codes."""
_EXPECTED = (
    "expected MEDS columns subject_id, time, code[, numeric_value, text_value] or EHRSHOT CSV columns "
    "patient_id, start, end, code, value, unit, visit_id, omop_table"
)


@dataclass(slots=True)
class Event:
    """One measurement of a timeline. `canonical` is the code in ehrmind's canonical spelling."""

    time: datetime | None
    code: str
    canonical: str
    numeric_value: float | None = None
    text_value: str | None = None
    unit: str | None = None
    end: datetime | None = None
    table: str | None = None


def _event_order(e: Event) -> tuple[Any, ...]:
    """Time, then the event's own content: events at the same time are ordered the same whatever the file
    order, so labels and prompts do not depend on it (issue #16, cause 8)."""
    return (
        e.time,
        e.canonical,
        e.code,
        e.numeric_value is not None,
        e.numeric_value or 0.0,
        e.text_value or "",
        e.unit or "",
        e.end is not None,
        e.end or e.time,
        e.table or "",
    )


class Timeline:
    """All events of one subject: static events (no time) first, then timed events in time order.

    The columnar reader makes a timeline's Event objects only when they are first used (`loader`), and hands
    a labeler `for_labels`: the few events it looks at (`Labeler.wanted`), with the whole record's first and
    last event times (`span`). A timeline made from Events is its own `for_labels`."""

    def __init__(
        self,
        subject_id: Any,
        events: list[Event] | None = None,
        times: list[datetime] | None = None,
        n_static: int = 0,
        *,
        loader: Callable[[], tuple[list[Event], list[datetime]]] | None = None,
        span: tuple[datetime | None, datetime | None] | None = None,
        for_labels: Timeline | None = None,
    ):
        self.subject_id = subject_id
        self.n_static = n_static
        self._events = events
        self._times = times if times is not None or events is None else []
        self._loader = loader
        self._span = span
        self._for_labels = for_labels

    @classmethod
    def build(cls, subject_id: Any, events: list[Event]) -> Timeline:
        static = sorted((e for e in events if e.time is None), key=lambda e: _event_order(e)[1:])
        timed = sorted((e for e in events if e.time is not None), key=_event_order)
        return cls(subject_id, static + timed, [e.time for e in timed], len(static))  # type: ignore[misc]

    def _load(self) -> None:
        assert self._loader is not None
        self._events, self._times = self._loader()
        self._loader = None

    @property
    def events(self) -> list[Event]:
        if self._events is None:
            self._load()
        return self._events  # type: ignore[return-value]

    @property
    def times(self) -> list[datetime]:
        """The times of the timed events, in order."""
        if self._times is None:
            self._load()
        return self._times  # type: ignore[return-value]

    @property
    def timed(self) -> list[Event]:
        return self.events[self.n_static :]

    @property
    def for_labels(self) -> Timeline:
        """The events a labeler looks at, with the record's span (see the class)."""
        return self._for_labels if self._for_labels is not None else self

    def cut(self, t: datetime) -> int:
        """Number of events visible at time `t`: static events and events at or before `t`."""
        return self.n_static + bisect_right(self.times, t)

    @property
    def start_time(self) -> datetime | None:
        """Time of the first timed event of the whole record."""
        if self._span is not None:
            return self._span[0]
        return self.times[0] if self.times else None

    @property
    def end_time(self) -> datetime | None:
        """Time of the last event of the whole record: EHRSHOT's (FEMR's) end of follow-up, used for
        censoring."""
        if self._span is not None:
            return self._span[1]
        return self.times[-1] if self.times else None


@dataclass
class EventSource:
    """Where a dataset's event files, MEDS code descriptions and subject splits are."""

    path: Path
    files: list[Path]
    codes_file: Path | None = None
    splits_file: Path | None = None

    @property
    def kind(self) -> str:
        return table_kind(self.files[0])


def resolve_source(path: str | Path) -> EventSource:
    """A MEDS dataset root (`data/**/*.parquet`, `metadata/codes.parquet`, `metadata/subject_splits.parquet`),
    an EHRSHOT folder (`data/ehrshot.csv`, `splits/person_id_map.csv`), a folder of shards, or one file."""
    p = Path(path)
    if not p.exists():
        raise DataError("file or folder not found", file=p)
    if p.is_file():
        table_kind(p)  # raises for an unsupported type
        root = p.parent.parent if p.parent.name == "data" else p.parent
        return EventSource(p, [p], _first(root / "metadata" / "codes.parquet"), _splits_file(root))
    data_dir = p / "data" if (p / "data").is_dir() else p
    skip = {"metadata", "labels", "benchmark", "splits"}
    files = sorted(
        f for f in data_dir.rglob("*.parquet") if not skip & set(f.relative_to(data_dir).parts[:-1])
    )
    if not files:
        files = sorted(
            f
            for f in data_dir.iterdir()
            if f.is_file() and f.name.lower().endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz"))
        )
    if not files:
        raise DataError("no event files (*.parquet, *.csv) in this folder", file=p)
    return EventSource(p, files, _first(p / "metadata" / "codes.parquet"), _splits_file(p))


def _first(*paths: Path) -> Path | None:
    return next((x for x in paths if x.is_file()), None)


def _splits_file(root: Path) -> Path | None:
    return _first(root / "metadata" / "subject_splits.parquet", root / "splits" / "person_id_map.csv")


def resolve_columns(path: Path) -> dict[str, str]:
    """Map ehrmind's column roles to this file's column names; DataError naming the missing one."""
    cols = table_columns(path)
    found: dict[str, str] = {}
    for role, names in COLUMN_ALIASES.items():
        for name in names:
            if name in cols:
                found[role] = name
                break
    missing = [r for r in REQUIRED if r not in found]
    if missing:
        raise DataError(
            f"missing column {missing[0]!r} ({_EXPECTED}); found {', '.join(cols)}",
            file=path,
            row=1,
            field=missing[0],
        )
    return found


# ---------------------------------------------------------------------------------------------- parsing


def parse_time(value: Any) -> datetime | None:
    """A naive datetime, or None for an empty cell; ValueError if unreadable. A time with a time-zone offset
    is converted to UTC, so that times written with different offsets are on one clock; a naive time is
    kept as it is (its zone is unknown)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return _naive_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        s = value.strip()
        if not s:
            return None
        return _naive_utc(datetime.fromisoformat(s.replace("Z", "+00:00") if s.endswith("Z") else s))
    raise ValueError(f"expected a date-time, got {type(value).__name__}")


def _naive_utc(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo is not None else t


def move_to_day_end(t: datetime) -> datetime:
    """A time exactly at midnight (a date without a time) moved to 23:59 of that day; others unchanged.
    femr 0.0.20 `transforms/stanford.py` `_move_date_to_end`: `d + 1 day - 1 minute` when `d.time()` is
    midnight."""
    if t.hour or t.minute or t.second or t.microsecond:
        return t
    return t + _TO_DAY_END


def parse_subject(value: Any) -> Any:
    """Subject ids as ints when they are integers (EHRSHOT, MIMIC), else as stripped strings."""
    if isinstance(value, bool) or value is None:
        raise ValueError("empty subject id")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(f"subject id {value!r} is not an integer")
    s = str(value).strip()
    if not s:
        raise ValueError("empty subject id")
    return int(s) if s.lstrip("-").isdigit() else s


def _value(v: Any) -> tuple[float | None, str | None]:
    """(number, text) of a value cell: a finite number, else its text; (None, None) when empty."""
    if v.__class__ is float:  # the common cell, first
        return (v, None) if math.isfinite(v) else (None, None)
    if v is None or isinstance(v, bool):
        return None, None
    if isinstance(v, (int, float)):
        f = float(v)
        return (None, None) if math.isnan(f) or math.isinf(f) else (f, None)
    s = str(v).strip()
    if not s:
        return None, None
    try:
        f = float(s)
    except ValueError:
        return None, s
    return (None, s) if math.isnan(f) or math.isinf(f) else (f, None)


@dataclass
class ReadStats:
    """Counts for the manifest: what was read and what looked odd."""

    rows: int = 0
    subjects: int = 0
    moved_to_day_end: int = 0
    """Events stamped exactly at midnight moved to 23:59 (`move_to_day_end`)."""
    kept_at_midnight: int = 0
    """Events at midnight kept there: their code's midnight is a real time (`timed_codes`)."""
    unknown_codes: Counter[str] = field(default_factory=Counter)
    unknown_examples: list[str] = field(default_factory=list)
    untimed: int = 0
    """Rows with no time, read as static facts (MEDS's rule)."""
    untimed_events: Counter[str] = field(default_factory=Counter)
    """Of those, rows whose code names something that happens at a time (a visit, diagnosis, lab …): as
    static facts they are never a prediction time or an outcome, so they are counted and warned about."""
    untimed_examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "subjects": self.subjects,
            "rows_without_time": self.untimed,
            "rows_without_time_not_static": sum(self.untimed_events.values()),
            "rows_without_time_examples": self.untimed_examples,
            "moved_to_day_end": self.moved_to_day_end,
            "kept_at_midnight": self.kept_at_midnight,
            "n_unknown_codes": len(self.unknown_codes),
            "n_rows_with_unknown_codes": sum(self.unknown_codes.values()),
            "unknown_code_examples": self.unknown_examples,
        }


def iter_timelines(
    source: EventSource | str | Path,
    *,
    vocab: Vocabulary | None = None,
    strict_codes: bool = False,
    sort: bool = False,
    batch_rows: int = BATCH_ROWS,
    stats: ReadStats | None = None,
    day_end: bool = True,
    timed_codes: Sequence[str] = MIMIC_TIMED_CODES,
    reader: str = "columnar",
    wanted: Callable[[str, str], bool] | None = None,
) -> Iterator[Timeline]:
    """Yield one Timeline per subject, streaming. Bad rows raise DataError naming file, row and field.

    Times: offsets are converted to UTC (`parse_time`); with `day_end` (EHRSHOT's ETL), start and end
    times exactly at midnight are moved to 23:59 of their day (`move_to_day_end`), except births and codes
    of `timed_codes` (a code equal to one, or starting with it and `//`: their midnight is a real time), and
    an end is kept at or after its start.

    Codes: an empty code, or one with a line break or control character, is an error. A code of a
    vocabulary that can be checked (ICD-9-CM, ICD-10-CM, ICD-10-PCS, or one covered by a user vocabulary)
    that is not in it is counted and logged; with `strict_codes` it is an error.

    Readers: "columnar" (`columnar.ColumnarReader`: numpy columns, Events made when first read, a labeler's
    events apart via `wanted`) or "rows" (a Python object per row as it is read: the reference the columnar
    reader is tested against). Both give the same timelines, counts and errors."""
    src = source if isinstance(source, EventSource) else resolve_source(source)
    stats = stats if stats is not None else ReadStats()
    if reader not in READERS:
        raise ValueError(f"reader must be one of {', '.join(READERS)}, got {reader!r}")
    state: _TimelineReader | ColumnarReader
    if reader == "rows":
        state = _TimelineReader(vocab, strict_codes, day_end, stats, timed_codes)
    else:
        from ehrmind.tasks.ehrshot.columnar import ColumnarReader

        state = ColumnarReader(vocab, strict_codes, day_end, stats, timed_codes, wanted)
    for path in src.files:
        yield from state.read_file(path, sort=sort, batch_rows=batch_rows)
    yield from state.finish()


_MAX_CACHED_CODES = 2_000_000
_MAX_CACHED_TIMES = 1_000_000


@dataclass(slots=True)
class _Columns:
    """One batch's columns by role; a role the file lacks is a column of None."""

    subject: list[Any]
    code: list[Any]
    time: list[Any]
    numeric_value: list[Any]
    text_value: list[Any]
    unit: list[Any]
    end: list[Any]
    table: list[Any]

    @classmethod
    def of(cls, roles: list[str], cols: tuple[list[Any], ...]) -> _Columns:
        """The columns of a batch read in `roles` order."""
        c = dict(zip(roles, cols, strict=True))
        nones = [None] * len(c["code"])
        return cls(
            c["subject_id"],
            c["code"],
            c["time"],
            *(c.get(role, nones) for role in ("numeric_value", "text_value", "unit", "end", "table")),
        )


class _TimelineReader:
    """The state of `iter_timelines` across files: the subject being gathered, the subjects already done,
    and caches of checked codes and parsed times. `path` and `colmap` are those of the file being read."""

    def __init__(
        self,
        vocab: Vocabulary | None,
        strict_codes: bool,
        day_end: bool,
        stats: ReadStats,
        timed_codes: Sequence[str] = MIMIC_TIMED_CODES,
    ):
        self.vocab, self.strict_codes, self.day_end, self.stats = vocab, strict_codes, day_end, stats
        self.timed_codes = tuple(timed_codes)
        self.timed: dict[str, bool] = {}
        self.codes: dict[str, tuple[str, str | None, bool]] = {}
        self.parsed_times: dict[str, datetime | None] = {}
        self.done: set[Any] = set()
        self.current: Any = None
        self.events: list[Event] = []
        self.path = Path()
        self.colmap: dict[str, str] = {}

    # -------------------------------------------------------------------------------- files and subjects

    def read_file(self, path: Path, *, sort: bool, batch_rows: int) -> Iterator[Timeline]:
        """Read one event file, yielding each subject that ends in it."""
        self.path, self.colmap = path, resolve_columns(path)
        roles = list(self.colmap)
        last_raw: Any = object()
        for rows, cols in _file_batches(path, self.colmap, sort, batch_rows):
            self.stats.rows += len(rows)
            batch = _Columns.of(roles, cols)
            for k, row in enumerate(rows):
                raw = batch.subject[k]
                if raw != last_raw:
                    yield from self._switch_subject(raw, row)
                    last_raw = raw
                self.events.append(self._event(batch, k, row))

    def _switch_subject(self, raw: Any, row: int) -> Iterator[Timeline]:
        """A new subject id cell: when it names another subject, yield the finished one and start anew."""
        try:
            subject = parse_subject(raw)
        except ValueError as e:
            raise self._error(str(e), row, "subject_id") from None
        if subject == self.current:
            return
        yield from self.finish()
        if subject in self.done:
            raise self._error(appears_again(subject, self.colmap["subject_id"]), row, "subject_id")
        self.current, self.events = subject, []

    def finish(self) -> Iterator[Timeline]:
        """The subject being gathered, if any, as a Timeline."""
        if self.current is None:
            return
        self.done.add(self.current)
        self.stats.subjects += 1
        yield Timeline.build(self.current, self.events)

    # -------------------------------------------------------------------------------- one row

    def _event(self, batch: _Columns, k: int, row: int) -> Event:
        """Row `k` of the batch (numbered `row` in its file) as an Event, counted in the stats."""
        code = batch.code[k]
        canonical, code_unit = self._code(code, row)
        t = self._time(batch.time[k], row)
        end = self._end(batch.end[k], row)
        if t is None:
            self._count_untimed(code, canonical, row)
        elif self.day_end and canonical not in BIRTH_CODES:
            t, end = self._move_to_day_end(t, end, code)
        num, text = _value(batch.numeric_value[k])
        table = batch.table[k]
        return Event(
            t,
            code.strip(),
            canonical,
            num,
            _text_value(batch.text_value[k], text),
            _unit(batch.unit[k], code_unit),
            end,
            table if table in OMOP_TABLES else None,
        )

    def _code(self, code: Any, row: int) -> tuple[str, str | None]:
        """(canonical code, unit carried in the code), checked once per distinct code; unknown codes counted."""
        info = self.codes.get(code)
        if info is None:
            info = _check_code(code, self.vocab, self.path, row, self.colmap["code"])
            if len(self.codes) < _MAX_CACHED_CODES:
                self.codes[code] = info
        canonical, code_unit, unknown = info
        if unknown:
            _unknown(code, canonical, self.strict_codes, self.stats, self.path, row, self.colmap["code"])
        return canonical, code_unit

    def _time(self, t: Any, row: int) -> datetime | None:
        """The event time: a naive datetime as it is, else parsed (text cached by value)."""
        if t.__class__ is datetime and t.tzinfo is None:
            return t  # type: ignore[no-any-return]
        if t.__class__ is str and t in self.parsed_times:
            return self.parsed_times[t]
        parsed = self._parse_time(t, row, "time", "unparseable time")
        if t.__class__ is str and len(self.parsed_times) < _MAX_CACHED_TIMES:
            self.parsed_times[t] = parsed
        return parsed

    def _end(self, end: Any, row: int) -> datetime | None:
        """The end time, if any: a naive datetime as it is, else parsed."""
        if end is None or (end.__class__ is datetime and end.tzinfo is None):
            return end  # type: ignore[no-any-return]
        return self._parse_time(end, row, "end", "unparseable end time")

    def _count_untimed(self, code: str, canonical: str, row: int) -> None:
        """A row without a time is a static fact; one whose code is not a static one is counted as odd."""
        self.stats.untimed += 1
        if not canonical.upper().startswith(STATIC_PREFIXES):
            _tally(self.stats.untimed_events, self.stats.untimed_examples, canonical, code, self.path, row)

    def _move_to_day_end(
        self, t: datetime, end: datetime | None, code: str
    ) -> tuple[datetime, datetime | None]:
        """Start and end moved to the end of their day when at midnight (counted), unless the code's midnight
        is a real time (`timed_codes`); the end kept >= start."""
        moved = move_to_day_end(t)
        if (moved is not t or (end is not None and move_to_day_end(end) is not end)) and self._timed(code):
            if moved is not t:
                self.stats.kept_at_midnight += 1
            return t, end
        if moved is not t:
            self.stats.moved_to_day_end += 1
            t = moved
        if end is not None:
            end = max(move_to_day_end(end), t)
        return t, end

    def _timed(self, code: str) -> bool:
        """Whether `code` is one of `timed_codes` (equal, or the prefix and `//`), cached per code."""
        known = self.timed.get(code)
        if known is None:
            known = any(code == p or code.startswith(p + "//") for p in self.timed_codes)
            if len(self.timed) < _MAX_CACHED_CODES:
                self.timed[code] = known
        return known

    # -------------------------------------------------------------------------------- errors

    def _parse_time(self, value: Any, row: int, role: str, what: str) -> datetime | None:
        """`parse_time(value)`; DataError naming file, row and the role's column when it is unreadable."""
        try:
            return parse_time(value)
        except (ValueError, TypeError) as e:
            raise self._error(f"{what} ({e})", row, role) from None

    def _error(self, message: str, row: int, role: str) -> DataError:
        return DataError(message, file=self.path, row=row, field=self.colmap[role])


def _file_batches(
    path: Path, colmap: dict[str, str], sort: bool, batch_rows: int
) -> Iterator[tuple[Sequence[int], tuple[list[Any], ...]]]:
    """(row numbers, columns in `colmap` order) batches of one file: streamed, or the whole file sorted."""
    names = list(colmap.values())
    if sort:
        return _sorted_batches(path, names)
    dedupe = [colmap[r] for r in ("time", "code", "unit", "table", "end") if r in colmap]
    return _numbered_batches(path, names, batch_rows, dedupe)


def _text_value(cell: Any, from_value: str | None) -> str | None:
    """A text_value cell, stripped; else the text found in the value column."""
    if cell is None or cell == "":
        return from_value
    return str(cell).strip() or from_value


def _unit(cell: Any, code_unit: str | None) -> str | None:
    """A unit cell, stripped (None when blank); an empty cell falls back to the unit carried in the code."""
    if cell is None or cell == "":
        return code_unit
    return str(cell).strip() or None


def _unknown(
    code: str, canonical: str, strict: bool, stats: ReadStats, path: Path, row_no: int, field: str
) -> None:
    if strict:
        raise DataError(unknown_code(code), file=path, row=row_no, field=field)
    _tally(stats.unknown_codes, stats.unknown_examples, canonical, code, path, row_no)


def appears_again(subject: Any, column: str) -> str:
    """The error for a subject whose rows are not contiguous (both readers)."""
    return (
        f"subject {subject} appears again after other subjects: rows must be grouped by {column} (MEDS shards "
        "are sorted by subject_id, time) so that one subject at a time is held in memory; sort the file, or pass "
        "--set sort=true to sort in memory"
    )


def unknown_code(code: Any) -> str:
    """The error for a code missing from its vocabulary with `strict_codes` (both readers)."""
    return (
        f"unknown code {code!r}: not in its vocabulary (strict_codes is on; turn it off to show such codes as "
        "they are)"
    )


def _tally(counts: Counter[str], examples: list[str], key: str, code: str, path: Path, row_no: int) -> None:
    """Count `key`; its first row is kept as an example (up to 10 examples)."""
    if key not in counts and len(examples) < 10:
        examples.append(f"{code} ({path.name} row {row_no})")
    counts[key] += 1


def _check_code(
    code: Any, vocab: Vocabulary | None, path: Path, row_no: int, field: str
) -> tuple[str, str | None, bool]:
    """(canonical code, unit carried in a MIMIC lab code, unknown to its vocabulary?); DataError if bad."""
    if not isinstance(code, str) or not code.strip():
        raise DataError("empty code", file=path, row=row_no, field=field)
    code = code.strip()
    if _CONTROL.search(code):
        raise DataError("code contains a line break or control character", file=path, row=row_no, field=field)
    canonical = canonical_code(code)
    unit = None
    parts = code.split("//")
    if code.startswith("LAB//"):
        unit = parts[2] if len(parts) > 2 and parts[2] not in ("", "UNK") else None
    elif (
        code.startswith("SUBJECT_")
        and len(parts) >= 2
        and parts[-1] not in ("", "UNK")
        and not parts[-1].isdigit()
    ):
        unit = parts[-1].lower()  # SUBJECT_WEIGHT_AT_INFUSION//KG, SUBJECT_FLUID_OUTPUT//226559//ml
    unknown = vocab is not None and vocab.is_known(canonical) is False
    return canonical, unit, unknown


def _numbered_batches(
    path: Path, names: list[str], batch_rows: int, dedupe: list[str]
) -> Iterator[tuple[range, tuple[list[Any], ...]]]:
    row = 0
    for cols in iter_table_batches(path, names, batch_rows=batch_rows, dedupe=dedupe):
        n = len(cols[0])
        yield range(row + 1, row + n + 1), cols
        row += n


def _sorted_batches(path: Path, names: list[str]) -> Iterator[tuple[list[int], tuple[list[Any], ...]]]:
    """Whole-file sort by subject (stable, so row order within a subject is kept); rows keep their numbers."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cols: list[list[Any]] = [[] for _ in names]
    for batch in iter_table_batches(path, names):
        for acc, col in zip(cols, batch, strict=True):
            acc.extend(col)
    keys = pa.array([str(s) if s is not None else "" for s in cols[0]])
    order = pc.sort_indices(keys).to_pylist() if len(keys) else []
    yield [i + 1 for i in order], tuple([col[i] for i in order] for col in cols)


# ---------------------------------------------------------------------------------------------- labels, splits


@dataclass(frozen=True)
class FileLabel:
    """One row of an existing label file."""

    prediction_time: datetime
    value: bool
    label_class: str | None
    row: int


LAB_CLASSES = ("normal", "mild", "moderate", "severe")


def read_label_file(path: str | Path) -> dict[Any, list[FileLabel]]:
    """Labels as given: EHRSHOT `labeled_patients.csv` (patient_id, prediction_time, value, label_type) or
    MEDS labels (subject_id, prediction_time, boolean_value | integer_value). EHRSHOT's lab labels are
    classes 0..3 (normal, mild, moderate, severe); like EHRSHOT's evaluation, class >= 1 is positive.

    Label files are far smaller than events, so they are held in memory (by subject)."""
    p = Path(path)
    cols = table_columns(p)
    subj_col = next((c for c in ("subject_id", "patient_id", "person_id") if c in cols), None)
    time_col = "prediction_time" if "prediction_time" in cols else None
    value_col = next((c for c in ("boolean_value", "value", "integer_value", "label") if c in cols), None)
    for role, col in (("subject_id", subj_col), ("prediction_time", time_col), ("boolean_value", value_col)):
        if col is None:
            raise DataError(
                f"missing column {role!r} (EHRSHOT: patient_id, prediction_time, value, label_type; "
                f"MEDS: subject_id, prediction_time, boolean_value); found {', '.join(cols)}",
                file=p,
                row=1,
                field=role,
            )
    wanted = [subj_col, time_col, value_col] + (["label_type"] if "label_type" in cols else [])
    out: dict[Any, list[FileLabel]] = {}
    row = 0
    for batch in iter_table_batches(p, wanted):  # type: ignore[arg-type]
        for values in zip(*batch, strict=True):
            row += 1
            try:
                subject = parse_subject(values[0])
            except ValueError as e:
                raise DataError(str(e), file=p, row=row, field=subj_col) from None
            try:
                t = parse_time(values[1])
            except (ValueError, TypeError) as e:
                raise DataError(f"unparseable time ({e})", file=p, row=row, field=time_col) from None
            if t is None:
                raise DataError("empty prediction time", file=p, row=row, field=time_col)
            label_type = str(values[3]).strip().lower() if len(values) > 3 and values[3] else ""
            try:
                value, cls = _label_value(values[2], label_type, value_col)  # type: ignore[arg-type]
            except ValueError as e:
                raise DataError(str(e), file=p, row=row, field=value_col) from None
            out.setdefault(subject, []).append(FileLabel(t, value, cls, row))
    if row == 0:
        raise DataError("label file has no rows", file=p)
    for subject, labels in out.items():
        labels.sort(key=lambda x: (x.prediction_time, x.row))
        _check_label_conflicts(subject, labels, p, time_col)  # type: ignore[arg-type]
    return out


def _check_label_conflicts(subject: Any, labels: list[FileLabel], path: Path, time_col: str) -> None:
    """Two rows for one subject and prediction time must agree; a repeated row is kept once later (counted as
    a duplicate prediction time). Before, the first row won, so reversing a file flipped labels (issue #31)."""
    for a, b in zip(labels, labels[1:], strict=False):
        if a.prediction_time == b.prediction_time and (a.value, a.label_class) != (b.value, b.label_class):
            raise DataError(
                f"subject {subject} has two different labels at {a.prediction_time.isoformat()} (rows {a.row} "
                f"and {b.row}); keep one",
                file=path,
                row=b.row,
                field=time_col,
            )


def _label_value(v: Any, label_type: str, column: str) -> tuple[bool, str | None]:
    if isinstance(v, bool):
        return v, None
    if v is None or (isinstance(v, str) and not v.strip()):
        raise ValueError("empty label")
    s = str(v).strip().lower()
    if (
        label_type == "categorical"
        or column == "integer_value"
        or (label_type not in ("boolean",) and s.isdigit() and s not in ("0", "1"))
    ):
        try:
            k = int(float(s))
        except ValueError:
            raise ValueError(f"expected a class number, got {v!r}") from None
        if k < 0:
            raise ValueError(f"class number must be >= 0, got {k}")
        return k >= 1, LAB_CLASSES[k] if k < len(LAB_CLASSES) else str(k)
    if s in ("true", "1", "1.0", "yes", "t"):
        return True, None
    if s in ("false", "0", "0.0", "no", "f"):
        return False, None
    raise ValueError(f"expected a boolean label (True/False), got {v!r}")


def read_splits(path: str | Path) -> dict[Any, str]:
    """Subject → split from MEDS `subject_splits.parquet` (subject_id, split) or EHRSHOT
    `person_id_map.csv` (omop_person_id, split)."""
    p = Path(path)
    cols = table_columns(p)
    subj = next((c for c in ("subject_id", "omop_person_id", "patient_id", "person_id") if c in cols), None)
    if subj is None or "split" not in cols:
        raise DataError(
            f"a splits file needs subject_id and split columns; found {', '.join(cols)}", file=p, row=1
        )
    out: dict[Any, str] = {}
    row = 0
    for ids, splits in iter_table_batches(p, [subj, "split"]):
        for s, sp in zip(ids, splits, strict=True):
            row += 1
            try:
                out[parse_subject(s)] = str(sp)
            except ValueError as e:
                raise DataError(str(e), file=p, row=row, field=subj) from None
    return out
